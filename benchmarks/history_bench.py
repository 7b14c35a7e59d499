"""OpenPhone history import benchmark: 7,000 conversations / 70,000 texts / 5,000 calls from the
fake OpenPhone at its real 10 requests/second, through the CRM's shared limiter.

    BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1/crm_bench_history \\
    BENCH_REDIS_URL=redis://127.0.0.1:6379/9 .venv/bin/python benchmarks/history_bench.py [--scale 0.1]

Prints the requests the import made (the fake's count, 429s included), the wall time, and the
ratio to the fewest requests OpenPhone's API allows for the same data: one phone-number list,
ceil(conversations / 100) conversation pages, per conversation ceil(texts / 100) message pages
and ceil(calls / 100) call pages (at least one each), and per call the details the import asks
for (a voicemail for a missed incoming call; summary, transcript and recording for an answered
one). At 10/s the wall time is bounded below by requests / 10; the CRM's limiter lets 10 into
any 1.15 s (RATE_WINDOW_SECONDS), so 1.15x that floor is the least a run takes. Business tables are emptied
first: point it at a scratch database. Nothing asserts on time.
"""
import argparse
import math
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def minimum_requests(fake, details):
    """The fewest API requests that read everything the fake holds (see the module docstring)."""
    conversations = fake.history.conversations()
    per_pair = fake.history._index()
    total = 1 + math.ceil(len(conversations) / 100)
    for conversation in conversations:
        items = per_pair[(conversation["phoneNumberId"], conversation["participants"][0])]
        texts = sum(1 for i in items if i["object"] == "message")
        calls = [i for i in items if i["object"] == "call"]
        total += max(1, math.ceil(texts / 100)) + max(1, math.ceil(len(calls) / 100))
        for call in calls:
            if call["direction"] == "incoming" and call["status"] in ("missed", "no-answer"):
                total += int("voicemail" in details)
            elif call["duration"]:
                total += sum(d in details for d in ("summary", "transcript", "recording"))
    return total


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of 7,000 / 70,000 / 5,000")
    parser.add_argument("--details", default="voicemail,summary,transcript,recording")
    args = parser.parse_args()
    conversations, texts, calls = (max(1, int(n * args.scale)) for n in (7000, 70000, 5000))
    instance = tempfile.mkdtemp()
    database_url = os.environ.get("BENCH_DATABASE_URL") or f"sqlite:///{instance}/bench.db"
    redis_url = os.environ.get("BENCH_REDIS_URL", "")

    from app import create_app
    from app.fake_history import generate
    from app.fake_openphone import FakeOpenPhone

    fake = FakeOpenPhone(api_key="bench-key", rate=10).start()
    generate(fake, conversations, texts, calls)
    app = create_app({"DATABASE_URL": database_url, "REDIS_URL": redis_url, "INSTANCE_DIR": instance,
                      "OPENPHONE_API_KEY": "bench-key", "OPENPHONE_BASE_URL": fake.url,
                      "HISTORY_CALL_DETAILS": args.details, "MEDIA_FOLDER": f"{instance}/media"})
    with app.app_context():
        from flask_migrate import upgrade
        from sqlalchemy import func, select, text

        from app.extensions import db
        from app.history import import_history, outcome_counts
        from app.models import Message
        from tests.conftest import business_tables

        upgrade()
        with db.engine.begin() as conn:
            for table in business_tables():
                conn.execute(text(f"DELETE FROM {table}"))
        fewest = minimum_requests(fake, set(args.details.split(",")))
        started = time.monotonic()
        run = import_history()
        wall = time.monotonic() - started
        seen = fake.per_second()
        made = sum(r["accepted"] + r["limited"] for r in seen)
        limited = sum(r["limited"] for r in seen)
        busiest = max((r["accepted"] for r in seen), default=0)
        stored = db.session.scalar(select(func.count()).select_from(Message))
        counts = outcome_counts(run.id)
    fake.stop()
    print(f"history import ({conversations} conversations, {texts} texts, {calls} calls): {run.status}")
    print(f"  stored: {stored} texts, {counts.get(('call', 'created'), 0)} calls")
    print(f"  requests made: {made} ({limited} answered 429), fewest the API allows: {fewest}, "
          f"ratio {made / fewest:.3f}")
    print(f"  wall time: {wall:.1f} s ({made / wall:.2f} requests/s; at 10/s the floor is {fewest / 10:.0f} s, "
          f"ratio {wall / (fewest / 10):.3f}); busiest second at the fake: {busiest} accepted")


if __name__ == "__main__":
    main()
