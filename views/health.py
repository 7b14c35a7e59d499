"""GET /health: database, Redis and worker heartbeats as JSON."""
from flask import Blueprint, current_app, jsonify
from sqlalchemy import text

from app.extensions import db


def health():
    from rq import Worker

    from app.queue import get_redis

    state = {"database": "ok", "redis": "ok", "workers": []}
    code = 200
    try:
        db.session.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - report, never crash the probe
        current_app.logger.warning("health: database check failed: %s", exc)
        state["database"], code = "error", 503
    try:
        redis = get_redis()
        redis.ping()
        state["workers"] = [
            {"name": w.name, "state": w.state,
             "last_heartbeat": w.last_heartbeat.isoformat() if w.last_heartbeat else None}
            for w in Worker.all(connection=redis)
        ]
    except Exception as exc:  # noqa: BLE001
        current_app.logger.warning("health: redis check failed: %s", exc)
        state["redis"], code = "error", 503
    state["status"] = "ok" if code == 200 else "degraded"
    return jsonify(state), code


def register(appbuilder):
    blueprint = Blueprint("health", __name__)
    blueprint.add_url_rule("/health", view_func=health)
    current_app.register_blueprint(blueprint)
