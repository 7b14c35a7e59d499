"""The audit trail: every change to business data and every security event."""
import ast
import contextvars
import time as clock
import uuid
from contextlib import contextmanager
from datetime import date, datetime, time, timezone
from decimal import Decimal

from flask import has_request_context, request
from flask_jwt_extended import current_user as jwt_user
from flask_login import current_user
from sqlalchemy import event, inspect, select
from sqlalchemy.orm import Session

from app.extensions import db
from app.models import AuditLog
from app.queue import get_redis

# Tables whose rows are bookkeeping, not business data.
SKIPPED_TABLES = {
    "audit_log", "import_rows", "webhook_events", "ab_permission", "ab_view_menu",
    "ab_permission_view", "ab_permission_view_role", "ab_register_user", "ab_api_key",
    "integration_secrets",  # audited by app.integration_secrets without the (encrypted) value
}
# Not skipped, but written past this listener on purpose: the sender's status changes on
# messages and campaign_recipients (queued -> sending -> sent / failed / cancelled / review)
# are Core UPDATEs in app/messages.py, hundreds a second. Those rows are their own record:
# status, sending_started_at, sent_at, provider_id and error say what happened and when, and
# an audit row per transition would only copy them. Creating a message (who texted whom) and
# any change a person makes through the ORM are still audited like every other table.
REDACTED = {"password", "api_key", "secret"}
# Bookkeeping columns whose change alone is not worth an audit row.
IGNORED = {"login_count", "last_login", "fail_login_count", "changed_on", "updated_at", "heartbeat_at"}

_actor = contextvars.ContextVar("audit_actor", default=None)


@contextmanager
def acting_as(user_id=None, username="system"):
    """Attribute changes made outside a web request (CLI, jobs) to a user."""
    token = _actor.set((user_id, username))
    try:
        yield
    finally:
        _actor.reset(token)


def current_actor():
    actor = _actor.get()
    if actor:
        return actor
    if has_request_context():
        if getattr(current_user, "is_authenticated", False):
            return current_user.id, current_user.username

        try:  # the REST API signs in with a JWT, not the session
            if jwt_user:
                return jwt_user.id, jwt_user.username
        except RuntimeError:  # no JWT was verified in this request
            pass
        return None, "anonymous"
    return None, "system"


def _ip():
    return request.remote_addr if has_request_context() else None


def _plain(value):
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, (str, int, float, bool, type(None), list, dict)):
        return value
    return str(value)


# How a counted thing reads in a sentence ("86 texts created"); others read as their name.
NOUNS = {"call": "calls", "conversation": "conversations", "message": "texts", "media": "media",
         "contact": "contacts", "property": "properties", "row": "rows", "person": "people"}


def _words(key):
    parts = key if isinstance(key, tuple) else (key,)
    words = [str(p).replace("_", " ") for p in parts]
    words[0] = NOUNS.get(words[0], words[0])
    return " ".join(words)


def describe_counts(counts):
    """{("call", "created"): 12, "opted_out": 3} -> "12 calls created, 3 opted out" (in key order)."""
    items = sorted(counts.items(), key=lambda item: _words(item[0]))
    return ", ".join(f"{n} {_words(key)}" for key, n in items) or "nothing"


def readable_detail(detail):
    """A detail as a person reads it: counts written as a Python dict (older rows) become words;
    no detail is a blank."""
    if detail is None:
        return ""
    if isinstance(detail, str) and detail.startswith("{") and detail.endswith("}"):
        try:
            parsed = ast.literal_eval(detail)
        except (ValueError, SyntaxError):
            return detail
        if isinstance(parsed, dict) and all(isinstance(n, int) for n in parsed.values()):
            return describe_counts(parsed)
    return detail


