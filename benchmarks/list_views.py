"""Seed 1,000,000 contacts in PostgreSQL and time the contact list through the real app.

    .venv/bin/python benchmarks/list_views.py [--database-url URL] [--contacts N] [--runs N] [--reseed]

Creates the database (default postgresql://postgres@127.0.0.1/crm_bench_list_views) if missing, migrates
it, seeds once with one generate_series INSERT (a re-run reuses the rows), logs in as an admin
through the login form and prints p50/p95 milliseconds for the contact list's first page, a
sort by last name, a search by phone and a search by name, the phone filter given a number as people
type it, and the search box (a formatted phone, a first and last name, four digits). Nothing here
asserts on time.
"""
import argparse
import random
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import create_engine, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

SURNAMES = ["Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez", "Martinez",
            "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor", "Moore", "Jackson", "Martin",
            "Lee", "Perez", "Thompson", "White", "Harris", "Sanchez", "Clark", "Ramirez", "Lewis", "Robinson",
            "Walker", "Young", "Allen", "King", "Wright", "Scott", "Torres", "Nguyen", "Hill", "Flores", "Green",
            "Adams", "Nelson", "Baker", "Hall", "Rivera", "Campbell", "Mitchell", "Carter", "Roberts", "OBrien",
            "Murphy", "Sullivan", "Kelly", "Walsh", "Fitzgerald", "Donovan", "Callahan", "Doherty", "Kennedy"]
SUFFIXES = ["", "", "", "son", "ley", "ton", "field", "wood", "man", "berg", "stein", "ford", "well", "worth"]
FIRST_NAMES = ["James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda", "David", "Elizabeth",
               "William", "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Sarah", "Charles", "Karen",
               "Maria", "Nancy", "Daniel", "Lisa", "Matthew", "Betty", "Anthony", "Sandra", "Mark", "Ashley",
               "Sean", "Siobhan", "Liam", "Aoife", "Conor", "Niamh", "Brendan", "Maeve", "Declan", "Orla"]


def sql_array(values):
    return "ARRAY[" + ",".join("'" + v.replace("'", "''") + "'" for v in values) + "]"


def ensure_database(url):
    target = make_url(url)
    admin = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        if not conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": target.database}):
            conn.execute(text(f'CREATE DATABASE "{target.database}"'))
    admin.dispose()


def seed(db, count):
    """One INSERT ... SELECT FROM generate_series: about 10 s per million rows."""
    started = time.perf_counter()
    db.session.execute(text("TRUNCATE contacts CASCADE"))
    db.session.execute(text(f"""
        INSERT INTO contacts (first_name, last_name, phone, email, source, created_at, updated_at)
        SELECT ({sql_array(FIRST_NAMES)})[1 + (i * 7919) % {len(FIRST_NAMES)}],
               ({sql_array(SURNAMES)})[1 + (i * 104729) % {len(SURNAMES)}]
                 || ({sql_array(SUFFIXES)})[1 + (i / 7) % {len(SUFFIXES)}],
               '+1' || (2012000000 + i)::text,
               'contact' || i || '@example.com',
               'bench',
               now() - make_interval(secs => i),
               now()
        FROM generate_series(1::bigint, :count) AS i"""), {"count": count})
    db.session.execute(text("ANALYZE contacts"))
    db.session.commit()
    print(f"seeded {count:,} contacts in {time.perf_counter() - started:.1f} s")


def formatted_phone(rng, count):
    """A seeded contact's phone as people type it: "(201) 200-1234" for +12012001234, URL-encoded."""
    digits = str(2012000000 + rng.randrange(1, count + 1))
    return f"%28{digits[:3]}%29+{digits[3:6]}-{digits[6:]}"


def login(app, username, password):
    client = app.test_client()
    page = client.get("/login/").get_data(as_text=True)
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)
    response = client.post("/login/", data={"username": username, "password": password, "csrf_token": token})
    assert response.status_code == 302, "benchmark login failed"
    return client


def measure(client, urls, runs):
    """Time each url (a callable giving a fresh url per run); return sorted milliseconds."""
    for _ in range(3):
        client.get(urls())
    times = []
    for _ in range(runs):
        url = urls()
        started = time.perf_counter()
        response = client.get(url)
        times.append((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            raise SystemExit(f"{url} answered {response.status_code}")
    return sorted(times)


def percentile(sorted_ms, pct):
    return sorted_ms[min(len(sorted_ms) - 1, int(round(pct / 100 * (len(sorted_ms) - 1))))]


def admin_app(database_url, redis_url):
    """A migrated app on database_url (created if missing) with the roles and an Admin "bench-admin";
    returns (app, the admin's password)."""
    ensure_database(database_url)
    from flask_migrate import upgrade

    from app import create_app
    from app.extensions import db
    from app.users import ensure_user, sync_roles

    password = "bench-" + str(random.randrange(10**9))
    app = create_app({"DATABASE_URL": database_url, "REDIS_URL": redis_url,
                      "INSTANCE_DIR": Path(tempfile.mkdtemp(prefix="crm-bench-")), "AUTH_RATE_LIMITED": False})
    with app.app_context():
        upgrade()
        sync_roles()
        user, _ = ensure_user("bench-admin", password, "Admin")
        app.appbuilder.sm.reset_password(user.id, password)
        db.session.commit()
    return app, password


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default="postgresql://postgres@127.0.0.1/crm_bench_list_views")
    parser.add_argument("--redis-url", default="", help="empty: an embedded Redis")
    parser.add_argument("--contacts", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--reseed", action="store_true")
    args = parser.parse_args()

    app, password = admin_app(args.database_url, args.redis_url)
    from app.extensions import db

    with app.app_context():
        have = db.session.scalar(text("SELECT count(*) FROM contacts"))
        if args.reseed or have != args.contacts:
            seed(db, args.contacts)
        db.session.remove()

    client = login(app, "bench-admin", password)
    rng = random.Random(7)
    cases = {
        "first page": lambda: "/contactview/list/",
        "sort by last name": lambda: "/contactview/list/?_oc_ContactView=last_name&_od_ContactView=asc",
        "search by phone": lambda: f"/contactview/list/?_flt_2_phone={rng.randrange(10**6):06d}",
        "search by name": lambda: f"/contactview/list/?_flt_2_last_name={rng.choice(SURNAMES)}{rng.choice(SUFFIXES)}",
        "filter (201) 200-...": lambda: f"/contactview/list/?_flt_0_phone={formatted_phone(rng, args.contacts)}",
        "search box phone": lambda: f"/search/?q={formatted_phone(rng, args.contacts)}",
        "search box name": lambda: f"/search/?q={rng.choice(FIRST_NAMES)}+{rng.choice(SURNAMES)}",
        "search box part": lambda: f"/search/?q={rng.randrange(10**4):04d}",
    }
    print(f"contact list over {args.contacts:,} contacts, {args.runs} runs each (ms)")
    print(f"{'page':<20}{'p50':>8}{'p95':>8}{'max':>8}")
    for name, urls in cases.items():
        ms = measure(client, urls, args.runs)
        print(f"{name:<20}{statistics.median(ms):>8.1f}{percentile(ms, 95):>8.1f}{ms[-1]:>8.1f}")


if __name__ == "__main__":
    main()
