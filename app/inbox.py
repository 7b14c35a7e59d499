"""The Inbox: every conversation in which something came in (a text, a missed call, a voicemail),
filed by the team and read by each person.

- Unread is per user: a conversation is unread for you when something came in after you last
  opened it (its page or the contact page). One person reading does not hide it from another.
- Done and snoozed are shared: the team answers a customer once. Done files the conversation until
  the next inbound text or call; a snooze hides it until its time or the next inbound, whichever
  comes first.
- A conversation whose last inbound text is an opt-out (STOP, "remove me") is filed under
  Opted out, not in the main list; a later text or call from them brings it back.
- Staff see only the conversations of contacts assigned to them, counts included."""
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from flask import current_app
from flask_appbuilder.security.sqla.models import User
from sqlalchemy import and_, case, exists, func, literal, not_, null, or_, select, true, union_all
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from app.contacts import ContactError
from app.display import local_time
from app.extensions import db
from app.history_models import MISSED_CALL_STATUSES, Call
from app.inbox_models import ConversationRead, ConversationState
from app.models import Contact, Message
from app.schedule import utc
from app.security import ASSIGN_REFUSED, scope_clause, user_scope, visible_contact
from app.utc import utcnow

FOLDERS = {"open": "Waiting", "unread": "Unread", "replied": "Replied", "snoozed": "Snoozed", "done": "Done",
           "opted_out": "Opted out"}
PAGE_SIZE = 100
OPT_OUT_CLASSES = ("keyword", "phrase")
SNOOZE_CHOICES = {"3h": "3 hours", "tomorrow": "Tomorrow 9:00", "monday": "Monday 9:00"}
MAX_SNOOZE = timedelta(days=366)


class InboxError(ValueError):
    """A filing the user asked for that cannot be done; the message says why."""


def _naive(now):
    return utc(now).replace(tzinfo=None) if now is not None else utcnow()


def _conversations():
    """One row per contact with something inbound: the last thing that came in (a text, or a
    missed call or voicemail: its time, kind, text, opt-out class, voicemail) and whether a text
    or a call went back to them after it."""
    texts = (select(Message.contact_id, Message.created_at, literal("text").label("kind"), Message.body,
                    Message.opt_out_class, null().label("voicemail_url"), null().label("voicemail_transcript"))
             .where(Message.direction == "incoming", Message.kind == "sms", Message.contact_id.is_not(None)))
    calls = (select(Call.contact_id, Call.created_at, literal("call").label("kind"), null(), null(),
                    Call.voicemail_url, Call.voicemail_transcript)
             .where(Call.direction == "incoming", Call.contact_id.is_not(None),
                    or_(Call.status.in_(MISSED_CALL_STATUSES), Call.voicemail_url.is_not(None))))
    inbound = union_all(texts, calls).subquery()
    ranked = select(inbound, func.row_number().over(
        partition_by=inbound.c.contact_id, order_by=inbound.c.created_at.desc()).label("rank")).subquery()
    replied = or_(
        exists().where(Message.contact_id == ranked.c.contact_id, Message.direction == "outgoing",
                       Message.created_at > ranked.c.created_at),
        exists().where(Call.contact_id == ranked.c.contact_id, Call.direction == "outgoing",
                       Call.created_at > ranked.c.created_at))
    # Materialized: each conversation's "replied" is looked up once, however many folders use it.
    return (select(ranked.c.contact_id, ranked.c.created_at.label("last_in_at"), ranked.c.kind, ranked.c.body,
                   ranked.c.opt_out_class, ranked.c.voicemail_url, ranked.c.voicemail_transcript,
                   replied.label("replied"))
            .where(ranked.c.rank == 1).cte("conversations").prefix_with("MATERIALIZED"))


def _flags(convo, now):
    """Each rule as a SQL condition over _conversations() joined with the state and the reader."""
    state, read = ConversationState, ConversationRead
    stop = and_(convo.c.kind == "text", func.coalesce(convo.c.opt_out_class, "").in_(OPT_OUT_CLASSES))
    done = and_(state.done_at.is_not(None), state.done_at >= convo.c.last_in_at)
    snoozed = and_(state.snoozed_until.is_not(None), state.snoozed_until > now,
                   state.snoozed_at.is_not(None), state.snoozed_at >= convo.c.last_in_at)
    replied = convo.c.replied == true()
    unread = or_(read.opened_at.is_(None), read.opened_at < convo.c.last_in_at)
    filed = or_(stop, done, snoozed)
    open_ = and_(not_(filed), not_(replied))
    return {"open": open_, "unread": and_(open_, unread), "replied": and_(not_(filed), replied),
            "snoozed": and_(not_(stop), not_(done), snoozed), "done": and_(not_(stop), done), "opted_out": stop,
            "is_unread": unread, "is_replied": replied}


