"""Bulk reads and writes, and every PostgreSQL-only speed-up: the one module that asks which
database it speaks to. PostgreSQL gets COPY, arrays, planner settings and advisory locks;
SQLite (the embedded run) takes the plain path: IN lists, executemany, nothing to tune."""
import operator
import zlib

from sqlalchemy import Text, any_, bindparam, cast, event, select, text, union_all, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.pool import Pool

CHUNK = 900  # IN-list size that every database accepts


def is_postgresql(bind):
    """bind: a session, a connection or an engine."""
    dialect = bind.dialect if hasattr(bind, "dialect") else bind.get_bind().dialect
    return dialect.name == "postgresql"


def insert(bind, table):
    """The database's own INSERT construct, the one that offers on_conflict_do_nothing/_do_update."""
    return (postgresql if is_postgresql(bind) else sqlite).insert(table)


def count_or_estimate(session, query, exact_up_to):
    """(count, estimated) of a Query's rows: exact up to exact_up_to; above it PostgreSQL's planner
    estimate (never below the exact_up_to + 1 rows counted), since an exact COUNT(*) over a million
    rows costs ~100 ms. SQLite always counts exactly."""
    connection = session.connection()
    if not is_postgresql(connection):
        return query.count(), False
    count = query.limit(exact_up_to + 1).count()
    if count <= exact_up_to:
        return count, False
    compiled = query.statement.compile(dialect=connection.dialect)
    plan = connection.exec_driver_sql("EXPLAIN (FORMAT JSON) " + str(compiled), compiled.params).scalar()
    return max(count, int(plan[0]["Plan"]["Plan Rows"])), True


def where_in(session, column, values):
    """Conditions that together select column IN values: one = ANY(array) on PostgreSQL (a short
    statement the server can prepare once), else IN lists of CHUNK values."""
    values = list(values)
    if not values:
        return []
    if is_postgresql(session):
        # One array literal that the server parses: ~0.2 us of our CPU a value against ~0.7 us for
        # psycopg dumping a list.
        literal = "{" + ",".join('"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"' for v in values) + "}"
        array = cast(bindparam(f"any_{column.name}", literal, type_=Text), postgresql.ARRAY(column.type))
        return [column == any_(array)]
    return [column.in_(values[i:i + CHUNK]) for i in range(0, len(values), CHUNK)]


def select_in(session, query, *conditions):
    """Rows of query matching any of the where_in conditions given, as mappings; on PostgreSQL in
    one round trip (UNION ALL: each branch still uses its own index)."""
    queries = [query.where(condition) for condition in conditions]
    if is_postgresql(session) and len(queries) > 1:
        queries = [union_all(*queries)]
    for one in queries:
        yield from session.execute(one).mappings()


def insert_rows(session, table, rows, conflict=None, returning=(), same=None, columns=None):
    """INSERT many rows (dicts with the same keys, or with at least `columns` when given);
    ON CONFLICT (conflict) DO NOTHING when given.

    `same`: {column: value} for every row (timestamps, the list): sent once, not once per row.
    Returns the `returning` columns of the rows actually inserted, as tuples. PostgreSQL: COPY
    into a temporary staging table (made once per connection, emptied at commit), then one
    INSERT ... SELECT. SQLite: executemany, which runs in C."""
    if not rows:
        return []
    same = same or {}
    connection = session.connection()
    if not is_postgresql(connection):
        if columns:
            rows = [{c: row[c] for c in columns} for row in rows]
        rows = [{**row, **same} for row in rows] if same else rows
        stmt = sqlite.insert(table)
        stmt = stmt.on_conflict_do_nothing(index_elements=conflict) if conflict else stmt
        if returning:
            return [tuple(r) for r in session.execute(stmt.returning(*(table.c[c] for c in returning)), rows)]
        session.execute(stmt, rows)
        return []
    columns = list(columns or rows[0])
    on_conflict = f" ON CONFLICT ({', '.join(conflict)}) DO NOTHING" if conflict else ""
    staging = stage(session, table, columns, map(_getter(columns), rows))
    back = f" RETURNING {', '.join(returning)}" if returning else ""
    targets = ", ".join([*columns, *same])
    selected = ", ".join([*columns, *(f"%({c})s" for c in same)])
    with connection.connection.driver_connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {table.name} ({targets}) SELECT {selected} FROM {staging}{on_conflict}{back}",
                       same or None)
        return cursor.fetchall() if returning else []


def stage(session, table, columns, rows, extra=()):
    """Put rows (tuples: columns of table, then the extra (name, SQL type) columns) into a
    temporary staging table of this connection, emptied first; returns its name. Set-based
    statements then read it. PostgreSQL: COPY into a table made once per connection (ON COMMIT
    DELETE ROWS empties it at every commit, so it is emptied here only when this transaction
    filled it; after a rollback it may be gone or hold rows, and is made if need be and emptied).
    SQLite: executemany into a temporary table."""
    names = ", ".join([*columns, *(name for name, _type in extra)])
    staging = f"staging_{table.name}_{zlib.crc32(names.encode()):08x}"
    shape = ", ".join([*columns, *(f"CAST(NULL AS {sql_type}) AS {name}" for name, sql_type in extra)])
    connection = session.connection()
    if not is_postgresql(connection):
        connection.exec_driver_sql(f"CREATE TEMPORARY TABLE IF NOT EXISTS {staging} AS SELECT {shape} "
                                   f"FROM {table.name} WHERE 0")
        connection.exec_driver_sql(f"DELETE FROM {staging}")
        marks = ", ".join("?" * (len(columns) + len(extra)))
        connection.exec_driver_sql(f"INSERT INTO {staging} ({names}) VALUES ({marks})", list(rows))
        return staging
    known = connection.info.setdefault("staging", {})
    with connection.connection.driver_connection.cursor() as cursor:
        if staging not in known:
            cursor.execute(f"CREATE TEMPORARY TABLE IF NOT EXISTS {staging} ON COMMIT DELETE ROWS AS "
                           f"SELECT {shape} FROM {table.name} WITH NO DATA; DELETE FROM {staging}")
        elif known[staging] == "filled":
            cursor.execute(f"DELETE FROM {staging}")
        known[staging] = "filled"
        _copy(cursor, staging, names.split(", "), rows)
    return staging


