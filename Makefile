# `make run` starts the CRM on SQLite + embedded Redis; `make test` runs every test.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN = $(VENV)/bin
STAMP = $(VENV)/.installed
DEV_STAMP = $(VENV)/.installed-dev

.PHONY: run test lint check-migrations check-layout demo worker clean

# uv (a PyPI package) installs the dependencies in seconds where pip takes over a minute.
$(BIN)/python:
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "Python 3.11 is required (set PYTHON=...)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check uv || true

# uv when it installed, else pip
INSTALL = $(if $(wildcard $(BIN)/uv),$(BIN)/uv pip install --quiet --python $(BIN)/python,$(BIN)/pip install --quiet)

# `make run` needs only the runtime packages; tests and lint add the dev ones.
# compileall: where PYTHONDONTWRITEBYTECODE is set nothing else writes .pyc files, and every
# process (gunicorn, each worker) would compile the libraries again at start.
$(STAMP): $(BIN)/python pyproject.toml
	$(INSTALL) -e .
	$(BIN)/python -m compileall -q -j 0 $(VENV)/lib >/dev/null || true
	@touch $(STAMP)

$(DEV_STAMP): $(STAMP)
	$(INSTALL) -e '.[dev]'
	$(BIN)/python -m compileall -q -j 0 $(VENV)/lib >/dev/null || true
	@touch $(DEV_STAMP)

run: $(STAMP)
	$(BIN)/crm run

worker: $(STAMP)
	$(BIN)/crm worker

demo: $(STAMP)
	$(BIN)/crm init && $(BIN)/crm demo

# TEST_DATABASE_URL / TEST_REDIS_URL point the suite at PostgreSQL / Redis; unset, it uses
# a temporary SQLite file and an embedded Redis.
test: $(DEV_STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(DEV_STAMP)
	$(BIN)/ruff check .

check-migrations: $(STAMP)
	$(BIN)/python -m run db check

# import circles in app/, jobs/ reached from app/ or views/, views/ querying the database
check-layout: $(BIN)/python
	$(BIN)/python tests/check_layout.py

clean:
	rm -rf $(VENV) instance/*.db* instance/redis*
