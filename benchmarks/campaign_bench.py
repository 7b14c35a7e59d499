"""Campaign benchmark: planning 100,000 recipients, dispatch rate, and the shared 10/s limit.

    BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1/crm_bench_campaigns \\
    BENCH_REDIS_URL=redis://127.0.0.1:6379/7 .venv/bin/python benchmarks/campaign_bench.py

Prints (1) the seconds plan_audience takes for a 100,000-contact list, (2) texts per second one
sender dispatches to the fake OpenPhone with the rate limit off, and (3) with the 10/s limit on
and 4 worker processes, the most requests the fake OpenPhone saw in any one second.
Business tables are emptied first: point it at a scratch database. Nothing asserts on time.
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from datetime import time as clock_time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import select, text  # noqa: E402

TUESDAY_10AM = "2026-12-01T15:00:00+00:00"  # 10:00 in Boston
TABLES = ["audit_log", "messages", "campaign_recipients", "campaign_lists", "campaign_variants", "campaigns",
          "opt_outs", "list_members", "contact_properties", "properties", "lists", "contacts"]


def make_app(database_url, redis_url, instance):
    from app import create_app

    return create_app({"DATABASE_URL": database_url, "REDIS_URL": redis_url, "INSTANCE_DIR": instance,
                       "OPENPHONE_API_KEY": "bench-key", "CAMPAIGN_SPREAD": False})


def seed(db, contacts):
    """contacts homeowners with a property each in one list, by set-based SQL."""
    for table in TABLES:
        db.session.execute(text(f"DELETE FROM {table}"))
    db.session.execute(text("INSERT INTO lists (name, created_at) VALUES ('Bench', now())"))
    db.session.execute(text(
        "INSERT INTO contacts (first_name, last_name, phone, source, created_at, updated_at) "
        "SELECT 'Name' || g, 'Bench', '+1617' || lpad((2000000 + g)::text, 7, '0'), 'bench', now(), now() "
        "FROM generate_series(1, :n) g"), {"n": contacts})
    db.session.execute(text(
        "INSERT INTO properties (key, type, address, city, state, zip, year_built, created_at, updated_at) "
        "SELECT 'bench:' || g, CASE WHEN g % 10 = 0 THEN 'CND' ELSE 'SFR' END, g || ' Main St', 'Quincy', "
        "CASE WHEN g % 7 = 0 THEN 'FL' ELSE 'MA' END, '02169', 1950 + g % 60, now(), now() "
        "FROM generate_series(1, :n) g"), {"n": contacts})
    db.session.execute(text(
        "INSERT INTO contact_properties (contact_id, property_id, role) "
        "SELECT c.id, p.id, 'primary' FROM contacts c JOIN properties p ON p.key = 'bench:' || substr(c.first_name, 5)"))
    db.session.execute(text(
        "INSERT INTO list_members (list_id, contact_id, added_at) SELECT l.id, c.id, now() FROM contacts c, lists l"))
    db.session.execute(text("INSERT INTO opt_outs (phone, active, source, created_at) "
                            "SELECT phone, true, 'bench', now() FROM contacts WHERE id % 50 = 0"))
    db.session.commit()
    db.session.execute(text("ANALYZE"))


def new_campaign(db, name, filters=None):
    from app.models import Campaign, CampaignVariant, ContactList

    lst = db.session.scalars(select(ContactList)).first()
    campaign = Campaign(name=name, sending_number="+16175550100", daily_limit=1_000_000, filters=filters,
                        window_days="0,1,2,3,4,5,6", window_start=clock_time(0), window_end=clock_time(23, 59, 59),
                        lists=[lst], status="scheduled")
    campaign.variants = [CampaignVariant(label="A", template="Hi {first_name|there}, A from Attack A Crack."),
                         CampaignVariant(label="B", template="Hey {first_name|there}, B from Attack A Crack.")]
    db.session.add(campaign)
    db.session.commit()
    return campaign.id


def bench_planning(db, contacts):
    from app import campaigns

    campaign_id = new_campaign(db, "Plan", {"property_types": ["SFR"], "year_built_min": 1955})
    started = time.perf_counter()
    counts = campaigns.plan_audience(campaign_id, now=datetime(2026, 12, 1, 15))
    seconds = time.perf_counter() - started
    print(f"planning {contacts:,} contacts: {seconds:.2f} s  {counts}")
    return campaign_id


def run(db, campaign_id):
    db.session.execute(text("UPDATE campaigns SET status = 'running' WHERE id = :id"), {"id": campaign_id})
    db.session.commit()


def bench_dispatch(app, db, campaign_id, count):
    from app import campaigns
    from app.fake_openphone import FakeOpenPhone

    fake = FakeOpenPhone(api_key="bench-key", rate=1_000_000, webhook_delay=0).start()
    fake.configure(delivery=None)
    app.config.update(OPENPHONE_BASE_URL=fake.url, OPENPHONE_RATE_PER_SECOND=0)  # no shared limiter
    run(db, campaign_id)
    claiming = [0.0]
    claim_due = campaigns.claim_due

    def timed_claim(*args, **kwargs):  # the campaign sender's own share: pick, claim, render, queue
        started = time.perf_counter()
        try:
            return claim_due(*args, **kwargs)
        finally:
            claiming[0] += time.perf_counter() - started

    campaigns.claim_due = timed_claim
    started = time.perf_counter()
    sent = campaigns.send_due_messages(campaign_id, now=datetime.fromisoformat(TUESDAY_10AM), max_messages=count)
    seconds = time.perf_counter() - started
    campaigns.claim_due = claim_due
    fake.stop()
    print(f"dispatch, one sender, rate limit off: {sent} texts in {seconds:.2f} s = {sent / seconds:.0f} texts/s "
          f"(fake OpenPhone received {len(fake.sent)})")
    print(f"  per text: {1000 * seconds / sent:.1f} ms in all; claiming and queueing {1000 * claiming[0] / sent:.1f} ms; "
          f"sending (claim with opt-out check, HTTP, outcome) {1000 * (seconds - claiming[0]) / sent:.1f} ms")


def bench_rate_limit(app, db, database_url, redis_url, instance, seconds, workers):
    from app.fake_openphone import FakeOpenPhone
    from run import stop_processes

    db.session.execute(text("UPDATE campaigns SET status = 'cancelled'"))
    db.session.commit()
    campaign_id = new_campaign(db, "Rate")
    from app import campaigns

    campaigns.plan_audience(campaign_id, now=datetime(2026, 12, 1, 15))
    fake = FakeOpenPhone(api_key="bench-key", rate=10, webhook_delay=0).start()
    fake.configure(delivery=None)
    env = dict(os.environ, DATABASE_URL=database_url, REDIS_URL=redis_url, INSTANCE_DIR=instance,
               OPENPHONE_API_KEY="bench-key", OPENPHONE_BASE_URL=fake.url, OPENPHONE_RATE_PER_SECOND="10",
               CAMPAIGN_SPREAD="0", WORKER_TICK_SECONDS="1")
    log = open(Path(instance) / "workers.log", "w")
    procs = [subprocess.Popen([sys.executable, "-m", "tests.clocked", TUESDAY_10AM, "worker"], env=env, cwd=str(app.config["BASE_DIR"]),
                              stdout=subprocess.DEVNULL, stderr=log) for _ in range(workers)]
    run(db, campaign_id)
    for _ in range(workers):  # one sender job per worker; claims keep them apart
        campaigns.enqueue_sender(campaign_id, force=True)
    deadline = time.monotonic() + 120
    while not fake.sent and time.monotonic() < deadline:  # the workers take a few seconds to start
        time.sleep(0.1)
    time.sleep(seconds)
    stop_processes(procs, timeout=15)
    fake.stop()
    if not fake.per_second():
        print(f"the workers sent nothing; see {log.name}")
        return
    busiest = max(fake.per_second(), key=lambda s: s["accepted"] + s["limited"])
    seconds_seen = fake.per_second()
    total = sum(s["accepted"] for s in seconds_seen)
    span = seconds_seen[-1]["second"] - seconds_seen[0]["second"] + 1
    print(f"rate limit 10/s, {workers} workers: {total} texts accepted over {span} s; busiest second saw "
          f"{busiest['accepted'] + busiest['limited']} requests ({busiest['limited']} answered 429)")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--dispatch", type=int, default=2_000)
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--workers", type=int, default=4)
    args = parser.parse_args()
    database_url = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1/crm_bench_campaigns")
    redis_url = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/7")
    instance = tempfile.mkdtemp(prefix="campaign-bench-")
    app = make_app(database_url, redis_url, instance)
    with app.app_context():
        from flask_migrate import upgrade

        from app.extensions import db
        from app.queue import get_redis

        upgrade()
        get_redis().flushdb()
        seed(db, args.contacts)
        campaign_id = bench_planning(db, args.contacts)
        bench_dispatch(app, db, campaign_id, args.dispatch)
        bench_rate_limit(app, db, database_url, redis_url, instance, args.seconds, args.workers)
    print(f"(clock: {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC; sender clock fixed at {TUESDAY_10AM})")


if __name__ == "__main__":
    main()
