"""What each OpenPhone webhook event does to the CRM: replies, opt-outs, delivery, calls."""
import json
import logging
from datetime import timedelta

from flask import current_app
from sqlalchemy import select

from app.contacts import contact_for_phone, normalize_phone
from app.extensions import db
from app.models import CampaignRecipient, Message, utcnow
from app.opt_outs import classify_opt_out, is_opted_out, opt_in, opt_out, provider_confirms

log = logging.getLogger(__name__)
BACKOFF_SECONDS = [10, 60, 300, 1800, 3600]
# A delivery report may arrive before the sender committed the provider id; after this it never will.
STATUS_WAIT = timedelta(minutes=15)


def apply_event(event):
    """Apply one event in the current transaction. Returns (event status, message ids to send)."""
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
    from app.messages import CONFIRMATION_KIND, queue_text

    if not obj.get("id") or not obj.get("from"):
        raise ValueError("message.received without id or from")
    if db.session.scalar(select(Message.id).filter_by(provider_id=obj["id"])):
        return []  # already stored
    sender = _clean(str(obj["from"]))
    phone = normalize_phone(sender)  # None for a short code: stored, but no contact and no opt-out
    contact = contact_for_phone(phone) if phone else None
    now = utcnow()
    recipient = None if phone is None else db.session.scalar(
        select(CampaignRecipient).where(
            CampaignRecipient.phone == phone, CampaignRecipient.sent_at.is_not(None),
            CampaignRecipient.sent_at >= now - timedelta(days=current_app.config["REPLY_ATTRIBUTION_DAYS"]))
        .order_by(CampaignRecipient.sent_at.desc()).limit(1))
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
    """A call event becomes one row on the contact's timeline."""
    outgoing = obj.get("direction") == "outgoing"
    other = _first(obj.get("to")) if outgoing else obj.get("from")
    contact = contact_for_phone(_clean(other)) if other else None
    summary = obj.get("summary") or obj.get("transcript") or obj.get("dialogue")
    if isinstance(summary, list):
        summary = "\n".join(str(part) for part in summary)
    body = summary or " ".join(p for p in (obj.get("status"), f"{obj.get('duration')}s" if obj.get("duration")
                                           else None) if p) or event.type
    db.session.add(Message(direction="call", kind=event.type[:30], status=str(obj.get("status") or "logged")[:20],
                           body=str(body), provider_id=event.provider_event_id[:64],
                           from_phone=_clean(obj.get("from")), to_phone=_first(obj.get("to")),
                           contact_id=contact.id if contact else None))