def _query(columns, user_id, scope, assigned, now):
    """columns(convo, flags) -> the SELECT list; joined, scoped and filtered by assignee."""
    convo = _conversations()
    flags = _flags(convo, now)
    query = (select(*columns(convo, flags)).select_from(convo)
             .join(Contact, Contact.id == convo.c.contact_id)
             .outerjoin(ConversationState, ConversationState.contact_id == convo.c.contact_id)
             .outerjoin(ConversationRead, and_(ConversationRead.contact_id == convo.c.contact_id,
                                               ConversationRead.user_id == user_id)))
    if scope is not None:
        query = query.where(scope_clause(Contact, scope))
    if assigned == "none":
        query = query.where(Contact.assigned_user_id.is_(None))
    elif assigned:
        query = query.where(Contact.assigned_user_id == int(assigned))
    return query, convo, flags


def _counts(user_id, scope, assigned, now):
    def columns(convo, flags):
        return [func.coalesce(func.sum(case((flags[name], 1), else_=0)), 0).label(name) for name in FOLDERS]

    query, _, _ = _query(columns, user_id, scope, assigned, now)
    row = db.session.execute(query).one()
    return {name: int(row[i]) for i, name in enumerate(FOLDERS)}


def folder_counts(user_id, assigned="", now=None):
    """{folder: number of conversations} for one user (their scope and their read state)."""
    return _counts(user_id, user_scope(user_id), assigned, _naive(now))


def waiting_count(scope=None, now=None):
    """The conversations waiting for an answer (the Inbox's first folder): everyone's, or those of
    the contacts assigned to one Staff user (scope = their id). The home page shows this number."""
    return _count("open", None, scope, _naive(now))


def _count(folder, user_id, scope, now):
    query, _, flags = _query(lambda convo, flags: [func.count()], user_id, scope, "", now)
    return db.session.scalar(query.where(flags[folder]))


def unread_count(user_id, now=None):
    """The number on the Inbox menu item (every page): conversations waiting and unread by this
    user, in their scope."""
    return _count("unread", user_id, user_scope(user_id), _naive(now))


def inbox(user_id, folder="open", assigned="", now=None, limit=PAGE_SIZE):
    """The Inbox page: a folder's conversations, the latest inbound first, with the counts of
    every folder and the users a conversation can be assigned to."""
    now = _naive(now)
    folder = folder if folder in FOLDERS else "open"
    scope = user_scope(user_id)

    def columns(convo, flags):
        return [Contact, convo.c.last_in_at, convo.c.kind, convo.c.body, convo.c.voicemail_url,
                convo.c.voicemail_transcript, flags["is_unread"].label("unread"), convo.c.replied,
                ConversationState.snoozed_until]

    query, convo, flags = _query(columns, user_id, scope, assigned, now)
    rows = db.session.execute(query.where(flags[folder])
                              .order_by(convo.c.last_in_at.desc(), convo.c.contact_id.desc()).limit(limit)).all()
    conversations = [{
        "contact": contact, "last_in_at": last_in, "unread": bool(unread), "replied": bool(replied),
        "snoozed_until": snoozed_until, "preview": _preview(kind, body, voicemail, transcript),
    } for contact, last_in, kind, body, voicemail, transcript, unread, replied, snoozed_until in rows]
    assignees = [] if scope is not None else db.session.scalars(
        select(User).where(User.active.is_(True)).order_by(User.username)).all()
    return {"conversations": conversations, "counts": folder_counts(user_id, assigned, now), "folder": folder,
            "folders": FOLDERS, "assigned": assigned, "assignees": assignees, "scoped": scope is not None,
            "snooze_choices": snooze_choices(now)}


def _preview(kind, body, voicemail, transcript):
    """What the list shows of the last thing that came in: the text, or the call."""
    if kind == "text":
        return body or ""
    if transcript:
        return f"Voicemail: {transcript}"
    return "Voicemail" if voicemail else "Missed call"


