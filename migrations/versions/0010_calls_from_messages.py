"""Calls live in the calls table only: every message row with direction "call" (written by call
webhooks before) becomes, or is folded into, the calls row of its OpenPhone call, and the message
row goes. Nothing is lost: the call's id, direction, status, duration and voicemail come from the
stored webhook event when it is still there, else from the message's own columns; a summary or
transcript the message held fills the call's; an open "Call back" to-do follows its call.

Revision ID: 0010_calls_from_messages
Revises: 0009_history
"""
import json
import re

import sqlalchemy as sa
from alembic import op

revision = '0010_calls_from_messages'
down_revision = '0009_history'
branch_labels = None
depends_on = None

messages = sa.table('messages', sa.column('id', sa.Integer), sa.column('direction', sa.String),
                    sa.column('kind', sa.String), sa.column('status', sa.String), sa.column('body', sa.Text),
                    sa.column('provider_id', sa.String), sa.column('from_phone', sa.String),
                    sa.column('to_phone', sa.String), sa.column('contact_id', sa.Integer),
                    sa.column('created_at', sa.DateTime))
events = sa.table('webhook_events', sa.column('provider_event_id', sa.String), sa.column('type', sa.String),
                  sa.column('body', sa.Text))
calls = sa.table('calls', sa.column('id', sa.Integer), sa.column('provider_id', sa.String),
                 sa.column('contact_id', sa.Integer), sa.column('phone', sa.String),
                 sa.column('phone_number_id', sa.String), sa.column('direction', sa.String),
                 sa.column('status', sa.String), sa.column('duration', sa.Integer),
                 sa.column('answered_by', sa.String), sa.column('recording_url', sa.Text),
                 sa.column('voicemail_url', sa.Text), sa.column('summary', sa.Text),
                 sa.column('transcript', sa.Text), sa.column('source', sa.String),
                 sa.column('created_at', sa.DateTime))
todos = sa.table('todos', sa.column('id', sa.Integer), sa.column('kind', sa.String), sa.column('key', sa.String))
media = sa.table('media', sa.column('id', sa.Integer), sa.column('call_id', sa.Integer),
                 sa.column('contact_id', sa.Integer), sa.column('url', sa.Text),
                 sa.column('content_type', sa.String), sa.column('status', sa.String),
                 sa.column('created_at', sa.DateTime))


def _object(conn, provider_event_id):
    """The call object of the message's webhook event, and the event's type ({} when gone)."""
    row = conn.execute(sa.select(events.c.type, events.c.body)
                       .where(events.c.provider_event_id == provider_event_id)).first()
    if row is None:
        return {}, None
    try:
        obj = (json.loads(row.body or "{}").get("data") or {}).get("object") or {}
    except ValueError:
        obj = {}
    return (obj if isinstance(obj, dict) else {}), row.type


def _texts(message, obj, event_type):
    """The summary and transcript the message held (its body, unless it was only 'status 42s')."""
    summary = obj.get("summary")
    summary = "\n".join(map(str, summary)) if isinstance(summary, list) else summary
    dialogue = obj.get("dialogue") if isinstance(obj.get("dialogue"), list) else []
    transcript = "\n".join(str(d.get("content") or "") for d in dialogue if isinstance(d, dict)) or None
    transcript = transcript or (obj.get("transcript") if isinstance(obj.get("transcript"), str) else None)
    body = message.body or ""
    placeholder = re.fullmatch(r"[\w.-]*( \d+s)?", body) is not None  # "completed 42s", "call.ringing"
    if not summary and not transcript and not placeholder:
        if event_type == "call.transcript.completed":
            transcript = body
        else:
            summary = body
    return summary, transcript


def _values(message, obj, event_type):
    direction = obj.get("direction") or "incoming"
    other = message.to_phone if direction == "outgoing" else message.from_phone
    duration = obj.get("duration")
    if duration is None:
        found = re.search(r"(\d+)s$", message.body or "")
        duration = int(found.group(1)) if found else 0
    voicemail = obj.get("voicemail") if isinstance(obj.get("voicemail"), dict) else {}
    recordings = [m for m in obj.get("media") or [] if isinstance(m, dict) and m.get("url")]
    summary, transcript = _texts(message, obj, event_type)
    return {"contact_id": message.contact_id, "phone": (other or "")[:40] or None,
            "phone_number_id": str(obj.get("phoneNumberId") or "")[:40] or None, "direction": direction[:10],
            "status": str(obj.get("status") or message.status or "logged")[:20], "duration": int(duration or 0),
            "answered_by": str(obj.get("answeredBy") or "")[:64] or None,
            "recording_url": recordings[0]["url"] if recordings else None,
            "voicemail_url": voicemail.get("url"), "summary": summary, "transcript": transcript}


def upgrade():
    conn = op.get_bind()
    rows = conn.execute(sa.select(messages).where(messages.c.direction == 'call').order_by(messages.c.id)).all()
    for message in rows:
        obj, event_type = _object(conn, message.provider_id)
        provider_id = str(obj.get("callId") or obj.get("id") or message.provider_id or f"message-{message.id}")[:64]
        values = _values(message, obj, event_type)
        call = conn.execute(sa.select(calls).where(calls.c.provider_id == provider_id)).first()
        if call is None:
            call_id = conn.execute(calls.insert().values(provider_id=provider_id, source="webhook",
                                                         created_at=message.created_at, **values)
                                   .returning(calls.c.id)).scalar()
        else:
            call_id = call.id
            missing = {k: v for k, v in values.items() if v and not getattr(call, k)
                       and k not in ("direction", "status", "duration")}
            if missing:
                conn.execute(calls.update().where(calls.c.id == call_id).values(**missing))
        if values["voicemail_url"] and conn.execute(sa.select(media.c.id).where(
                media.c.call_id == call_id, media.c.url == values["voicemail_url"])).first() is None:
            conn.execute(media.insert().values(call_id=call_id, contact_id=message.contact_id,
                                               url=values["voicemail_url"], content_type="audio/mpeg",
                                               status="pending", created_at=message.created_at))
        conn.execute(todos.update().where(todos.c.kind == "call_back", todos.c.key == f"call:{message.id}")
                     .values(key=f"moving:{call_id}:{message.id}"))
        conn.execute(messages.delete().where(messages.c.id == message.id))
    _rekey_todos(conn)


def _rekey_todos(conn):
    """Keys move in two steps, so a call id equal to another message's id never collides. A second
    to-do for the same call keeps its interim key; the next to-do refresh closes it."""
    moving = conn.execute(sa.select(todos.c.id, todos.c.key).where(todos.c.kind == "call_back",
                                                                   todos.c.key.like("moving:%"))).all()
    for todo_id, key in moving:
        wanted = f"call:{key.split(':')[1]}"
        taken = conn.execute(sa.select(todos.c.id).where(todos.c.kind == "call_back", todos.c.key == wanted)).first()
        if taken is None:
            conn.execute(todos.update().where(todos.c.id == todo_id).values(key=wanted))


def downgrade():
    pass  # the calls rows hold everything the call messages held; they stay
