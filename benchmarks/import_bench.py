"""Import benchmark: a PropertyRadar file through the real pipeline into PostgreSQL, against COPY.

    BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1/crm_bench_imports .venv/bin/python benchmarks/import_bench.py --rows 100000

Prints rows per second, the import's own CPU time, peak memory (the process's maximum resident
set; with --tracemalloc also Python's allocations), the ratio to a COPY of the same file into a
bare staging table, and the database floor: the time PostgreSQL alone needs to write the rows the
import wrote into tables with this schema's indexes and foreign keys. The load average is printed
with the numbers: on a shared machine both ratios move with it.
The database's business tables are emptied first: point it at a scratch database.

tracemalloc is off unless asked for: it hooks every allocation and made the import ~40% slower
(100,000 rows: 63.0 s with it, 43.3 s without, in two runs at load 5-10), a cost no real import pays, so the
ratios are taken without it. The goal's memory figure is the resident set, printed either way.
"""
import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
SAMPLE = str(Path(__file__).resolve().parents[1] / "tests" / "propertyradar_sample.py")
TABLES = ["audit_log", "import_rows", "imports", "list_members", "contact_properties", "properties", "lists",
          "opt_outs", "contacts"]


def copy_seconds(engine, path):
    """COPY the raw file into an unlogged all-text staging table (the floor for any loader)."""
    with open(path, encoding="utf-8") as f:
        header = f.readline()
    columns = ", ".join(f"c{i} text" for i in range(header.count(",") + 1))
    raw = engine.raw_connection()
    try:
        with raw.cursor() as cur:
            cur.execute(f"DROP TABLE IF EXISTS bench_staging; CREATE UNLOGGED TABLE bench_staging ({columns})")
            started = time.perf_counter()
            with open(path, "rb") as f, cur.copy("COPY bench_staging FROM STDIN WITH (FORMAT csv, HEADER true)") as copy:
                while chunk := f.read(1 << 20):
                    copy.write(chunk)
            elapsed = time.perf_counter() - started
            cur.execute("DROP TABLE bench_staging")
        raw.commit()
    finally:
        raw.close()
    return elapsed


FLOOR_TABLES = ["contacts", "properties", "contact_properties", "list_members", "import_rows"]


def floor_seconds(engine):
    """The database's own share: the rows the import wrote, INSERTed again by one SELECT per table
    into empty copies with the same indexes and foreign keys. No Python, no look-ups, one
    transaction: no import of these rows into this schema can be faster. {table: seconds}."""
    copies = {table: f"floor_{table}" for table in FLOOR_TABLES}
    raw = engine.raw_connection()
    try:
        with raw.cursor() as cur:
            for table, copy in copies.items():
                cur.execute(f"DROP TABLE IF EXISTS {copy} CASCADE; CREATE TABLE {copy} (LIKE {table} INCLUDING ALL)")
            cur.execute("SELECT conrelid::regclass::text, confrelid::regclass::text, pg_get_constraintdef(oid) "
                        "FROM pg_constraint WHERE contype = 'f' AND conrelid::regclass::text = ANY(%s)",
                        (FLOOR_TABLES,))
            for table, parent, definition in cur.fetchall():
                if parent in copies:
                    definition = definition.replace(f"REFERENCES {parent}(", f"REFERENCES {copies[parent]}(")
                cur.execute(f"ALTER TABLE {copies[table]} ADD {definition}")
            raw.commit()
            cur.execute("CHECKPOINT")  # both runs start from a checkpoint (full-page writes alike)
            seconds = {}
            for table, copy in copies.items():
                started = time.perf_counter()
                cur.execute(f"INSERT INTO {copy} SELECT * FROM {table}")
                seconds[table] = time.perf_counter() - started
            raw.commit()
            cur.execute(f"DROP TABLE {', '.join(copies.values())} CASCADE")
        raw.commit()
    finally:
        raw.close()
    return seconds


def _cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--tracemalloc", action="store_true", help="also trace Python's allocations (slows the import)")
    parser.add_argument("--file", help="an existing PropertyRadar CSV (without the licence line) instead of a new one")
    args = parser.parse_args()
    database_url = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1/crm_bench_imports")
    work = Path(tempfile.mkdtemp(prefix="import-bench-"))
    path = work / "propertyradar.csv"
    if args.file:
        path = Path(args.file)
    else:  # no licence line: COPY cannot skip it (the importer gives it a "footer" outcome)
        subprocess.run([sys.executable, SAMPLE, "--rows", str(args.rows), "--seed", str(args.seed), "--messy",
                        "--no-disclaimer", "--out", str(path)], check=True)
    print(f"file: {path} ({path.stat().st_size / 1e6:.1f} MB, {args.rows} rows)")

    os.environ.setdefault("INSTANCE_DIR", str(work))
    from sqlalchemy import text

    from app import create_app
    from app.extensions import db
    from app.imports import create_import, import_counts, run_import

    app = create_app({"DATABASE_URL": database_url, "UPLOAD_FOLDER": str(work / "uploads"),
                      "INSTANCE_DIR": work, "MAX_UPLOAD_MB": 10_000})
    with app.app_context():
        from flask_migrate import upgrade

        upgrade()
        with db.engine.begin() as conn:
            conn.execute(text(f"TRUNCATE {', '.join(TABLES)} CASCADE"))
        copy = copy_seconds(db.engine, path)
        with db.engine.connect() as conn:
            conn.exec_driver_sql("CHECKPOINT")
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        if args.tracemalloc:
            tracemalloc.start()
        load_before = os.getloadavg()[0]
        cpu_before = _cpu_seconds()
        started = time.perf_counter()
        with open(path, "rb") as f:
            imp = create_import(f, path.name, list_name="bench")
        status = run_import(imp.id)
        elapsed = time.perf_counter() - started
        cpu = _cpu_seconds() - cpu_before
        peak = tracemalloc.get_traced_memory()[1] if tracemalloc.is_tracing() else None
        counts = import_counts(imp.id)
        floor = floor_seconds(db.engine)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"status: {status}; row outcomes: {counts['rows']}; people: {counts['people']}")
    print(f"import: {elapsed:.2f} s = {args.rows / elapsed:,.0f} rows/s; {cpu:.2f} s of this process's CPU "
          f"(the database server's is not counted); load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after")
    print(f"COPY into a staging table: {copy:.2f} s = {args.rows / copy:,.0f} rows/s; import/COPY time ratio "
          f"{elapsed / copy:.1f}x")
    print(f"database floor (the same rows INSERT ... SELECTed into copies of their tables, same indexes and "
          f"foreign keys): {sum(floor.values()):.2f} s = {args.rows / sum(floor.values()):,.0f} rows/s; import/floor "
          f"{elapsed / sum(floor.values()):.1f}x")
    print("  " + ", ".join(f"{table} {seconds:.2f} s" for table, seconds in floor.items()))
    if peak is not None:
        print(f"peak Python memory (tracemalloc): {peak / 1e6:.1f} MB")
    print(f"peak resident memory (getrusage): {rss:.0f} MB; {rss_before:.0f} MB before the import started; "
          f"load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
