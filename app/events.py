"""Webhook events from OpenPhone (and QuickBooks, applied by app.quickbooks_webhooks): stored once by event id, processed by a job with retries and
backoff, recovered when a job is lost, and applied to the CRM (replies, opt-outs, delivery, calls)."""
import functools
import json
import logging
from datetime import timedelta

from flask import current_app
from sqlalchemy import bindparam, or_, select, update
from sqlalchemy.exc import IntegrityError

from app import bulk
from app.calls import call_by_provider_id, merge_call, store_call
from app.contacts import contact_for_phone, normalize_phone
from app.extensions import db
from app.history_models import Media
from app.media import download
from app.messages import CONFIRMATION_KIND, enqueue_send, queue_text
from app.models import CampaignRecipient, Message, WebhookEvent, utcnow
from app.openphone import call_values
from app.opt_outs import classify_opt_out, is_opted_out, opt_in, opt_out, provider_confirms
from app.queue import enqueue, get_redis, job_alive
from app.quickbooks_webhooks import apply_quickbooks_event

log = logging.getLogger(__name__)
BACKOFF_SECONDS = [10, 60, 300, 1800, 3600]
# A delivery report may arrive before the sender committed the provider id; after this it never will.
STATUS_WAIT = timedelta(minutes=15)
CALL_TEXT_EVENTS = ("call.summary.completed", "call.transcript.completed")


def store_event(event_id, event_type, body):
    """Store a verified event once and enqueue it; returns the new row's id, or None for a duplicate.

    One INSERT that the unique event id turns into a no-op for a duplicate, so OpenPhone's
    redeliveries never run an event twice."""
    values = {"event_id": event_id, "type": event_type, "body": body, "received_at": utcnow()}
    try:
        new_id = db.session.execute(_store_statement(db.engine.dialect.name), values).scalar()
        db.session.commit()
    except IntegrityError:  # belt and braces: the unique key is the only judge
        db.session.rollback()
        return None
    if new_id is not None:
        enqueue_event(new_id)
    return new_id


@functools.cache
def _store_statement(dialect):
    """Built once per dialect: the webhook route runs it hundreds of times a second."""
    table = WebhookEvent.__table__
    return (bulk.insert(db.engine, table).values(provider_event_id=bindparam("event_id"), type=bindparam("type"),
                                 body=bindparam("body"), status="received", attempts=0,
                                 received_at=bindparam("received_at"))
            .on_conflict_do_nothing(index_elements=["provider_event_id"]).returning(table.c.id))


def enqueue_event(event_id):
    """Save and push the job in one Redis round trip (the webhook route does this per event)."""
    pipe = get_redis().pipeline()
    job = enqueue("jobs.events.process_event", event_id, job_id=f"webhook-event-{event_id}", pipeline=pipe)
    pipe.execute()
    return job


def process_event(webhook_event_id):
    """Apply one stored webhook event once; failures back off and end as 'failed' for a person."""
    claimed = db.session.execute(
        update(WebhookEvent).where(WebhookEvent.id == webhook_event_id,
                                   WebhookEvent.status.in_(("received", "retrying")))
        .values(status="processing", attempts=WebhookEvent.attempts + 1, next_attempt_at=utcnow())).rowcount
    db.session.commit()
    event = db.session.get(WebhookEvent, webhook_event_id, populate_existing=True)
    if not claimed or event is None:
        return event
    try:
        outcome, follow_up = apply_event(event)
        event.status, event.processed_at, event.error = outcome, utcnow(), None
        db.session.commit()
    except Exception as exc:  # noqa: BLE001 - any failure is recorded on the event and retried
        db.session.rollback()
        log.exception("webhook event %s (%s) failed, attempt %s", event.id, event.type, event.attempts)
        event = db.session.get(WebhookEvent, webhook_event_id, populate_existing=True)
        last = event.attempts >= current_app.config["WEBHOOK_MAX_ATTEMPTS"]
        event.status, event.error = ("failed" if last else "retrying"), f"{type(exc).__name__}: {exc}"[:2000]
        delay = BACKOFF_SECONDS[min(event.attempts, len(BACKOFF_SECONDS)) - 1]
        event.next_attempt_at = None if last else utcnow() + timedelta(seconds=delay)
        db.session.commit()
        return event
    for message_id in follow_up:
        enqueue_send(message_id)
    return event


