"""The health probe: database, Redis, worker heartbeats and rejected requests (failed logins,
unsigned webhooks) counted in the last hour. States and timestamps only, never data."""
import logging
import time
from datetime import datetime, timezone

from sqlalchemy import text

from app.audit import rejections_last_hour
from app.extensions import db
from app.queue import get_redis, list_heartbeats

log = logging.getLogger(__name__)
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


def check_health():
    """(state, HTTP status) for GET /health: 200 when the database and Redis answer, else 503."""
    state = {"database": "ok", "redis": "ok", "workers": []}
    code = 200
    try:
        db.session.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - report, never crash the probe
        log.warning("health: database check failed: %s", exc)
        db.session.rollback()
        state["database"], code = "error", 503
    try:
        get_redis().ping()
        state["workers"] = _worker_heartbeats()
        state["rejected_last_hour"] = rejections_last_hour()
    except Exception as exc:  # noqa: BLE001
        log.warning("health: redis check failed: %s", exc)
        state["redis"], code = "error", 503
    alive = [w for w in state["workers"] if w["state"] == "alive"]
    state["worker"] = "ok" if alive else "none"
    state["status"] = "ok" if code == 200 else "degraded"
    return state, code
