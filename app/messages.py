"""The outbox and the one sender: one-off texts, the API, bulk actions and campaigns all
queue a Message here and send it with send_message, exactly once."""
import logging
from datetime import timedelta

from flask import current_app
from sqlalchemy import func, or_, select, update

from app import display
from app.contacts import normalize_phone
from app.extensions import db
from app.models import Campaign, CampaignRecipient, Contact, Message, utcnow
from app.openphone import AmbiguousError, OpenPhoneError, PermanentError, client_from_config
from app.opt_outs import OptedOut, is_opted_out, opted_out_clause
from app.queue import enqueue, job_alive

log = logging.getLogger(__name__)
MAX_LENGTH = 1600
CONFIRMATION_KIND = "opt_out_confirmation"  # the one text an opted-out phone may still get
RECIPIENT_STATUS = {"sent": "sent", "failed": "failed", "review": "review", "cancelled": "skipped"}


class TextError(ValueError):
    """A text that cannot be queued as written; the message says why."""


def queue_text(phone, body, *, contact_id=None, user_id=None, campaign_recipient_id=None, from_number=None,
               kind="sms", opt_out_checked=False):
    """Add an outgoing Message (status queued) to the session; the caller commits and enqueues.

    opt_out_checked: the caller has just checked a whole batch (the campaign sender); the
    send itself checks again either way."""
    number = normalize_phone(phone)
    if not number:
        raise TextError(f"{phone!r} is not a valid phone number.")
    body = (body or "").strip()
    if not body:
        raise TextError("The text is empty.")
    if len(body) > MAX_LENGTH:
        raise TextError(f"The text is {len(body)} characters; OpenPhone accepts at most {MAX_LENGTH}.")
    if kind != CONFIRMATION_KIND and not opt_out_checked and is_opted_out(number):
        raise OptedOut(f"{display.phone(number)} has opted out of texts.")
    if contact_id is None:
        contact_id = db.session.scalar(select(Contact.id).filter_by(phone=number))
    message = Message(direction="outgoing", kind=kind, status="queued", body=body, to_phone=number,
                      from_phone=from_number or current_app.config["OPENPHONE_FROM"], contact_id=contact_id,
                      sent_by_id=user_id, campaign_recipient_id=campaign_recipient_id)
    db.session.add(message)
    return message


def enqueue_send(message_id):
    return enqueue("jobs.messages.send_message", message_id, job_id=f"send-message-{message_id}")


MESSAGES, RECIPIENTS, CAMPAIGNS = Message.__table__, CampaignRecipient.__table__, Campaign.__table__


def _finish(message_id, recipient_id, status, **fields):
    """Record an outcome on the message and on its campaign recipient, in one commit.

    Core statements, not ORM objects: the sender writes these a few hundred times a second and
    the rows themselves are the record (see app/audit.py on messages and campaign_recipients)."""
    db.session.execute(update(MESSAGES).where(MESSAGES.c.id == message_id).values(status=status, **fields))
    if recipient_id is not None and status in RECIPIENT_STATUS:
        values = {"status": RECIPIENT_STATUS[status]}
        if status == "sent":
            values["sent_at"] = fields.get("sent_at")
        elif status == "cancelled":
            values.update(exclusion_reason="opted_out",
                          opted_out_at=func.coalesce(RECIPIENTS.c.opted_out_at, utcnow()))
        else:
            values["error"] = fields.get("error")
        db.session.execute(update(RECIPIENTS).where(RECIPIENTS.c.id == recipient_id).values(**values))
    db.session.commit()
    return status