def mark_read(contact_id, user_id, now=None):
    """Record that this user opened the conversation now (one row per user and contact)."""
    now = _naive(now)
    dialect = db.engine.dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    statement = insert(ConversationRead).values(user_id=user_id, contact_id=contact_id, opened_at=now)
    db.session.execute(statement.on_conflict_do_update(index_elements=["user_id", "contact_id"],
                                                       set_={"opened_at": now}))
    db.session.commit()


def conversation_state(contact_id, now=None):
    """How the conversation with a contact is filed now: "done", "snoozed" or None (in the Inbox)."""
    now = _naive(now)
    convo = _conversations()
    flags = _flags(convo, now)
    row = db.session.execute(
        select(case((flags["done"], "done"), (flags["snoozed"], "snoozed"), else_=None), ConversationState.snoozed_until)
        .select_from(convo).outerjoin(ConversationState, ConversationState.contact_id == convo.c.contact_id)
        .where(convo.c.contact_id == contact_id)).first()
    return {"filed": row[0] if row else None, "snoozed_until": row[1] if row else None}


def _state(contact_id):
    """The contact's state row (created on first use) after checking the user may see the contact."""
    contact = visible_contact(contact_id)
    state = db.session.get(ConversationState, contact.id)
    if state is None:
        state = ConversationState(contact_id=contact.id)
        db.session.add(state)
    return state


def mark_done(contact_id, user_id, now=None):
    """File the conversation until the next inbound text or call (audited)."""
    state = _state(contact_id)
    state.done_at, state.done_by_id = _naive(now), user_id
    state.snoozed_until = state.snoozed_at = state.snoozed_by_id = None
    db.session.commit()
    return state


def move_to_inbox(contact_id, now=None):
    """Undo Done and snooze: the conversation is back in the Inbox (audited)."""
    state = _state(contact_id)
    state.done_at = state.done_by_id = state.snoozed_until = state.snoozed_at = state.snoozed_by_id = None
    db.session.commit()
    return state


def snooze_choices(now=None, zone=None):
    """SNOOZE_CHOICES as offered at `now`: the Monday choice says which Monday ("Monday Dec 7, 9:00")."""
    zone = zone or current_app.config["COMPANY_TIMEZONE"]
    monday = local_time(snooze_until("monday", now, zone), zone)
    return {**SNOOZE_CHOICES, "monday": f"Monday {monday:%b} {monday.day}, 9:00"}


def snooze_until(choice, now=None, zone=None):
    """The naive UTC time a snooze choice means: a SNOOZE_CHOICES key, or a local date and time
    ("2026-12-01T09:30", the company's zone). InboxError when it is not a time in the future."""
    now = utc(now) if now is not None else utc(utcnow())
    zone = ZoneInfo(zone or current_app.config["COMPANY_TIMEZONE"])
    local = now.astimezone(zone)
    if choice == "3h":
        until = now + timedelta(hours=3)
    elif choice == "tomorrow":
        until = datetime.combine(local.date() + timedelta(days=1), time(9), zone)
    elif choice == "monday":
        until = datetime.combine(local.date() + timedelta(days=7 - local.weekday()), time(9), zone)
    else:
        try:
            until = datetime.fromisoformat((choice or "").strip()).replace(tzinfo=zone)
        except ValueError:
            raise InboxError("Pick when the conversation comes back: a choice from the list or a date and time.") from None
    until = utc(until)
    if until <= now:
        raise InboxError("Pick a time in the future for the conversation to come back.")
    if until - now > MAX_SNOOZE:
        raise InboxError("Snooze for at most a year.")
    return until.replace(tzinfo=None)


def snooze(contact_id, choice, user_id, now=None):
    """Hide the conversation until the time chosen or the next inbound, whichever is first (audited)."""
    until = snooze_until(choice, now)
    state = _state(contact_id)
    state.snoozed_until, state.snoozed_at, state.snoozed_by_id = until, _naive(now), user_id
    state.done_at = state.done_by_id = None
    db.session.commit()
    return state


def assign(contact_id, assignee_id, acting_user_id):
    """Assign the contact (and so the conversation) to a user, or to nobody (None). Admin and
    Marketer only (ContactError for Staff); audited as a change of the contact."""
    if user_scope(acting_user_id) is not None:
        raise ContactError({"assigned_user": ASSIGN_REFUSED})
    contact = visible_contact(contact_id)
    if assignee_id is not None:
        user = db.session.get(User, assignee_id)
        if user is None or not user.active:
            raise InboxError("Pick an active user to assign the conversation to.")
    contact.assigned_user_id = assignee_id
    db.session.commit()
    return contact

