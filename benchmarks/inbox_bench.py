"""Seed a year of texting in PostgreSQL and time the Inbox's queries.

    .venv/bin/python benchmarks/inbox_bench.py [--database-url URL] [--contacts N] [--runs N] [--reseed]

Creates the database (default postgresql://postgres@127.0.0.1/crm_bench_inbox) if missing, migrates it,
seeds once with generate_series INSERTs (a re-run reuses the rows): N contacts (a fifth assigned to a
Staff user), one campaign text each, replies from one in ten (one in a hundred a STOP), an answer to
half of the replies, missed calls from one in fifty, Done on a quarter of the answered. Prints
p50/p95 milliseconds of the menu's unread count (run on every page), every folder's count, and the
Waiting folder, for an Admin and for Staff. Nothing here asserts on time.
"""
import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from flask_migrate import upgrade  # noqa: E402
from sqlalchemy import text  # noqa: E402

from app import create_app, inbox  # noqa: E402
from app.extensions import db  # noqa: E402
from app.users import ensure_user, sync_roles  # noqa: E402
from benchmarks.list_views import ensure_database  # noqa: E402

NOW = "2026-11-24 15:00:00"


def seed(count, staff_id):
    started = time.perf_counter()
    for table in ("conversation_reads", "conversation_states", "calls", "messages", "contacts"):
        db.session.execute(text(f"TRUNCATE {table} CASCADE"))
    statements = [
        f"""INSERT INTO contacts (first_name, last_name, phone, source, assigned_user_id, created_at, updated_at)
            SELECT 'First' || i, 'Last' || i, '+1' || (2012000000 + i)::text, 'bench',
                   CASE WHEN (i / 10) % 5 = 0 THEN {staff_id} END, now(), now() FROM generate_series(1, {count}) i""",
        f"""INSERT INTO messages (contact_id, direction, kind, body, status, to_phone, created_at)
            SELECT id, 'outgoing', 'sms', 'Hi, we fix foundations. Reply STOP to opt out.', 'delivered', phone,
                   TIMESTAMP '{NOW}' - (id % 300) * INTERVAL '1 day' - INTERVAL '2 hours' FROM contacts""",
        f"""INSERT INTO messages (contact_id, direction, kind, body, status, from_phone, opt_out_class, created_at)
            SELECT id, 'incoming', 'sms', CASE WHEN id % 100 = 0 THEN 'STOP' ELSE 'How much for a crack?' END,
                   'received', phone, CASE WHEN id % 100 = 0 THEN 'keyword' END,
                   TIMESTAMP '{NOW}' - (id % 300) * INTERVAL '1 day' - INTERVAL '1 hour'
            FROM contacts WHERE id % 10 = 0""",
        f"""INSERT INTO messages (contact_id, direction, kind, body, status, to_phone, created_at)
            SELECT id, 'outgoing', 'sms', 'About $400', 'delivered', phone,
                   TIMESTAMP '{NOW}' - (id % 300) * INTERVAL '1 day' FROM contacts WHERE id % 20 = 0""",
        f"""INSERT INTO calls (provider_id, contact_id, phone, direction, status, duration, source, created_at)
            SELECT 'AC' || id, id, phone, 'incoming', 'missed', 0, 'webhook',
                   TIMESTAMP '{NOW}' - (id % 200) * INTERVAL '1 day' FROM contacts WHERE id % 50 = 7""",
        f"""INSERT INTO conversation_states (contact_id, done_at)
            SELECT id, TIMESTAMP '{NOW}' - (id % 300) * INTERVAL '1 day' + INTERVAL '1 hour'
            FROM contacts WHERE id % 80 = 0""",
    ]
    for statement in statements:
        db.session.execute(text(statement))
    db.session.commit()
    db.session.execute(text("ANALYZE"))
    print(f"seeded {count:,} contacts in {time.perf_counter() - started:.1f} s")


def timed(runs, call):
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        result = call()
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return statistics.median(times), times[max(0, int(len(times) * 0.95) - 1)], result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default="postgresql://postgres@127.0.0.1/crm_bench_inbox")
    parser.add_argument("--redis-url", default="", help="empty: an embedded Redis")
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--reseed", action="store_true")
    args = parser.parse_args()
    ensure_database(args.database_url)
    app = create_app({"DATABASE_URL": args.database_url, "REDIS_URL": args.redis_url,
                      "INSTANCE_DIR": Path(tempfile.mkdtemp(prefix="crm-bench-"))})
    with app.app_context():
        upgrade()
        sync_roles()
        admin, _ = ensure_user("bench-admin", "Bench-admin-pass-1", "Admin")
        staff, _ = ensure_user("bench-staff", "Bench-staff-pass-1", "Staff")
        db.session.commit()
        if args.reseed or db.session.scalar(text("SELECT count(*) FROM contacts")) != args.contacts:
            seed(args.contacts, staff.id)
        print(f"{'query':<28} {'user':<6} {'p50 ms':>8} {'p95 ms':>8}  result")
        for name, user in (("Admin", admin), ("Staff", staff)):
            cases = {
                "unread count (menu)": lambda u=user: inbox.unread_count(u.id),
                "folder counts": lambda u=user: inbox.folder_counts(u.id),
                "Waiting folder (100 rows)": lambda u=user: len(inbox.inbox(u.id)["conversations"]),
            }
            for label, call in cases.items():
                p50, p95, result = timed(args.runs, call)
                print(f"{label:<28} {name:<6} {p50:>8.1f} {p95:>8.1f}  {result}")
                db.session.rollback()


if __name__ == "__main__":
    main()
