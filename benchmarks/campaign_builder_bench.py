"""Campaign builder benchmark: the builder page, its live preview and the campaign page over a big list.

    .venv/bin/python benchmarks/campaign_builder_bench.py \\
        --database-url postgresql://postgres@127.0.0.1/crm_bench_builder --contacts 100000

Seeds one list of N homeowners (campaign_bench's seed: a property each, every 50th opted out) in a
scratch PostgreSQL database, then times through the app, logged in as an Admin: the new-campaign
page, the preview the page posts while someone types (a real member, segments, audience, cost),
and the campaign page of a draft (forecast from the lists) and of a running campaign with its
plan (exclusions, progress, next send). Prints p50/p95/max milliseconds. Nothing asserts on time.
"""
import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import text  # noqa: E402

from benchmarks.campaign_bench import new_campaign, seed  # noqa: E402
from benchmarks.list_views import admin_app, login, percentile  # noqa: E402


def timed(call, runs):
    for _ in range(3):
        call()
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        response = call()
        times.append((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            raise SystemExit(f"answered {response.status_code}")
    return sorted(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default="postgresql://postgres@127.0.0.1/crm_bench_builder")
    parser.add_argument("--redis-url", default="", help="empty: an embedded Redis")
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()

    app, password = admin_app(args.database_url, args.redis_url)
    from app import campaigns
    from app.extensions import db

    with app.app_context():
        started = time.perf_counter()
        seed(db, args.contacts)
        print(f"seeded {args.contacts:,} contacts in {time.perf_counter() - started:.1f} s")
        list_id = db.session.scalar(text("SELECT id FROM lists"))
        draft = new_campaign(db, "Draft")
        db.session.execute(text("UPDATE campaigns SET status = 'draft' WHERE id = :id"), {"id": draft})
        running = new_campaign(db, "Running")
        db.session.commit()
        campaigns.plan_audience(running)
        db.session.execute(text("UPDATE campaigns SET status = 'running', started_at = now() WHERE id = :id"),
                           {"id": running})
        db.session.commit()
        db.session.remove()

    client = login(app, "bench-admin", password)
    token = client.get("/campaignview/add").get_data(as_text=True).split('name="csrf_token" value="')[1].split('"')[0]
    form = {"csrf_token": token, "lists": str(list_id), "message_a": "Hi {first_name|there}, free crack quotes.",
            "message_b": "Hey {first_name|there} \U0001F642 any cracks at {address}?", "append_opt_out_line": "y"}
    cases = {
        "new campaign page": lambda: client.get("/campaignview/add"),
        "live preview (POST)": lambda: client.post("/campaignview/preview", data=form),
        "draft campaign page": lambda: client.get(f"/campaignview/show/{draft}"),
        "running campaign page": lambda: client.get(f"/campaignview/show/{running}"),
    }
    print(f"campaign builder over a list of {args.contacts:,} contacts, {args.runs} runs each (ms)")
    print(f"{'page':<24}{'p50':>8}{'p95':>8}{'max':>8}")
    for name, call in cases.items():
        ms = timed(call, args.runs)
        print(f"{name:<24}{statistics.median(ms):>8.1f}{percentile(ms, 95):>8.1f}{ms[-1]:>8.1f}")


if __name__ == "__main__":
    main()
