"""Conversations: the thread with one contact (texts and calls in the order they happened), a
one-off text sent from it, and the sandbox's simulated reply."""
from datetime import timedelta
from zoneinfo import ZoneInfo

import httpx
from flask import abort, current_app
from sqlalchemy import func, select

from app import campaigns, inbox, schedule
from app.display import phone
from app.extensions import db
from app.history_models import Call
from app.media import media_for
from app.messages import TextError, enqueue_send, queue_text
from app.models import Contact, ContactProperty, Message, Property
from app.openphone import sandbox
from app.opt_outs import active_opt_out, describe
from app.saved_replies import replies_for
from app.security import visible_contact

DEFAULT_REPLY = "Yes, I'm interested. Can you come take a look at the crack in my basement?"
QUIET_HOURS_STEP = timedelta(minutes=15)


def conversation(contact_id):
    """What the thread partial needs; used by the contact page and the conversation page. The
    thread holds texts and calls, oldest first (a call's webhook log lines are not repeated)."""
    texts = db.session.scalars(select(Message).where(Message.contact_id == contact_id,
                                                     Message.direction.in_(("incoming", "outgoing")))
                               .order_by(Message.created_at, Message.id)).all()
    contact = db.session.get(Contact, contact_id)
    opt_out = active_opt_out(contact.phone) if contact and contact.phone else None
    calls = db.session.scalars(select(Call).where(Call.contact_id == contact_id)
                               .order_by(Call.created_at, Call.id)).all()
    items = sorted([("text", m.created_at, m) for m in texts] + [("call", c.created_at, c) for c in calls],
                   key=lambda item: item[1])
    return {"contact": contact, "timeline": items, "sandbox": sandbox(current_app.config),
            "media": media_for([m.id for m in texts], [c.id for c in calls]),
            "opted_out": opt_out is not None, "opt_out_reason": describe(opt_out),
            "default_reply": DEFAULT_REPLY, "replies": replies_for(contact) if contact else [],
            "filed": inbox.conversation_state(contact_id)}


def open_conversation(contact_id, user_id):
    """The contact, if the current user may see it (else 404), with the conversation marked read for them."""
    contact = visible_contact(contact_id)
    inbox.mark_read(contact.id, user_id)
    return contact


def contact_state(contact):
    """The state whose texting hours apply: the contact's property's, else their mailing address's."""
    state = db.session.scalar(select(func.min(Property.state)).join(
        ContactProperty, ContactProperty.property_id == Property.id).where(ContactProperty.contact_id == contact.id))
    return state or contact.mail_state


def check_texting_hours(contact, now):
    """TextError when a text may not reach the contact now (the quiet hours of their state, as for
    campaigns), saying when it may: nothing is queued, the person sends it again then."""
    state = contact_state(contact)
    if schedule.is_legal_now(state, contact.phone, now):
        return
    opens = now
    for _ in range(8 * 24 * 4):
        opens += QUIET_HOURS_STEP
        if schedule.is_legal_now(state, contact.phone, opens):
            break
    zone = ZoneInfo(current_app.config["COMPANY_TIMEZONE"])
    local = opens.astimezone(zone)
    where = schedule.effective_state(state, contact.phone) or "an unknown state (the strictest hours apply)"
    raise TextError(f"It is outside the hours a text may reach {phone(contact.phone)} ({where}), so nothing was "
                    "queued. "
                    f"Send it from {local:%A} {local:%-d %b} at {local:%H:%M} ({local.tzname()}).")


def send_text(contact_id, body, user_id):
    """Queue a one-off text to a contact the current user may see (else 404) and enqueue its send.

    Raises OptedOut or TextError, with nothing stored, when it cannot be sent as written or now
    is outside the contact's texting hours."""
    contact = visible_contact(contact_id)
    try:
        if contact.phone:
            check_texting_hours(contact, campaigns.sender_now())
        message = queue_text(contact.phone, body, contact_id=contact.id, user_id=user_id)
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    enqueue_send(message.id)
    return message


def simulate_reply(contact_id, body):
    """Sandbox only (else 404): the fake OpenPhone texts back as the contact, through the real webhook.

    Raises httpx.HTTPError when the sandbox OpenPhone does not answer."""
    contact = visible_contact(contact_id)
    if not sandbox(current_app.config):
        abort(404)
    url = f"http://127.0.0.1:{current_app.config['SANDBOX_PORT']}/_fake/reply"
    httpx.post(url, json={"from": contact.phone, "text": body or DEFAULT_REPLY,
                          "to": current_app.config["OPENPHONE_FROM"]}, timeout=5).raise_for_status()
    return contact
