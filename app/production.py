"""Settings that must not reach production: the web server refuses to start with CRM_ENV=production
and any of them, and says which setting to fix."""
import os

from app.extensions import db
from app.openphone import api_key, webhook_secret

# Values found in tutorials, examples and FAB's own config template.
DEFAULT_SECRET_KEYS = {"", "changeme", "change-me", "change_me", "secret", "secret-key", "dev", "development",
                       "test", "\2\1thisismyscretkey\1\2\\e\\y\\y\\h"}
MIN_SECRET_KEY_LENGTH = 32


class UnsafeProduction(SystemExit):
    """Start-up refused: the message lists each setting to fix."""


def production_problems(app):
    """What is unsafe about this app's settings for production, one sentence per setting."""
    config = app.config
    problems = []
    key = str(config["SECRET_KEY"] or "")
    if key.lower() in DEFAULT_SECRET_KEYS or len(key) < MIN_SECRET_KEY_LENGTH:
        problems.append(f"SECRET_KEY is a default or too short ({len(key)} characters; at least "
                        f"{MIN_SECRET_KEY_LENGTH}): anyone who guesses it can sign in as anyone. Set it to a long "
                        "random value, e.g. python -c 'import secrets; print(secrets.token_hex(32))'.")
    if app.debug or config.get("DEBUG") or os.environ.get("FLASK_DEBUG", "").lower() in ("1", "true", "yes"):
        problems.append("Debug is on (FLASK_DEBUG / DEBUG): the debugger runs code a visitor sends. Unset it.")
    api_key, secret = _openphone_settings(app)
    if api_key and not secret:
        problems.append("OPENPHONE_API_KEY is set but OPENPHONE_WEBHOOK_SECRET is not (nor on Settings -> "
                        "Integrations): every OpenPhone webhook, STOP replies included, would be refused and lost. "
                        "Set OPENPHONE_WEBHOOK_SECRET to the signing secret OpenPhone shows for the webhook.")
    return problems


def _openphone_settings(app):
    """The OpenPhone key and webhook secret in force: stored on screen, else the environment's."""
    with app.app_context():
        try:
            return api_key(app.config), webhook_secret(app.config)
        except Exception as exc:  # noqa: BLE001 - not migrated yet, or a secret stored under another key
            db.session.rollback()
            app.logger.info("start-up check: stored integration secrets not read (%s)", exc)
            return app.config["OPENPHONE_API_KEY"], app.config["OPENPHONE_WEBHOOK_SECRET"]


def refuse_unsafe_production(app):
    if not app.config["PRODUCTION"]:
        return
    problems = production_problems(app)
    if problems:
        raise UnsafeProduction("Refusing to start with CRM_ENV=production:\n" +
                               "\n".join(f"  - {problem}" for problem in problems))