@event.listens_for(Engine, "commit")
def _emptied(connection):
    known = connection.info.get("staging", {})
    for staging in known:
        known[staging] = "empty"


@event.listens_for(Engine, "rollback")
@event.listens_for(Engine, "rollback_savepoint")
def _forget(connection, *_savepoint):
    connection.info.pop("staging", None)


@event.listens_for(Pool, "reset")
def _forget_on_return(_dbapi_connection, record, _reset_state):
    """The pool rolls back a connection given back with its transaction open."""
    record.info.pop("staging", None)


def append_rows(session, table, columns, rows):
    """Append rows (tuples in the order of columns) that cannot conflict: COPY on PostgreSQL,
    executemany elsewhere. Values must already be what the column stores (JSON as text)."""
    if not rows:
        return
    connection = session.connection()
    if is_postgresql(connection):
        with connection.connection.driver_connection.cursor() as cursor:
            _copy(cursor, table.name, columns, rows)
        return
    names = ", ".join(columns)
    marks = ", ".join("?" * len(columns))
    connection.exec_driver_sql(f"INSERT INTO {table.name} ({names}) VALUES ({marks})", list(rows))


def refused(session, exc):
    """Whether the database refused the values written, as opposed to failing (a lost connection,
    a lock, a bug). COPY raises the driver's own errors; sqlite3 raises OverflowError for an
    integer past 64 bits."""
    dbapi = session.get_bind().dialect.dbapi
    return isinstance(exc, (DataError, IntegrityError, OverflowError, dbapi.DataError, dbapi.IntegrityError))


def _getter(columns):
    return operator.itemgetter(*columns) if len(columns) > 1 else (lambda row: (row[columns[0]],))


def _copy(cursor, table_name, columns, rows):
    with cursor.copy(f"COPY {table_name} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def update_many(session, table, rows):
    """UPDATE rows by id; rows with the same set of columns go in one executemany."""
    groups = {}
    for row in rows:
        groups.setdefault(tuple(sorted(k for k in row if k != "id")), []).append(row)
    for columns, group in groups.items():
        stmt = (update(table).where(table.c.id == bindparam("_id"))
                .values({c: bindparam(c) for c in columns}))
        session.connection().execute(stmt, [{"_id": r["id"], **{c: r[c] for c in columns}} for r in group])


def ids_by(session, table, column, values, extra=None):
    """{value: id} of the rows whose column holds one of values (the first id for a repeated value)."""
    found = {}
    for condition in where_in(session, column, values):
        query = select(table.c.id, column).where(condition)
        if extra is not None:
            query = query.where(extra)
        for row_id, value in session.execute(query.order_by(table.c.id)):
            found.setdefault(value, row_id)
    return found


# --- planner settings and locks (PostgreSQL only) --------------------------------------------

def tune_batch(session):
    """Settings for the rest of one import batch's transaction (PostgreSQL; SQLite has none).

    Look-ups use the b-tree indexes: the trigram (GIN) indexes that serve "contains" searches
    can only be read by bitmap scans, which the planner picks for a batch's equality look-ups and
    which then take seconds; and while a table grows faster than its statistics (an import into
    an empty database) the planner believes it small and scans it whole for each look-up,
    comparing every row with every value asked for: 0.3 s more per 1,000 rows imported, until
    autovacuum analyzes it again. Without bitmap and sequential scans the look-ups take
    milliseconds whatever the statistics say (tables without an index, such as the staging
    tables, are still scanned). A plan that must scan one then costs more than jit_above_cost,
    and compiling it would add ~60 ms to each statement: no JIT.

    The commit does not wait for its WAL to reach the disk (synchronous_commit off). A batch
    commits its rows together with the import's checkpoint, so a database crash can lose only
    whole batches with their checkpoint, and the resumed import writes them again; any later
    ordinary commit (the import's end, a text sent to a new contact) flushes them first."""
    if is_postgresql(session):
        session.execute(text("SET LOCAL enable_bitmapscan = off; SET LOCAL enable_seqscan = off; "
                             "SET LOCAL jit = off; SET LOCAL synchronous_commit = off"))


def analyze(session, *tables):
    """Fresh planner statistics for tables that just grew (else PostgreSQL keeps believing
    they are empty and scans them). Commits."""
    if is_postgresql(session):
        session.execute(text(f"ANALYZE {', '.join(tables)}"))
        session.commit()


def lock(session, key):
    """Serialise on key until the transaction ends (PostgreSQL advisory lock); SQLite
    serialises every writer already."""
    if is_postgresql(session):
        session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": key})
