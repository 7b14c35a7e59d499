"""The audit trail: every change to business data and every security event."""
import contextvars
from contextlib import contextmanager
from datetime import date, datetime, time
from decimal import Decimal

from flask import has_request_context, request
from sqlalchemy import event, inspect, select
from sqlalchemy.orm import Session

from app.extensions import db
from app.models import AuditLog

# Tables whose rows are bookkeeping, not business data.
SKIPPED_TABLES = {
    "audit_log", "import_rows", "webhook_events", "ab_permission", "ab_view_menu",
    "ab_permission_view", "ab_permission_view_role", "ab_register_user", "ab_api_key",
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
        from flask_login import current_user

        if getattr(current_user, "is_authenticated", False):
            return current_user.id, current_user.username
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


def build_entry(action, object_type=None, object_id=None, changes=None, detail=None):
    user_id, username = current_actor()
    return AuditLog(
        user_id=user_id, username=username, action=action, object_type=object_type,
        object_id=None if object_id is None else str(object_id), changes=changes,
        detail=detail, ip=_ip(),
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
