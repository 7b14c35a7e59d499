"""First QuickBooks sync of a realistic volume, then an incremental sync of 100 changes.

Starts the fake QuickBooks (`crm fake-quickbooks --volume`: 10,000 customers, 20,000 estimates,
15,000 invoices, 12,000 payments) enforcing Intuit's 500 requests/minute, connects the CRM to
it over loopback HTTP, and times the mirror's sync (app.money.run_sync; --read-only: the client's
reads alone). Prints wall time,
requests made, 429s, rows/s, and the incremental sync's time and requests.

    DATABASE_URL=postgresql://postgres@127.0.0.1/crm_bench REDIS_URL=redis://127.0.0.1:6379/5 \
        .venv/bin/python benchmarks/quickbooks_bench.py
Goals: about 70 requests (1,000 rows each), under 60 s; 100 changes under 2 s.
Without DATABASE_URL / REDIS_URL it uses SQLite and an embedded Redis in a temporary directory.
"""
import argparse
import os
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def start_fake(port, token, rate):
    env = dict(os.environ, QUICKBOOKS_SANDBOX_REFRESH_TOKEN=token, QUICKBOOKS_WEBHOOK_VERIFIER="bench-verifier")
    command = [sys.executable, "-m", "run", "fake-quickbooks", "--port", str(port), "--no-seed", "--volume",
               "--rate", str(rate)]
    return subprocess.Popen(command, env=env, cwd=str(ROOT), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stats(url):
    return httpx.get(url + "/_fake/stats", timeout=10).json()


def make_changes(url, count):
    """`count` edits made in QuickBooks: estimates accepted, invoices paid down, customers' phones."""
    kinds = [("Estimate", lambda i: {"TxnStatus": "Accepted", "AcceptedDate": time.strftime("%Y-%m-%d")}, 10_001),
             ("Invoice", lambda i: {"Balance": 0.0}, 30_001),
             ("Customer", lambda i: {"Mobile": {"FreeFormNumber": f"(617) 555-{i:04d}"}}, 1)]
    with httpx.Client(timeout=10) as client:
        for i in range(count):
            entity, fields, first = kinds[i % len(kinds)]
            answer = client.post(url + "/_fake/change", json={"entity": entity, "op": "Update",
                                                              "id": str(first + i * 7), "fields": fields(i)})
            answer.raise_for_status()


ENTITIES = ("Customer", "Estimate", "Invoice", "Payment")


def sync(full, read_only=False):
    """The mirror's sync (app.money.run_sync); with read_only, only the client reading every entity."""
    if not read_only:
        from app.money import run_sync

        return run_sync(full=full)
    from app import quickbooks

    return {entity: {"read": sum(1 for _ in quickbooks.query_all(entity))} for entity in ENTITIES}


def rows_in(counts):
    """QuickBooks records the sync handled (created, updated, deleted, unchanged or read)."""
    return sum(sum(v for v in (counts.get(entity) or {}).values() if isinstance(v, int)) for entity in ENTITIES)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=5096)
    parser.add_argument("--rate", type=int, default=500, help="the fake's requests per minute")
    parser.add_argument("--changes", type=int, default=100)
    parser.add_argument("--read-only", action="store_true", help="time the client's reads alone, not the mirror")
    args = parser.parse_args()

    instance = Path(tempfile.mkdtemp(prefix="qb-bench-"))
    os.environ.setdefault("INSTANCE_DIR", str(instance))
    token = "RT1-" + secrets.token_urlsafe(24)
    fake = start_fake(args.port, token, args.rate)
    url = f"http://127.0.0.1:{args.port}"
    try:
        from app.fake_quickbooks import SANDBOX_REALM_ID
        from app.fake_server import wait_until_up

        started = time.perf_counter()
        if not wait_until_up(url, timeout=300):
            raise SystemExit("the fake QuickBooks did not start")
        print(f"fake QuickBooks seeded and up in {time.perf_counter() - started:.1f}s")
        from flask_migrate import upgrade

        from app import create_app
        from app.quickbooks import connect

        app = create_app({"INSTANCE_DIR": instance, "QUICKBOOKS_CLIENT_ID": "", "QUICKBOOKS_SANDBOX_PORT": args.port,
                          "DATABASE_URL": os.environ.get("DATABASE_URL", f"sqlite:///{instance / 'bench.db'}"),
                          "REDIS_URL": os.environ.get("REDIS_URL", "")})
        with app.app_context():
            upgrade()
            connect(SANDBOX_REALM_ID, token)
            before = stats(url)
            started = time.perf_counter()
            result = sync(full=True, read_only=args.read_only)
            wall = time.perf_counter() - started
            after = stats(url)
            requests = after.get("requests", 0) - before.get("requests", 0)
            rows = rows_in(result)
            print(f"first sync: {wall:.1f}s wall, {requests} requests, {after.get('limited', 0)} answered 429, "
                  f"{rows} rows, {rows / wall:.0f} rows/s")
            if args.read_only:
                return
            make_changes(url, args.changes)
            before = stats(url)
            started = time.perf_counter()
            result = sync(full=False)
            wall = time.perf_counter() - started
            after = stats(url)
            print(f"incremental sync of {args.changes} changes: {wall:.2f}s wall, "
                  f"{after.get('requests', 0) - before.get('requests', 0)} requests, result {result}")
            print(f"writes attempted against QuickBooks: {after.get('writes', 0)}")
    finally:
        fake.terminate()
        fake.wait(10)


if __name__ == "__main__":
    main()
