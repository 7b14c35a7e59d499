"""GET /health: database, Redis, worker heartbeats and rejected requests (failed logins,
unsigned webhooks) counted in the last hour, as JSON (200 when the database and
Redis answer, 503 otherwise). Public: it shows states and timestamps, never data."""
import time
from datetime import datetime, timezone

from flask import Blueprint, current_app, jsonify
from sqlalchemy import text

from app.audit import rejections_last_hour
from app.extensions import db
from app.queue import get_redis, list_heartbeats

# A worker writes its heartbeat every tick (WORKER_TICK_SECONDS); older than this, it is stale.
STALE_AFTER_SECONDS = 30


def _worker_heartbeats():
    now = time.time()
    workers = []
    for name, beat in list_heartbeats().items():
        age = max(0.0, now - beat)
        workers.append({
            "name": name,
            "last_heartbeat": datetime.fromtimestamp(beat, timezone.utc).isoformat(timespec="seconds"),
            "age_seconds": round(age, 1),
            "state": "stale" if age > STALE_AFTER_SECONDS else "alive",
        })
    return workers


def health():
    state = {"database": "ok", "redis": "ok", "workers": []}
    code = 200
    try:
        db.session.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - report, never crash the probe
        current_app.logger.warning("health: database check failed: %s", exc)
        db.session.rollback()
        state["database"], code = "error", 503
    try:
        get_redis().ping()
        state["workers"] = _worker_heartbeats()
        state["rejected_last_hour"] = rejections_last_hour()
    except Exception as exc:  # noqa: BLE001
        current_app.logger.warning("health: redis check failed: %s", exc)
        state["redis"], code = "error", 503
    alive = [w for w in state["workers"] if w["state"] == "alive"]
    state["worker"] = "ok" if alive else "none"
    state["status"] = "ok" if code == 200 else "degraded"
    return jsonify(state), code


def register(appbuilder):
    blueprint = Blueprint("health", __name__)
    blueprint.add_url_rule("/health", view_func=health)
    current_app.register_blueprint(blueprint)
