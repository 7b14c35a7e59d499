"""Fixtures: app (migrated once per session), db (clean tables per test), redis (flushed),
clients logged in per role, and a worker that runs queued jobs in-process."""
import os
import re
import secrets
import shutil
import socket
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
from flask import g, has_app_context
from flask.testing import FlaskClient
from itsdangerous import URLSafeTimedSerializer
from sqlalchemy import text

from app import create_app
from app.extensions import db as _db
from app.models import Model
from app.queue import stop_embedded_redis

# Writes realistic PropertyRadar exports and the truth file a loss-free import must match.
SAMPLE = str(Path(__file__).resolve().parent / "propertyradar_sample.py")
PASSWORD = "Test-password-1"

# Browser journeys need Debian's Chromium; without it they are not collected (see README).
if not shutil.which("chromium") and not os.path.exists("/usr/bin/chromium"):
    collect_ignore = ["e2e"]
    print("tests/e2e not collected: Chromium is missing (apt-get install chromium chromium-driver)")
USERS = {"admin": "Admin", "marketer": "Marketer", "staff": "Staff", "staff2": "Staff"}
# Tables that belong to Flask-AppBuilder's users and roles survive between tests.
KEPT_TABLES = ("ab_", "user_security")


def business_tables():
    """Every table the app's models define except users and roles, children first."""
    return [t.name for t in reversed(Model.metadata.sorted_tables) if not t.name.startswith(KEPT_TABLES)]


class OneUserClient(FlaskClient):
    """Requests made inside a test's app context share its g, where Flask-Login and
    Flask-JWT-Extended cache the user: forget the previous request's user (and token) so each
    client is only ever its own user."""

    def open(self, *args, **kwargs):
        if has_app_context():
            g.pop("_login_user", None)
            g.pop("user", None)
            for name in [name for name in g if name.startswith("_jwt_extended")]:
                g.pop(name)
        return super().open(*args, **kwargs)


@pytest.fixture(scope="session")
def app(tmp_path_factory):
    instance = tmp_path_factory.mktemp("instance")
    database_url = os.environ.get("TEST_DATABASE_URL") or f"sqlite:///{instance / 'test.db'}"
    redis_url = os.environ.get("TEST_REDIS_URL", "")
    app = create_app({
        "TESTING": True,
        "INSTANCE_DIR": instance,
        "UPLOAD_FOLDER": str(instance / "uploads"),
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "ADMIN_PASSWORD": PASSWORD,
        "FAB_PASSWORD_HASH_METHOD": "pbkdf2:sha256:1000",  # fast hashes for tests only
        "OPENPHONE_API_KEY": "test-key",
        "OPENPHONE_BASE_URL": "http://127.0.0.1:9",
        "OPENPHONE_WEBHOOK_SECRET": "whsec_" + "dGVzdC1zZWNyZXQtdGVzdC1zZWNyZXQ=",
    })
    app.test_client_class = OneUserClient
    with app.app_context():
        from flask_migrate import downgrade, upgrade

        from app.users import ensure_user, sync_roles

        if database_url.startswith("postgresql"):
            downgrade(revision="base")  # a clean schema for every session
        upgrade()
        sync_roles()
        for username, role in USERS.items():
            ensure_user(username, PASSWORD, role)
        _db.session.commit()
        _db.session.remove()
    yield app
    stop_embedded_redis()


@pytest.fixture
def redis(app):
    from app.queue import get_redis

    with app.app_context():
        conn = get_redis()
        conn.flushdb()
        yield conn


@pytest.fixture
def db(app, redis):
    """A clean database (users and roles kept) inside an app context."""
    with app.app_context():
        _db.session.remove()
        with _db.engine.begin() as conn:
            for table in business_tables():
                conn.execute(text(f"DELETE FROM {table}"))
        yield _db
        _db.session.remove()


def user_id(username):
    from flask_appbuilder.security.sqla.models import User

    return _db.session.query(User.id).filter_by(username=username).scalar()


def csrf_token(app, client):
    """A valid CSRF token for this client's session (what a rendered form would carry)."""
    with client.session_transaction() as session:
        raw = session.setdefault("csrf_token", secrets.token_hex(20))
    return URLSafeTimedSerializer(app.secret_key, salt="wtf-csrf-token").dumps(raw)


def login(app, client, username, password=PASSWORD):
    return client.post("/login/", data={"username": username, "password": password,
                                        "csrf_token": csrf_token(app, client)})


@pytest.fixture
def client_for(app, db):
    """client_for("staff") -> a test client logged in as that user."""

    def make(username):
        client = app.test_client()
        response = login(app, client, username)
        assert response.status_code == 302, f"login as {username} failed"
        return client

    return make