def plain_changes(value):
    """Changes as JSON: every key a string (a tuple key becomes its words joined by spaces)."""
    if isinstance(value, dict):
        return {(" ".join(map(str, k)) if isinstance(k, tuple) else str(k)): plain_changes(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain_changes(v) for v in value]
    return _plain(value)


def build_entry(action, object_type=None, object_id=None, changes=None, detail=None):
    """One audit row; a dict of counts as detail is written as words, changes with string keys."""
    user_id, username = current_actor()
    return AuditLog(
        user_id=user_id, username=username, action=action, object_type=object_type,
        object_id=None if object_id is None else str(object_id),
        changes=None if changes is None else plain_changes(changes),
        detail=describe_counts(detail) if isinstance(detail, dict) else detail, ip=_ip(),
    )


def record(action, object_type=None, object_id=None, changes=None, detail=None, session=None):
    """Add one audit row to the session (committed with the change it describes)."""
    (session or db.session).add(build_entry(action, object_type, object_id, changes, detail))


def record_now(action, **kwargs):
    """Write one audit row in its own transaction (security events, failed logins)."""
    with Session(bind=db.engine) as session:
        session.add(build_entry(action, **kwargs))
        session.commit()


def record_bulk(action, object_type, ids, detail=None, session=None):
    """One row for an action over many records (bulk edits, list changes, sends)."""
    ids = [str(i) for i in ids]
    record(action, object_type, changes={"count": len(ids), "ids": ids[:1000]}, detail=detail, session=session)


def record_export(object_type, count, detail=None, object_id=None):
    """One row per export, written at once: an export changes nothing to commit with."""
    record_now("export", object_type=object_type, object_id=object_id, changes={"count": count}, detail=detail)


def history(object_type, object_id, limit=50):
    """The newest audit rows about one record."""
    return db.session.scalars(
        select(AuditLog).where(AuditLog.object_type == object_type, AuditLog.object_id == str(object_id))
        .order_by(AuditLog.id.desc()).limit(limit)).all()


# Rejected anonymous requests (failed logins, unsigned webhooks) are counted in Redis, one hash
# per minute ("kind|source|subject" -> count), and written by the worker's tick as one audit row
# per kind, source and minute: a flood of them cannot flood the append-only table.
REJECTIONS = "crm:rejections:"
REJECTION_TOTALS = "crm:rejection-totals:"  # per minute, kind -> count: the number on /health
REJECTION_MINUTES = "crm:rejection-minutes"  # minutes with counts not yet written
REJECTION_FIELDS_PER_MINUTE = 2000  # past this, new sources and names count under "other"
REJECTION_NAMES_PER_ROW = 20


def count_rejection(kind, source, subject="", now=None):
    """Count one rejected request of `kind` (e.g. "login_failed") from `source` (a client
    address), naming what it tried (`subject`, e.g. the user name), without writing a row."""
    redis = get_redis()
    minute = int((now if now is not None else clock.time()) // 60)
    key = f"{REJECTIONS}{minute}"
    field = f"{kind}|{str(source or 'unknown')[:64]}|{str(subject or '')[:100]}"
    if redis.hlen(key) >= REJECTION_FIELDS_PER_MINUTE and not redis.hexists(key, field):
        field = f"{kind}|other|"
    pipe = redis.pipeline()
    pipe.hincrby(key, field, 1)
    pipe.expire(key, 7 * 86400)
    pipe.hincrby(f"{REJECTION_TOTALS}{minute}", kind, 1)
    pipe.expire(f"{REJECTION_TOTALS}{minute}", 2 * 3600)
    pipe.sadd(REJECTION_MINUTES, minute)
    pipe.execute()


def rejections_last_hour(now=None):
    """{kind: count} of rejections counted in the last 60 minutes (written or not yet)."""
    minute = int((now if now is not None else clock.time()) // 60)
    pipe = get_redis().pipeline()
    for m in range(minute - 59, minute + 1):
        pipe.hgetall(f"{REJECTION_TOTALS}{m}")
    totals = {}
    for counts in pipe.execute():
        for kind, count in counts.items():
            totals[kind.decode()] = totals.get(kind.decode(), 0) + int(count)
    return totals


def flush_rejections(now=None):
    """Write one audit row per kind, source and closed minute with its count; returns the rows
    written. Called by every worker's tick; a lock lets one worker at a time do it, and a
    minute's counts are moved aside before they are written, so nothing counted is lost."""
    redis = get_redis()
    lock, token = REJECTIONS + "lock", uuid.uuid4().hex
    if not redis.set(lock, token, nx=True, ex=60):
        return 0
    written = 0
    try:
        current = int((now if now is not None else clock.time()) // 60)
        for minute in sorted(int(m) for m in redis.smembers(REJECTION_MINUTES)):
            if minute >= current:
                continue
            source_key, moved = f"{REJECTIONS}{minute}", f"{REJECTIONS}writing:{minute}"
            if not redis.exists(moved) and redis.exists(source_key):
                redis.rename(source_key, moved)  # counts arriving late start a new hash
            written += _write_rejection_rows(minute, redis.hgetall(moved))
            redis.delete(moved)
            if not redis.exists(source_key):
                redis.srem(REJECTION_MINUTES, minute)
    finally:
        if redis.get(lock) == token.encode():
            redis.delete(lock)
    return written


def _write_rejection_rows(minute, counts):
    rows = {}
    for field, count in counts.items():
        kind, source, subject = field.decode().split("|", 2)
        row = rows.setdefault((kind, source), {"count": 0, "names": {}})
        row["count"] += int(count)
        if subject:
            row["names"][subject] = row["names"].get(subject, 0) + int(count)
    at = datetime.fromtimestamp(minute * 60, timezone.utc).replace(tzinfo=None)
    with Session(bind=db.engine) as session:
        for (kind, source), row in sorted(rows.items()):
            names = dict(sorted(row["names"].items(), key=lambda item: -item[1])[:REJECTION_NAMES_PER_ROW])
            session.add(AuditLog(at=at, username="anonymous", action=kind, ip=source,
                                 changes={"count": row["count"], "minute": at.isoformat(), "names": names},
                                 detail=f"{row['count']} in the minute from {at:%H:%M} UTC from {source}"))
        session.commit()
    return len(rows)


class AuditLogIsReadOnly(Exception):
    """Audit rows are written once and never changed or deleted through the ORM."""


def _changes(obj, creating):
    state = inspect(obj)
    changes = {}
    for attr in state.mapper.column_attrs:
        key = attr.key
        hist = state.attrs[key].history
        if creating:
            value = getattr(obj, key)
            if value is not None:
                changes[key] = "***" if key in REDACTED else _plain(value)
        elif hist.has_changes():
            old = hist.deleted[0] if hist.deleted else None
            new = hist.added[0] if hist.added else None
            if old != new and key not in IGNORED:
                changes[key] = ["***", "***"] if key in REDACTED else [_plain(old), _plain(new)]
    for rel in state.mapper.relationships:
        if rel.secondary is not None and not creating:
            hist = state.attrs[rel.key].history
            if hist.added or hist.deleted:
                changes[rel.key] = {"added": [str(x) for x in hist.added],
                                    "removed": [str(x) for x in hist.deleted]}
    return changes


def _object_id(obj):
    identity = inspect(obj).identity
    if identity is None:
        return None
    return identity[0] if len(identity) == 1 else "/".join(str(i) for i in identity)


def _before_flush(session, flush_context, instances):
    if any(isinstance(obj, AuditLog) for obj in (*session.dirty, *session.deleted)):
        raise AuditLogIsReadOnly("the audit log cannot be edited or deleted")
    if session.info.get("audit_off"):
        return
    pending = []
    for obj in list(session.new):
        if obj.__table__.name not in SKIPPED_TABLES:
            pending.append((obj, "create", _changes(obj, True)))
    for obj in list(session.dirty):
        if obj.__table__.name in SKIPPED_TABLES or not session.is_modified(obj):
            continue
        changes = _changes(obj, False)
        if changes:
            session.add(build_entry("update", obj.__table__.name, _object_id(obj), changes))
    for obj in list(session.deleted):
        if obj.__table__.name not in SKIPPED_TABLES:
            session.add(build_entry("delete", obj.__table__.name, _object_id(obj), _changes(obj, True)))
    if pending:
        session.info.setdefault("audit_new", []).extend(pending)


def _after_flush_postexec(session, flush_context):
    """New rows get their ids only at flush; write their create entries now."""
    pending = session.info.pop("audit_new", [])
    if not pending:
        return
    rows = [build_entry(action, obj.__table__.name, _object_id(obj), changes) for obj, action, changes in pending]
    for row in rows:
        session.add(row)


@contextmanager
def bulk(session=None):
    """Bulk writers (imports) record one summary entry instead of one per row."""
    session = session or db.session
    session.info["audit_off"] = True
    try:
        yield
    finally:
        session.info.pop("audit_off", None)


_installed = False


def install(app):
    global _installed
    if _installed:
        return
    event.listen(Session, "before_flush", _before_flush)
    event.listen(Session, "after_flush_postexec", _after_flush_postexec)
    _installed = True
