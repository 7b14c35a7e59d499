"""Conversations: the thread with one contact, the Inbox of conversations waiting for a reply,
a one-off text sent from a conversation, and the sandbox's simulated reply."""
import httpx
from flask import abort, current_app
from flask_appbuilder.security.sqla.models import User
from sqlalchemy import select

from app import analytics
from app.extensions import db
from app.history_models import Call
from app.media import media_for
from app.messages import enqueue_send, queue_text
from app.models import Contact, Message
from app.openphone import sandbox
from app.opt_outs import active_opt_out, describe
from app.security import current_user_scope, visible_contact

DEFAULT_REPLY = "Yes, I'm interested. Can you come take a look at the crack in my basement?"
INBOX_LIMIT = 500


def conversation(contact_id):
    """What the thread partial needs; used by the contact page and the conversation page."""
    thread = db.session.scalars(select(Message).where(Message.contact_id == contact_id)
                                .order_by(Message.created_at, Message.id)).all()
    contact = db.session.get(Contact, contact_id)
    opt_out = active_opt_out(contact.phone) if contact and contact.phone else None
    calls = db.session.scalars(select(Call).where(Call.contact_id == contact_id)
                               .order_by(Call.created_at.desc(), Call.id.desc())).all()
    return {"contact": contact, "thread": thread, "sandbox": sandbox(current_app.config), "calls": calls,
            "media": media_for([m.id for m in thread], [c.id for c in calls]),
            "opted_out": opt_out is not None, "opt_out_reason": describe(opt_out),
            "default_reply": DEFAULT_REPLY}


def inbox(assigned=""):
    """The Inbox page: conversations waiting for a reply, newest first, for the current user's scope
    ("" anyone, "none" nobody, or a user id), and the users to filter by."""
    scope = current_user_scope()
    query = analytics.waiting_conversations(scope, assigned)
    rows = db.session.execute(query.order_by(Message.created_at.desc()).limit(INBOX_LIMIT)).all()
    calls = db.session.execute(analytics.calls_to_answer(scope, assigned)
                               .order_by(Call.created_at.desc()).limit(INBOX_LIMIT)).all()
    users = db.session.scalars(select(User).order_by(User.username)).all()
    return {"rows": rows, "calls": calls, "users": users, "assigned": assigned, "scoped": scope is not None}


def send_text(contact_id, body, user_id):
    """Queue a one-off text to a contact the current user may see (else 404) and enqueue its send.

    Raises OptedOut or TextError, with nothing stored, when it cannot be sent as written."""
    contact = visible_contact(contact_id)
    try:
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