def retry_event(webhook_event_id):
    """The "Retry" button: a failed event gets a fresh set of attempts."""
    db.session.execute(update(WebhookEvent).where(WebhookEvent.id == webhook_event_id,
                                                  WebhookEvent.status == "failed")
                       .values(status="received", attempts=0, next_attempt_at=None))
    db.session.commit()
    return enqueue_event(webhook_event_id)


def recover_events():
    """Re-enqueue webhook events that are due: lost jobs, retries whose backoff passed, killed workers."""
    now = utcnow()
    db.session.execute(update(WebhookEvent).where(
        WebhookEvent.status == "processing", WebhookEvent.next_attempt_at <= now - timedelta(minutes=10))
        .values(status="retrying"))
    db.session.commit()
    due = db.session.scalars(select(WebhookEvent.id).where(or_(
        (WebhookEvent.status == "received") & (WebhookEvent.received_at <= now - timedelta(seconds=30)),
        (WebhookEvent.status == "retrying") & (WebhookEvent.next_attempt_at <= now)))).all()
    due = [e for e in due if not job_alive(f"webhook-event-{e}")]
    for event_id in due:
        enqueue_event(event_id)
    return len(due)


def apply_event(event):
    """Apply one event in the current transaction. Returns (event status, message ids to send)."""
    if event.type.startswith("qbo."):  # QuickBooks: fetch the changed record into the mirror
        return apply_quickbooks_event(event), []
    payload = json.loads(event.body)
    obj = ((payload.get("data") or {}).get("object")) or {}
    if event.type == "message.received":
        return "processed", receive_message(obj)
    if event.type in ("message.delivered", "message.failed"):
        return update_status(event, obj), []
    if event.type.startswith("call."):
        record_call(event, obj)
        return "processed", []
    log.info("webhook event %s of type %s ignored", event.provider_event_id, event.type)
    return "ignored", []


def _clean(value):
    """Provider text as stored: PostgreSQL text cannot hold NUL, so NUL bytes are dropped."""
    return value.replace("\x00", "") if isinstance(value, str) else value


def _text(obj):
    return _clean(obj.get("text") if obj.get("text") is not None else (obj.get("body") or ""))


def _first(value):
    return _clean(value[0] if isinstance(value, list) and value else value)


def receive_message(obj):
    if not obj.get("id") or not obj.get("from"):
        raise ValueError("message.received without id or from")
    if db.session.scalar(select(Message.id).filter_by(provider_id=obj["id"])):
        return []  # already stored
    sender = _clean(str(obj["from"]))
    phone = normalize_phone(sender)  # None for a short code: stored, but no contact and no opt-out
    contact = contact_for_phone(phone) if phone else None
    now = utcnow()
    recipient = None if phone is None else reply_recipient(phone, now)
    text = _text(obj)
    verdict = classify_opt_out(text)
    message = Message(direction="incoming", kind="sms", status="received", body=text, provider_id=obj["id"],
                      from_phone=phone or sender[:40], to_phone=_first(obj.get("to")),
                      contact_id=contact.id if contact else None, opt_out_class=verdict,
                      campaign_recipient_id=recipient.id if recipient else None)
    db.session.add(message)
    db.session.flush()
    if recipient is not None and recipient.replied_at is None:
        recipient.replied_at = now
    follow_up = []
    if phone is None:
        return follow_up
    if verdict in ("keyword", "phrase"):
        already = is_opted_out(phone)
        opt_out(phone, verdict, reason=text[:500], message_id=message.id)
        if recipient is not None:
            recipient.opted_out_at = recipient.opted_out_at or now
        if not already and not provider_confirms(text):  # OpenPhone confirms its single keywords itself
            confirmation = queue_text(phone, current_app.config["OPT_OUT_CONFIRMATION"], contact_id=contact.id,
                                      from_number=_first(obj.get("to")) or None, kind=CONFIRMATION_KIND)
            db.session.flush()
            follow_up.append(confirmation.id)
        log.info("%s opted out by %s (message %s)", phone, verdict, message.id)
    elif verdict == "opt_in":
        lifted = opt_in(phone, message_id=message.id)
        log.info("%s %s (message %s)", phone, "opted back in" if lifted else "sent START; no keyword opt-out to lift",
                 message.id)
    return follow_up


