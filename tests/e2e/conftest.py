"""A live CRM (`crm run`: gunicorn + worker + sandbox OpenPhone) and a headless Chromium.

The live CRM uses its own database: a temporary SQLite file, or, when TEST_DATABASE_URL
points at PostgreSQL, a fresh database beside it."""
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ADMIN_PASSWORD = "Journey-admin-1"
ARTIFACTS = ROOT / "test-artifacts"

if not Path(CHROMIUM).exists():
    pytest.exit("Chromium is missing: apt-get install chromium chromium-driver", returncode=2)


def fresh_database(tmp_path):
    base = os.environ.get("TEST_DATABASE_URL")
    if not base:
        return f"sqlite:///{tmp_path / 'live.db'}"
    url = make_url(base)
    name = f"{url.database}_live"
    engine = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return url.set(database=name).render_as_string(hide_password=False)


def live_redis_url():
    """The logical Redis database after the suite's own, so two suites on one Redis stay apart."""
    url = os.environ.get("TEST_REDIS_URL", "")
    if not url:
        return ""
    base, _, number = url.rpartition("/")
    return f"{base}/{int(number or 0) + 1}"


@pytest.fixture(scope="session")
def live(tmp_path_factory):
    """Start `crm run` on a free port; yield its base URL and settings."""
    tmp = tmp_path_factory.mktemp("live")
    port, sandbox_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENPHONE_")}
    env.update({
        "INSTANCE_DIR": str(tmp),
        "DATABASE_URL": fresh_database(tmp),
        "REDIS_URL": live_redis_url(),
        "ADMIN_USERNAME": "admin",
        "ADMIN_PASSWORD": ADMIN_PASSWORD,
        "SANDBOX_PORT": str(sandbox_port),
        "QUICKBOOKS_SANDBOX_PORT": str(free_port()),
        "WORKER_TICK_SECONDS": "1",
        "INBOX_REFRESH_SECONDS": "2",
        "MAX_UPLOAD_MB": "2",
        "API_EXPORT_AUDIT_ROWS": "50",
        "PYTHONUNBUFFERED": "1",
    })
    if env["REDIS_URL"]:
        import redis

        redis.Redis.from_url(env["REDIS_URL"]).flushdb()
    log = open(tmp / "crm-run.log", "w")
    # The sender's clock: a Tuesday, 14:00 in Boston, so campaign texts are lawful whenever CI runs.
    proc = subprocess.Popen([sys.executable, "-m", "tests.clocked", "2026-11-24T19:00:00+00:00", "run", "--port",
                             str(port)], cwd=ROOT, env=env,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300  # a busy 2-core machine takes a while to boot gunicorn and a worker
    while time.monotonic() < deadline:
        try:
            if httpx.get(base + "/login/", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            break
        time.sleep(0.5)
    else:
        proc.poll()
    if proc.poll() is not None or time.monotonic() >= deadline:
        os.killpg(proc.pid, signal.SIGKILL)
        pytest.fail("crm run did not serve the login page:\n" + (tmp / "crm-run.log").read_text()[-4000:])
    yield {"url": base, "env": env, "sandbox_port": sandbox_port, "log": tmp / "crm-run.log"}
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
    log.close()


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"])
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, request):
    """A fresh browser context; a failing test leaves a screenshot in test-artifacts/. Every
    page runs under the Content-Security-Policy: a violation the browser reports fails the test."""
    context = browser.new_context(accept_downloads=True)
    violations = []
    context.on("console", lambda message: violations.append(f"{message.page.url if message.page else ''}: "
                                                            f"{message.text}")
               if "Content Security Policy" in message.text else None)
    page = context.new_page()
    page.set_default_timeout(60000)  # waits for conditions; a busy 2-core machine can take tens of seconds per page
    yield page
    failed = getattr(request.node, "rep_call", None)
    if failed is not None and failed.failed:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
    context.close()
    assert not violations, "Content-Security-Policy violations:\n" + "\n".join(violations)


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, "rep_" + report.when, report)


def sign_in(page, base, username, password):
    page.goto(base + "/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("input[type=submit], button[type=submit]")
    page.wait_for_load_state()
