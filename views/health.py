"""GET /health: database, Redis, worker heartbeats and rejected requests (failed logins,
unsigned webhooks) counted in the last hour, as JSON (200 when the database and
Redis answer, 503 otherwise). Public: it shows states and timestamps, never data."""
from flask import Blueprint, current_app, jsonify

from app.health import check_health
from app.webhook_health import last_webhook_at


def health():
    state, code = check_health()
    if state.get("database") == "ok":
        last = last_webhook_at()
        state["last_webhook_at"] = last.isoformat(timespec="seconds") + "Z" if last else None
    return jsonify(state), code


def register(appbuilder):
    blueprint = Blueprint("health", __name__)
    blueprint.add_url_rule("/health", view_func=health)
    current_app.register_blueprint(blueprint)