def reply_recipient(phone, at):
    """The campaign text a reply from this phone at this time answers: the latest one sent to it
    within REPLY_ATTRIBUTION_DAYS before the reply (webhooks and the history import alike)."""
    return db.session.scalar(
        select(CampaignRecipient).where(
            CampaignRecipient.phone == phone, CampaignRecipient.sent_at.is_not(None), CampaignRecipient.sent_at <= at,
            CampaignRecipient.sent_at >= at - timedelta(days=current_app.config["REPLY_ATTRIBUTION_DAYS"]))
        .order_by(CampaignRecipient.sent_at.desc()).limit(1))


def update_status(event, obj):
    message = db.session.scalar(select(Message).filter_by(provider_id=obj.get("id"))) if obj.get("id") else None
    if message is None:
        if utcnow() - event.received_at > STATUS_WAIT:
            return "ignored"  # a text sent outside the CRM
        raise LookupError(f"no outgoing message with provider id {obj.get('id')!r} yet")
    if event.type == "message.delivered":
        message.status, message.delivered_at = "delivered", utcnow()
    else:
        message.status = "failed"
        message.error = str(obj.get("error") or obj.get("errorMessage") or "OpenPhone reports delivery failed")
        if message.campaign_recipient_id:
            recipient = db.session.get(CampaignRecipient, message.campaign_recipient_id)
            if recipient is not None:
                recipient.status, recipient.error = "failed", message.error
    return "processed"


def record_call(event, obj):
    """A call event fills the one calls row of its OpenPhone call (app/calls.py), created by
    whichever door brings the call first; no text row is written for a call."""
    if event.type in CALL_TEXT_EVENTS:
        call = call_by_provider_id(obj.get("callId") or "")
        if call is None:  # the call itself has not arrived yet: retried with backoff, then listed as failed
            raise LookupError(f"no call {obj.get('callId')!r} yet for {event.type}")
        merge_call(call, call_text(obj))
        return call
    outgoing = obj.get("direction") == "outgoing"
    other = _clean(_first(obj.get("to")) if outgoing else obj.get("from"))
    phone = normalize_phone(other) if other else None
    contact = contact_for_phone(phone) if phone else None
    values = call_values(dict(obj, id=obj.get("id") or event.provider_event_id), contact,
                         phone or (other or "")[:40] or None, "webhook")
    values.update(call_media(obj))
    call, _ = store_call(values)
    pending = [m for m in db.session.scalars(select(Media).where(Media.call_id == call.id, Media.status == "pending"))]
    for media in pending:
        download(media)
    return call


def call_media(obj):
    """A call object's voicemail and first recording, as calls columns."""
    voicemail = obj.get("voicemail") if isinstance(obj.get("voicemail"), dict) else {}
    recordings = [m for m in obj.get("media") or [] if isinstance(m, dict) and m.get("url")]
    return {"voicemail_url": voicemail.get("url"), "voicemail_transcript": voicemail.get("transcript"),
            "recording_url": recordings[0]["url"] if recordings else None}


def call_text(obj):
    """A call summary's or transcript's text, as calls columns."""
    summary = obj.get("summary")
    dialogue = obj.get("dialogue") or []
    return {"summary": "\n".join(map(str, summary)) if isinstance(summary, list) else summary,
            "transcript": "\n".join(str(d.get("content") or "") for d in dialogue if isinstance(d, dict)) or None}