@pytest.fixture
def post_form(app):
    """post_form(client, url, data): a form post carrying a valid CSRF token."""

    def post(client, url, data=None, **kwargs):
        data = dict(data or {})
        data.setdefault("csrf_token", csrf_token(app, client))
        return client.post(url, data=data, **kwargs)

    return post


@pytest.fixture
def run_jobs(app, redis):
    """Run every queued job in this process, as a worker would (without the recovery tick)."""
    from jobs.worker import CrmWorker

    def run():
        from app.queue import get_queue

        with app.app_context():
            CrmWorker([get_queue()], connection=redis).work(burst=True, logging_level="WARNING")
            _db.session.remove()

    return run


@pytest.fixture
def fake_openphone(app):
    """The project's fake OpenPhone on a free loopback port; the app texts through it."""
    from app.fake_openphone import FakeOpenPhone

    fake = FakeOpenPhone(api_key=app.config["OPENPHONE_API_KEY"],
                         webhook_secret=app.config["OPENPHONE_WEBHOOK_SECRET"]).start()
    saved = app.config["OPENPHONE_BASE_URL"]
    app.config["OPENPHONE_BASE_URL"] = fake.url
    yield fake
    app.config["OPENPHONE_BASE_URL"] = saved
    fake.stop()


def free_port():
    """A TCP port free on loopback right now (for servers a test starts)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(condition, seconds=60, message="the condition was not met in time"):
    """Poll `condition` until it is true; fail the test with `message` after `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(message)


def send_queued(message_id):
    """Send one queued message through the app's one sender; the Message row, reloaded."""
    from app.messages import send_message
    from app.models import Message

    send_message(message_id)
    return _db.session.get(Message, message_id, populate_existing=True)


@pytest.fixture
def sender_clock(monkeypatch):
    """sender_clock(when): the campaign sender in this process takes `when` as now."""
    from app import campaigns
    from tests.clocked import fixed_sender_clock

    return lambda when: monkeypatch.setattr(campaigns, "sender_now", fixed_sender_clock(when))


def start_worker(app, log_path=None, now=None, **env):
    """A real `crm worker` process on the test's database and Redis (for kill -9 tests), with the
    campaign sender's clock fixed at `now` when given.

    Keyword arguments are extra environment settings (strings); output goes to log_path."""
    import subprocess
    import sys

    settings = dict(os.environ, DATABASE_URL=app.config["DATABASE_URL"], REDIS_URL=app.config["REDIS_URL"],
                    INSTANCE_DIR=str(app.config["INSTANCE_DIR"]), UPLOAD_FOLDER=app.config["UPLOAD_FOLDER"],
                    SECRET_KEY=app.config["SECRET_KEY"], QUEUE_NAME=app.config["QUEUE_NAME"],
                    WORKER_TICK_SECONDS="0.5")
    settings.update(env)
    output = open(log_path, "a") if log_path else subprocess.DEVNULL
    command = ["-m", "run", "worker"] if now is None else ["-m", "tests.clocked", now.isoformat(), "worker"]
    return subprocess.Popen([sys.executable, *command], env=settings, stdout=output,
                            stderr=subprocess.STDOUT if log_path else subprocess.DEVNULL,
                            cwd=str(app.config["BASE_DIR"]))


def find_csrf(html):
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html)
    return match.group(1) if match else None


@contextmanager
def quickbooks_app(app, fake):
    """Point the app's QuickBooks settings at a fake QuickBooks for the duration."""
    overrides = {"QUICKBOOKS_CLIENT_ID": fake.client_id, "QUICKBOOKS_CLIENT_SECRET": fake.client_secret,
                 "QUICKBOOKS_BASE_URL": fake.url, "QUICKBOOKS_AUTH_URL": fake.url + "/connect/oauth2",
                 "QUICKBOOKS_TOKEN_URL": fake.url + "/oauth2/v1/tokens/bearer",
                 "QUICKBOOKS_REVOKE_URL": fake.url + "/v2/oauth2/tokens/revoke",
                 "QUICKBOOKS_WEBHOOK_VERIFIER": fake.verifier}
    saved = {key: app.config.get(key) for key in overrides}
    app.config.update(overrides)
    try:
        yield fake
    finally:
        app.config.update(saved)


@pytest.fixture
def fake_quickbooks(app):
    """The project's fake QuickBooks on a free loopback port with the small seeded company; the
    app's QuickBooks settings point at it (not yet connected: quickbooks.connect(fake.realm_id,
    fake.issue_refresh_token()) connects)."""
    from app.fake_quickbooks import FakeQuickBooks
    from app.fake_quickbooks_data import seed_company

    fake = FakeQuickBooks(client_id="test-client", client_secret="test-secret", verifier="test-verifier").start()
    seed_company(fake)
    with quickbooks_app(app, fake):
        yield fake
    fake.stop()