def send_message(message_id):
    """Send one queued message exactly once; returns its outcome status, or None when it was
    not queued (another sender has it, or it was sent already)."""
    opted_out = opted_out_clause(MESSAGES.c.to_phone).label("opted_out")
    # A campaign text goes out only while its campaign runs: Pause and Cancel also stop texts the
    # sender had claimed (after Resume, recovery sends them inside their legal window).
    campaign_runs = or_(MESSAGES.c.campaign_recipient_id.is_(None), select(RECIPIENTS.c.id).join(
        CAMPAIGNS, CAMPAIGNS.c.id == RECIPIENTS.c.campaign_id).where(
        RECIPIENTS.c.id == MESSAGES.c.campaign_recipient_id, CAMPAIGNS.c.status == "running").exists())
    message = db.session.execute(
        update(MESSAGES).where(MESSAGES.c.id == message_id, MESSAGES.c.status == "queued", campaign_runs)
        .values(status="sending", sending_started_at=utcnow())
        .returning(MESSAGES.c.kind, MESSAGES.c.to_phone, MESSAGES.c.body, MESSAGES.c.from_phone,
                   MESSAGES.c.campaign_recipient_id, opted_out)).first()
    db.session.commit()  # the claim is durable before OpenPhone hears anything
    if message is None:
        return None
    recipient_id = message.campaign_recipient_id
    if message.kind != CONFIRMATION_KIND and message.opted_out:
        log.info("message %s cancelled: %s opted out", message_id, message.to_phone)
        return _finish(message_id, recipient_id, "cancelled", error="opted out before sending")
    try:
        client = client_from_config()  # a stored key the current ENCRYPTION_KEY cannot read raises
        data = client.send_message(message.to_phone, message.body, message.from_phone)
    except PermanentError as exc:
        log.warning("message %s to %s refused: %s", message_id, message.to_phone, exc)
        return _finish(message_id, recipient_id, "failed", error=str(exc))
    except AmbiguousError as exc:
        log.warning("message %s to %s: no clear answer, reconciling: %s", message_id, message.to_phone, exc)
        _finish(message_id, recipient_id, "unknown", error=str(exc))
        reconciled = reconcile_message(message_id, client=client)
        return reconciled.status if reconciled is not None else None
    except OpenPhoneError as exc:  # certainly not sent: back to the queue
        log.warning("message %s to %s not sent, will retry: %s", message_id, message.to_phone, exc)
        return _finish(message_id, recipient_id, "queued", error=str(exc), sending_started_at=None)
    return _finish(message_id, recipient_id, "sent", provider_id=data.get("id"), sent_at=utcnow(), error=None)


def reconcile_message(message_id, final=False, client=None):
    """Look a send with no clear outcome up in OpenPhone; never resend it.

    Found -> sent. Not found -> left 'unknown' for a later look, or 'review' when final."""
    message = db.session.get(Message, message_id, populate_existing=True)
    if message is None or message.status not in ("sending", "unknown"):
        return message
    client = client or client_from_config()
    try:
        since = (message.sending_started_at or message.created_at) - timedelta(minutes=2)
        number_id = client.phone_number_id(message.from_phone)
        found = _find_sent(client.list_messages(number_id, message.to_phone, since=since), message)
    except OpenPhoneError as exc:
        log.warning("message %s: cannot reconcile yet: %s", message.id, exc)
        db.session.rollback()
        return message
    if found:
        log.info("message %s reconciled: OpenPhone has it as %s", message.id, found["id"])
        _finish(message.id, message.campaign_recipient_id, "sent", provider_id=found["id"],
                sent_at=message.sending_started_at, error=None)
    elif final:
        log.warning("message %s to %s: not in OpenPhone's list; needs review", message.id, message.to_phone)
        _finish(message.id, message.campaign_recipient_id, "review", error="No answer from OpenPhone and not in "
                "its message list. Check the conversation in OpenPhone before sending again.")
    else:
        _finish(message.id, message.campaign_recipient_id, "unknown")
    return db.session.get(Message, message_id, populate_existing=True)


def _find_sent(items, message):
    taken = set(db.session.scalars(select(Message.provider_id).where(Message.provider_id.is_not(None),
                                                                     Message.to_phone == message.to_phone)))
    for item in sorted(items, key=lambda i: i.get("createdAt") or ""):
        text = item.get("text") or item.get("body") or item.get("content")
        if item.get("direction") == "outgoing" and text == message.body and item.get("id") not in taken:
            return item
    return None


def recover_sending(older_than=None):
    """Reconcile sends stuck mid-flight (never resend) and re-enqueue one-off texts whose job was lost."""
    older_than = current_app.config["OPENPHONE_RECONCILE_AFTER_SECONDS"] if older_than is None else older_than
    cutoff = utcnow() - timedelta(seconds=older_than)
    stuck = db.session.scalars(select(Message.id).where(
        Message.status.in_(("sending", "unknown")), Message.sending_started_at <= cutoff)).all()
    for message_id in stuck:
        reconcile_message(message_id, final=True)
    lost = db.session.scalars(select(Message.id).where(
        Message.status == "queued", Message.direction == "outgoing", Message.campaign_recipient_id.is_(None),
        Message.created_at <= utcnow() - timedelta(seconds=30))).all()
    requeued = [m for m in lost if not job_alive(f"send-message-{m}")]
    for message_id in requeued:
        enqueue_send(message_id)
    return len(stuck) + len(requeued)
