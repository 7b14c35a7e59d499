"""Drive POST /webhooks/openphone against gunicorn on loopback, every event delivered twice.

Prints sustained requests/s, p50/p99 latency, then drains the queue with real workers and
prints processed / lost / duplicated counts read from the database.

    DATABASE_URL=postgresql://postgres@127.0.0.1/crm_bench REDIS_URL=redis://127.0.0.1:6379/5 \
        .venv/bin/python benchmarks/webhook_bench.py --events 3000
Goal on a 2-core machine: >= 300 webhooks/s, p99 <= 50 ms, 0 lost, 0 processed twice.
"""
import argparse
import base64
import json
import os
import random
import secrets
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def build_deliveries(count, secret):
    """Each event signed and listed twice; the duplicate follows within a few deliveries."""
    from app.fake_openphone import FakeOpenPhone

    signer = FakeOpenPhone(webhook_secret=secret)
    signer.server.server_close()
    deliveries = []
    for i in range(count):
        event = signer.event("message.received", {
            "id": f"ACbench{i:07d}", "from": f"+1617555{1000 + i % 900:04d}", "to": ["+16175550100"],
            "text": random.choice(["Yes please", "How much?", "Can you come Friday?", "👍 sounds good"]),
            "direction": "incoming"})
        deliveries.append(signer.signed(event))
    doubled = []
    for i, delivery in enumerate(deliveries):
        doubled.append(delivery)
        if i >= 3:
            doubled.append(deliveries[i - 3])
    doubled.extend(deliveries[-3:])
    return doubled


def drive(url, deliveries, concurrency):
    latencies, failures, lock = [], [], threading.Lock()
    chunks = [deliveries[i::concurrency] for i in range(concurrency)]

    def run(chunk):
        with httpx.Client(timeout=10) as client:
            for body, headers in chunk:
                started = time.perf_counter()
                try:
                    code = client.post(url, content=body, headers=headers).status_code
                except httpx.HTTPError as exc:
                    code = repr(exc)
                elapsed = time.perf_counter() - started
                with lock:
                    latencies.append(elapsed)
                    if code != 200:
                        failures.append(code)

    threads = [threading.Thread(target=run, args=(chunk,)) for chunk in chunks]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started, latencies, failures


def wait_for(url, seconds=30):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise SystemExit(f"{url} did not come up")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--port", type=int, default=5099)
    parser.add_argument("--web-workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--queue-workers", type=int, default=2)
    args = parser.parse_args()
    if not os.environ.get("DATABASE_URL", "").startswith("postgresql") or not os.environ.get("REDIS_URL"):
        raise SystemExit("set DATABASE_URL (PostgreSQL) and REDIS_URL (a Redis db this may flush)")
    secret = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
    env = dict(os.environ, OPENPHONE_WEBHOOK_SECRET=secret, OPENPHONE_API_KEY="bench", QUEUE_NAME="crm-bench",
               ADMIN_PASSWORD=os.environ.get("ADMIN_PASSWORD", "Bench-password-1"), WORKER_TICK_SECONDS="3600")
    python = sys.executable
    subprocess.run([python, "-m", "run", "init"], env=env, cwd=ROOT, check=True, capture_output=True)
    subprocess.run([python, "-c", "from redis import Redis; import os; Redis.from_url(os.environ['REDIS_URL']).flushdb()"],
                   env=env, check=True)
    _sql(env, "DELETE FROM messages; DELETE FROM webhook_events; DELETE FROM contacts WHERE source = 'inbound'")
    deliveries = build_deliveries(args.events, secret)
    web = subprocess.Popen([python, "-m", "gunicorn", "--bind", f"127.0.0.1:{args.port}", "--workers",
                            str(args.web_workers), "--threads", str(args.threads), "--worker-class", "gthread",
                            "--log-level", "warning", "run:create_wsgi()"], env=env, cwd=ROOT)
    try:
        wait_for(f"http://127.0.0.1:{args.port}/health")
        drive(f"http://127.0.0.1:{args.port}/webhooks/openphone", deliveries[:50], 2)  # warm up connections
        elapsed, latencies, failures = drive(f"http://127.0.0.1:{args.port}/webhooks/openphone",
                                             deliveries[50:], args.concurrency)
    finally:
        web.terminate()
        web.wait(10)
    latencies.sort()
    print(f"requests: {len(latencies)} ({args.events} events, each delivered twice) with {args.concurrency} clients")
    print(f"sustained: {len(latencies) / elapsed:.0f} req/s over {elapsed:.1f}s")
    print(f"latency: p50 {statistics.median(latencies) * 1000:.1f} ms, "
          f"p99 {latencies[int(len(latencies) * 0.99) - 1] * 1000:.1f} ms, max {latencies[-1] * 1000:.1f} ms")
    print(f"non-200 answers: {len(failures)} {sorted(set(map(str, failures)))[:5]}")
    from redis import Redis

    print(f"jobs waiting in the queue: {Redis.from_url(env['REDIS_URL']).llen('rq:queue:crm-bench')}")
    started = time.perf_counter()
    workers = [subprocess.Popen([python, "-m", "run", "worker", "--burst"], env=env, cwd=ROOT,
                                stdout=subprocess.DEVNULL, stderr=open(f"/tmp/bench-worker-{i}.log", "w"))
               for i in range(args.queue_workers)]
    for worker in workers:
        worker.wait()
    drained = time.perf_counter() - started
    stored, processed, inbound = _sql(env, "SELECT (SELECT count(*) FROM webhook_events), "
                                           "(SELECT count(*) FROM webhook_events WHERE status = 'processed'), "
                                           "(SELECT count(*) FROM messages WHERE direction = 'incoming')")
    print(f"stored events: {stored}; processed: {processed} in {drained:.1f}s by {args.queue_workers} workers")
    print(f"lost: {args.events - processed}; processed twice (extra inbound messages): {inbound - args.events}")


def _sql(env, statements):
    """Run SQL through the app's engine; returns the first row of the last statement."""
    code = ("import sys, json\nfrom sqlalchemy import create_engine, text\nimport os\n"
            "engine = create_engine(os.environ['DATABASE_URL'].replace('postgresql://', 'postgresql+psycopg://'))\n"
            "row = None\nwith engine.begin() as c:\n"
            "    for s in sys.argv[1].split(';'):\n"
            "        r = c.execute(text(s))\n"
            "        row = list(r.first()) if r.returns_rows else None\n"
            "print(json.dumps(row))\n")
    out = subprocess.run([sys.executable, "-c", code, statements], env=env, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    main()
