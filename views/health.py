"""GET /health: database, Redis, worker heartbeats and rejected requests (failed logins,
unsigned webhooks) counted in the last hour, as JSON (200 when the database and
Redis answer, 503 otherwise). Public: it shows states and timestamps, never data."""
from flask import Blueprint, current_app, jsonify

from app.health import check_health


def health():
    state, code = check_health()
    return jsonify(state), code


def register(appbuilder):
    blueprint = Blueprint("health", __name__)
    blueprint.add_url_rule("/health", view_func=health)
    current_app.register_blueprint(blueprint)
