"""GET /health: the database, Redis and the workers' heartbeats."""
import os
import subprocess
import sys
import time

import pytest

from app.queue import HEARTBEAT_KEY


def test_health_reports_database_redis_and_no_worker(app, db, redis):
    response = app.test_client().get("/health")
    body = response.get_json()
    assert response.status_code == 200
    assert body["status"] == "ok" and body["database"] == "ok" and body["redis"] == "ok"
    assert body["workers"] == [] and body["worker"] == "none"


def test_health_reports_each_workers_last_heartbeat(app, db, redis):
    redis.set(HEARTBEAT_KEY + "box-a.101", str(time.time() - 2), ex=60)
    redis.set(HEARTBEAT_KEY + "box-b.202", str(time.time() - 45), ex=60)
    body = app.test_client().get("/health").get_json()
    workers = {w["name"]: w for w in body["workers"]}
    assert workers["box-a.101"]["state"] == "alive" and workers["box-b.202"]["state"] == "stale"
    assert 40 < workers["box-b.202"]["age_seconds"] < 60
    assert body["worker"] == "ok"


def test_health_ignores_garbage_in_a_heartbeat_key(app, db, redis):
    redis.set(HEARTBEAT_KEY + "broken", "not-a-time")
    response = app.test_client().get("/health")
    assert response.status_code == 200 and response.get_json()["workers"] == []


def test_health_shows_no_secrets_or_data(app, db, redis):
    text = app.test_client().get("/health").get_data(as_text=True)
    assert app.config["SECRET_KEY"] not in text and "postgresql://" not in text and "sqlite:" not in text


@pytest.mark.slow
def test_a_real_worker_appears_in_health_and_leaves_when_stopped(app, db, redis):
    env = dict(os.environ, REDIS_URL=app.config["REDIS_URL"], DATABASE_URL=app.config["DATABASE_URL"],
               INSTANCE_DIR=str(app.config["INSTANCE_DIR"]), WORKER_TICK_SECONDS="0.5")
    worker = subprocess.Popen([sys.executable, "-m", "run", "worker"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        client = app.test_client()
        for _ in range(100):
            workers = client.get("/health").get_json()["workers"]
            if workers:
                break
            time.sleep(0.2)
        assert [w["name"] for w in workers] == [f"{os.uname().nodename}.{worker.pid}"]
        assert workers[0]["state"] == "alive"
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            worker.kill()
            raise
    assert client.get("/health").get_json()["workers"] == []
