"""Campaigns: the state machine, audience planning, A/B assignment and the one sender loop."""
import logging
import time
from datetime import datetime, timedelta, timezone

from flask import current_app
from sqlalchemy import and_, case, delete, event, exists, func, insert, inspect, literal, or_, select, update
from sqlalchemy.orm import Session

from app import audit, bulk, schedule
from app.extensions import db
from app.messages import enqueue_send, queue_text, send_message
from app.models import (
    DEFAULT_TEMPLATE,
    Campaign,
    CampaignRecipient,
    CampaignVariant,
    Contact,
    ContactProperty,
    ListMember,
    Message,
    Property,
    QbCustomer,
    utcnow,
)
from app.opt_outs import opted_out_clause, opted_out_phones
from app.queue import enqueue, get_redis, job_alive
from app.texts import TemplateError, render_template, token_values, validate_template

log = logging.getLogger(__name__)
R = CampaignRecipient
TRANSITIONS = {
    "draft": {"scheduled"},
    "scheduled": {"draft", "running", "cancelled"},  # draft: Unschedule, the plan is dropped
    "running": {"paused", "completed", "cancelled"},
    "paused": {"running", "completed", "cancelled"},
}
# What the plan and the texts are made of: fixed once a campaign leaves draft (Unschedule to edit).
PLANNED_FIELDS = {"lists": "lists", "filters": "filters", "frequency_cap_days": "frequency cap",
                  "include_previously_texted": "include people texted before",
                  "include_existing_customers": "include existing customers",
                  "append_opt_out_line": "opt-out line"}
# Read by the sender as it goes: a scheduled campaign may still change them.
SENDING_FIELDS = {"name": "name", "sending_number": "sending number", "daily_limit": "daily limit",
                  "window_days": "send days", "window_start": "window start", "window_end": "window end",
                  "start_date": "start date"}
# The message every new campaign starts with; Schedule refuses it until someone writes the text.
# The order the page offers the next states in.
STATUS_ORDER = ("scheduled", "running", "paused", "completed", "draft", "cancelled")
CLAIM_BATCH = 25  # recipients claimed per transaction when the quota allows several


class CampaignError(ValueError):
    """A campaign change the user asked for is not allowed; the message says why."""


class NoSuchCampaign(CampaignError):
    """The campaign asked for does not exist (or no longer does)."""


def check_transition(campaign, new_status):
    if new_status not in TRANSITIONS.get(campaign.status, ()):
        allowed = ", ".join(sorted(TRANSITIONS.get(campaign.status, ()))) or "nothing"
        raise CampaignError(f"A {campaign.status} campaign cannot become {new_status}; it can become {allowed}.")


def change_status(campaign_id, new_status, now=None):
    """Move a campaign along draft -> scheduled -> running <-> paused -> completed / cancelled;
    scheduled -> draft (Unschedule) drops the plan."""
    now = now or utcnow()
    campaign = db.session.get(Campaign, campaign_id, populate_existing=True, with_for_update=True)
    if campaign is None:
        raise NoSuchCampaign(f"There is no campaign {campaign_id}.")
    check_transition(campaign, new_status)
    if new_status == "scheduled":
        check_ready(campaign)
        campaign.planned_at = campaign.plan_error = None
    if new_status == "draft":
        db.session.execute(delete(R).where(R.campaign_id == campaign.id))
        campaign.planned_at = campaign.plan_error = None
    if new_status == "running":
        if campaign.planned_at is None:
            raise CampaignError("The audience is still being planned; start the campaign when the counts are shown.")
        campaign.started_at = campaign.started_at or now
    if new_status in ("completed", "cancelled"):
        campaign.finished_at = now
        _drop_unsent(campaign.id, new_status)
    campaign.status = new_status
    db.session.commit()
    if new_status == "scheduled":
        _enqueue("jobs.campaigns.plan_audience", campaign.id, job_id=f"plan-campaign-{campaign.id}")
    if new_status == "running":
        enqueue_sender(campaign.id)
    return campaign


def _drop_unsent(campaign_id, reason):
    """Nobody not yet texted will be: queued recipients are skipped, and texts the sender claimed
    but has not sent are cancelled (recipients first: on PostgreSQL that waits for a claim in
    progress to commit, so its messages are seen by the second statement)."""
    db.session.execute(update(R).where(R.campaign_id == campaign_id, R.status == "queued")
                       .values(status="skipped", exclusion_reason=reason))
    claimed = select(R.id).where(R.campaign_id == campaign_id, R.status == "sending").scalar_subquery()
    dropped = db.session.execute(update(Message).where(Message.campaign_recipient_id.in_(claimed),
                                                       Message.status == "queued")
                                 .values(status="cancelled", error=f"campaign {reason} before this text was sent")
                                 .returning(Message.campaign_recipient_id)).scalars().all()
    if dropped:
        db.session.execute(update(R).where(R.id.in_(dropped), R.status == "sending")
                           .values(status="skipped", exclusion_reason=reason))
    return len(dropped)


def check_ready(campaign):
    """Everything a campaign needs before its audience is planned."""
    if not campaign.lists:
        raise CampaignError("Choose at least one list as the audience.")
    if not campaign.variants:
        raise CampaignError("Add at least one message variant (A).")
    for variant in campaign.variants:
        try:
            validate_template(variant.template)
        except TemplateError as exc:
            raise CampaignError(f"Variant {variant.label}: {exc}") from exc
        if " ".join(variant.template.split()) == " ".join(DEFAULT_TEMPLATE.split()):
            raise CampaignError(f"Variant {variant.label} still has the default message "
                                f"({DEFAULT_TEMPLATE.strip()}). Write the text to send, then schedule.")
    if not campaign.window_start or not campaign.window_end or campaign.window_start >= campaign.window_end:
        raise CampaignError("The send window must start before it ends (e.g. 09:00 to 17:00).")
    if (campaign.daily_limit or 0) < 1:
        raise CampaignError("The daily limit must be at least 1.")


# --- what may change in which state: every door (forms, APIs, scripts) meets these -------------

def check_campaign_edit(campaign, changed=None):
    """A draft takes any edit. A scheduled campaign keeps its plan (audience, texts) but its
    sending settings may change. After that nothing changes: clone it."""
    changed = (changed_fields(campaign) if changed is None else set(changed)) & {*PLANNED_FIELDS, *SENDING_FIELDS}
    status = committed(campaign, "status")
    if status in (None, "draft") or not changed:
        return
    if status == "scheduled":
        locked = [label for name, label in PLANNED_FIELDS.items() if name in changed]
        if locked:
            raise CampaignError(f"This campaign is scheduled and its audience is planned: Unschedule to edit "
                                f"{', '.join(locked)}.")
        return
    raise CampaignError(f"A {status} campaign cannot be edited: clone it instead.")


def edit_notice(campaign):
    """What an edit may still change, in the campaign's state's words (shown on the form)."""
    if campaign.status == "draft":
        return "A draft: everything can change until it is scheduled."
    if campaign.status == "scheduled":
        return (f"Scheduled: the audience is planned, so {', '.join(PLANNED_FIELDS.values())} and the messages "
                f"are fixed. Unschedule to edit them; {', '.join(SENDING_FIELDS.values())} can still change.")
    return f"A {campaign.status} campaign cannot be edited: clone it instead."


def check_variant_edit(variant):
    """Variants are frozen once their campaign leaves draft: none added, changed, moved or deleted.
    A move is checked against both campaigns, the one it leaves and the one it joins."""
    campaign_ids = {committed(variant, "campaign_id"), variant.campaign_id}
    if variant.campaign is not None:
        campaign_ids.add(variant.campaign.id)
    for campaign_id in campaign_ids - {None}:
        campaign = db.session.get(Campaign, campaign_id)
        status = committed(campaign, "status") if campaign is not None else None
        if status not in (None, "draft"):
            hint = "Unschedule to edit them" if status == "scheduled" else "clone it instead"
            raise CampaignError(f"The messages of a {status} campaign ({campaign.name}) cannot be changed: {hint}.")


def check_deletable(campaign):
    status = committed(campaign, "status")
    if status in ("running", "paused"):
        raise CampaignError(f"A {status} campaign cannot be deleted: Cancel it first (its unsent texts are "
                            "dropped), then delete it.")


EMPTY = (None, {}, [])


def changed_fields(obj):
    """Names of the columns and collections an unflushed change to obj alters."""
    state = inspect(obj)
    changed = set()
    for attr in state.mapper.column_attrs:
        hist = state.attrs[attr.key].history
        if hist.added or hist.deleted:
            old, new = (hist.deleted or [None])[0], (hist.added or [None])[0]
            if old != new and not (old in EMPTY and new in EMPTY):  # no filters: None or {}
                changed.add(attr.key)
    for rel in state.mapper.relationships:  # a list's members, or the row a many-to-one points at
        hist = state.attrs[rel.key].history
        if hist.added or hist.deleted:
            changed.add(rel.key)
    return changed


def committed(obj, key):
    """The value of obj.key in the database, before any change not yet flushed (None for a new row)."""
    state = inspect(obj)
    if state.transient or state.pending:
        return None
    hist = state.attrs[key].history
    return (hist.deleted or hist.unchanged or [getattr(obj, key)])[0]


def retire_campaign(campaign, session=None):
    """Before a campaign is deleted: texts it claimed but never sent are cancelled (a message whose
    recipient is gone would look like a one-off text and go out at any hour), and what happened to
    its recipients stays in the audit log after their rows are gone."""
    session = session or db.session
    check_deletable(campaign)
    recipients = select(R.id).where(R.campaign_id == campaign.id).scalar_subquery()
    session.execute(update(Message).where(Message.campaign_recipient_id.in_(recipients), Message.status == "queued")
                    .values(status="cancelled", error="campaign deleted before this text was sent"))
    by_status = dict(session.execute(select(R.status, func.count()).where(R.campaign_id == campaign.id)
                                     .group_by(R.status)).all())
    if not by_status:
        return
    texted = session.execute(select(R.phone, R.status, R.sent_at).where(
        R.campaign_id == campaign.id, R.sent_at.is_not(None)).order_by(R.sent_at).limit(1000)).all()
    audit.record("delete", "campaign_recipients", campaign.id, detail=f"recipients of campaign {campaign.name!r}",
                 changes={"campaign_id": campaign.id, "count": sum(by_status.values()), "by_status": by_status,
                          "texted": [[phone, status, sent_at.isoformat()] for phone, status, sent_at in texted]},
                 session=session)


def _guard_flush(session, flush_context, instances):
    """The backstop under every door: an ORM change the rules above refuse never reaches the database."""
    deleted = [obj for obj in session.deleted if isinstance(obj, Campaign)]
    for campaign in deleted:
        retire_campaign(campaign, session)
    for obj in (*session.new, *session.dirty, *session.deleted):
        if isinstance(obj, Campaign) and obj in session.dirty and session.is_modified(obj):
            check_campaign_edit(obj)
        elif isinstance(obj, CampaignVariant) and obj.campaign not in deleted:
            if obj in session.new or obj in session.deleted or changed_fields(obj) & {"label", "template",
                                                                                    "campaign_id", "campaign"}:
                check_variant_edit(obj)


def install(app):
    """Campaign rules as a flush guard on every session (see _guard_flush)."""
    if not event.contains(Session, "before_flush", _guard_flush):
        event.listen(Session, "before_flush", _guard_flush)


def add_draft_variant(campaign):
    """A new campaign starts with variant A holding the draft template (refused at Start until edited)."""
    if not campaign.variants:
        campaign.variants = [CampaignVariant(label="A", template=DEFAULT_TEMPLATE)]
    return campaign


def clone_campaign(campaign_id, user_id=None):
    """A new draft with the same audience, settings and messages."""
    src = db.session.get(Campaign, campaign_id)
    copy = Campaign(name=f"{src.name} (copy)", created_by_id=user_id, lists=list(src.lists), **{
        key: getattr(src, key) for key in ("sending_number", "daily_limit", "window_days", "window_start",
                                           "window_end", "start_date", "frequency_cap_days",
                                           "include_previously_texted", "include_existing_customers",
                                           "append_opt_out_line", "filters")})
    copy.variants = [CampaignVariant(label=v.label, template=v.template) for v in src.variants]
    db.session.add(copy)
    db.session.commit()
    return copy


# --- audience planning -------------------------------------------------------------

def _in_filters(filters, contact):
    """SQL condition: one of the contact's properties matches the property filters."""
    conditions = []
    if filters.get("property_types"):
        conditions.append(Property.type.in_(filters["property_types"]))
    if filters.get("cities"):
        conditions.append(func.lower(Property.city).in_([c.lower() for c in filters["cities"]]))
    if filters.get("zips"):
        conditions.append(Property.zip.in_(filters["zips"]))
    if filters.get("year_built_min"):
        conditions.append(Property.year_built >= int(filters["year_built_min"]))
    if filters.get("year_built_max"):
        conditions.append(Property.year_built <= int(filters["year_built_max"]))
    matches = literal(True)
    if conditions:
        matches = exists().where(ContactProperty.contact_id == contact.id,
                                 Property.id == ContactProperty.property_id, *conditions)
    if filters.get("not_replied"):
        matches = and_(matches, ~exists().where(Message.contact_id == contact.id, Message.direction == "incoming"))
    return matches


def history_texted(phone_column, since):
    """SQL condition: a text to this phone found in the OpenPhone history went out since `since`
    (texts sent before the CRM count toward the frequency cap like another campaign's)."""
    return exists().where(Message.to_phone == phone_column, Message.direction == "outgoing",
                          Message.source == "openphone history", Message.created_at >= since)


def plan_audience(campaign_id, now=None):
    """Plan the recipients in set-based SQL: one row per phone, exclusions with their reason,
    balanced A/B by position. Re-running it before any send gives the same plan."""
    now = now or utcnow()
    # Locked until the plan commits: Unschedule waits for it, so it never drops a plan that lands after.
    campaign = db.session.get(Campaign, campaign_id, populate_existing=True, with_for_update=True)
    if campaign is None or campaign.status != "scheduled":
        db.session.rollback()
        return None
    c = Contact.__table__
    list_ids = [lst.id for lst in campaign.lists]
    members = select(ListMember.contact_id).where(ListMember.list_id.in_(list_ids)).distinct().subquery()
    cap_since = now - timedelta(days=campaign.frequency_cap_days or 0)
    reason = case(
        (or_(c.c.phone.is_(None), ~c.c.phone.like("+%")), "no_valid_phone"),
        (opted_out_clause(c.c.phone), "opted_out"),
        # Existing customers (a QuickBooks customer is linked to the contact) unless the campaign includes them.
        (and_(literal(not campaign.include_existing_customers), exists().where(
            QbCustomer.contact_id == c.c.id, QbCustomer.deleted.is_(False))), "existing_customer"),
        (~_in_filters(campaign.filters or {}, c.c), "outside_filters"),
        (and_(literal(bool(campaign.frequency_cap_days)), or_(exists().where(
            R.phone == c.c.phone, R.campaign_id != campaign.id, R.sent_at >= cap_since),
            history_texted(c.c.phone, cap_since))), "frequency_cap"),
        (and_(literal(not campaign.include_previously_texted), exists().where(
            Message.to_phone == c.c.phone, Message.direction == "outgoing",
            Message.status.in_(("sent", "delivered", "sending", "unknown", "review")))), "texted_before"),
        else_=None)
    state = (select(func.min(Property.state)).join(ContactProperty, ContactProperty.property_id == Property.id)
             .where(ContactProperty.contact_id == c.c.id).scalar_subquery())
    # MATERIALIZED: each person's reason is worked out once, not once per place it is used below.
    planned = (select(c.c.id, c.c.phone, state.label("state"), reason.label("reason"))
               .select_from(c.join(members, members.c.contact_id == c.c.id)).cte("planned")
               .prefix_with("MATERIALIZED"))
    # Position 1..n in contact order among the people to text; variant = position modulo the variants.
    position = func.row_number().over(partition_by=planned.c.reason.is_(None), order_by=planned.c.id)
    variant = planned_variant(campaign, position)
    db.session.execute(delete(R).where(R.campaign_id == campaign.id))
    db.session.execute(insert(R).from_select(
        ["campaign_id", "contact_id", "phone", "state", "status", "exclusion_reason", "position", "variant_id"],
        select(literal(campaign.id), planned.c.id, planned.c.phone, planned.c.state,
               case((planned.c.reason.is_(None), "queued"), else_="excluded"), planned.c.reason, position,
               case((planned.c.reason.is_(None), variant), else_=None))))
    campaign.planned_at, campaign.plan_error = utcnow(), None
    audit.record("plan", "campaigns", campaign.id, detail=exclusion_counts(campaign.id))
    db.session.commit()
    # Fresh statistics, or the planner keeps believing the new rows are rare and skips the primary key.
    bulk.analyze(db.session, "campaign_recipients")
    return exclusion_counts(campaign.id)


def exclusion_counts(campaign_id):
    """{"queued": n, "opted_out": n, ...}: the plan the user sees before starting."""
    rows = db.session.execute(select(func.coalesce(R.exclusion_reason, R.status), func.count())
                              .where(R.campaign_id == campaign_id).group_by(func.coalesce(R.exclusion_reason, R.status)))
    return dict(rows.all())


def planned_variant(campaign, position):
    """SQL: the variant the plan gives the recipient at this position (1, 2, ...): A, B, A, B, ..."""
    variant_ids = [v.id for v in sorted(campaign.variants, key=lambda v: v.label)]
    return case(*[((position - 1) % len(variant_ids) == i, vid) for i, vid in enumerate(variant_ids)])


# --- sending -------------------------------------------------------------------------

def sender_now(now=None):
    """The sender's clock: the given time, else the wall clock."""
    return datetime.now(timezone.utc) if now is None else schedule.utc(now)


def send_due_messages(campaign_id, now=None, max_messages=None, max_seconds=None):
    """The one sender loop: claim due recipients, queue their text, send it. Returns texts sent.
    With max_seconds it stops after that long; the recovery tick enqueues the next round."""
    done, deadline = 0, None if max_seconds is None else time.monotonic() + max_seconds
    while (max_messages is None or done < max_messages) and (deadline is None or time.monotonic() < deadline):
        message_ids = claim_due(campaign_id, sender_now(now), limit=None if max_messages is None else
                                max_messages - done)
        if not message_ids:
            break
        for message_id in message_ids:
            send_message(message_id)
            done += 1
    return done


def claim_due(campaign_id, now, limit=None):
    """In one transaction: claim the next due recipients (queued -> sending, conditionally) and
    queue their messages. Returns the message ids to send; [] when nothing is due now."""
    campaign = db.session.get(Campaign, campaign_id, populate_existing=True)
    if campaign is None or campaign.status != "running":
        return []
    zone = current_app.config["CAMPAIGN_TIMEZONE"]
    if campaign.start_date and now.astimezone(schedule.ZoneInfo(zone)).date() < campaign.start_date:
        return []
    if not schedule.is_campaign_open(campaign.window_days, campaign.window_start, campaign.window_end, now, zone):
        return []
    quota = schedule.paced_quota(campaign.daily_limit, campaign.window_start, campaign.window_end, now, zone,
                                 spread=current_app.config["CAMPAIGN_SPREAD"])
    with audit.bulk():  # the messages are the record of what the sender did
        _lock_number(campaign.sending_number)
        # Claimed first: on SQLite the claim takes the write lock, so the count below is current.
        picked = _claim(campaign, now, min(CLAIM_BATCH, limit or CLAIM_BATCH))
        room = quota - texts_sent_today(campaign.sending_number, now)
        if not picked or room <= 0:
            db.session.rollback()
            if not picked:
                _complete_if_done(campaign)
            return []
        if len(picked) > room:
            db.session.execute(update(R).where(R.id.in_(picked[room:])).values(status="queued", sending_started_at=None))
            picked = picked[:room]
        message_ids = _queue_messages(campaign, picked, now)
        db.session.commit()
    return message_ids


def texts_sent_today(sending_number, now):
    """Campaign texts from this number today (business time zone), every campaign counted."""
    start, end = schedule.day_bounds_utc(now, current_app.config["CAMPAIGN_TIMEZONE"])
    return db.session.scalar(select(func.count(Message.id)).where(
        Message.from_phone == sending_number, Message.campaign_recipient_id.is_not(None),
        Message.created_at >= start, Message.created_at < end))


def _lock_number(sending_number):
    """Serialise quota checks per sending number (PostgreSQL); SQLite serialises every writer."""
    bulk.lock(db.session, "send:" + sending_number)


def _claim(campaign, now, room):
    """Claim up to `room` queued recipients inside their legal window, in position order."""
    due, after = [], -1
    while len(due) < room:
        page = db.session.execute(select(R.id, R.phone, R.state, R.position).where(
            R.campaign_id == campaign.id, R.status == "queued", R.position > after)
            .order_by(R.position).limit(500)).all()
        if not page:
            break
        after = page[-1].position
        for row in page:
            if len(due) < room and schedule.is_legal_now(row.state, row.phone, now) and _state_allows(row, now):
                due.append(row.id)
    if not due:
        return []
    claimed = db.session.execute(update(R).where(R.id.in_(due), R.status == "queued")
                                 .values(status="sending", sending_started_at=now.replace(tzinfo=None))
                                 .returning(R.id, R.position)).all()
    return [row.id for row in sorted(claimed, key=lambda row: row.position)]


def _state_allows(row, now):
    """Per-person daily caps some states set (Florida: 3 per rolling 24 hours)."""
    cap = schedule.DAILY_PER_PERSON.get(schedule.effective_state(row.state, row.phone))
    if cap is None:
        return True
    since = now.replace(tzinfo=None) - timedelta(hours=24)
    return db.session.scalar(select(func.count(Message.id)).where(
        Message.to_phone == row.phone, Message.direction == "outgoing", Message.created_at >= since,
        Message.status.notin_(("failed", "cancelled")))) < cap


def _queue_messages(campaign, recipient_ids, now):
    """Queue a message per claimed recipient; one that opted out or hit the cap meanwhile is skipped."""
    recipients = db.session.scalars(select(R).where(R.id.in_(recipient_ids)).order_by(R.position)).all()
    templates = {v.id: v.template for v in campaign.variants}
    properties = _first_properties([r.contact_id for r in recipients])
    contacts = {c.id: c for c in db.session.scalars(select(Contact).where(
        Contact.id.in_([r.contact_id for r in recipients if r.contact_id])))}
    phones = [r.phone for r in recipients]
    capped, opted_out = _capped_phones(campaign, phones, now), opted_out_phones(phones)
    messages = []
    for recipient in recipients:
        if recipient.phone in capped:
            recipient.status, recipient.exclusion_reason = "skipped", "frequency_cap"
            continue
        if recipient.phone in opted_out:
            recipient.status, recipient.exclusion_reason = "skipped", "opted_out"
            recipient.opted_out_at = recipient.opted_out_at or utcnow()
            continue
        body = render_template(templates.get(recipient.variant_id) or campaign.variants[0].template,
                               token_values(contacts.get(recipient.contact_id), properties.get(recipient.contact_id), now.date()),
                               opt_out_line=campaign.append_opt_out_line)
        message = queue_text(recipient.phone, body, contact_id=recipient.contact_id, opt_out_checked=True,
                             campaign_recipient_id=recipient.id, from_number=campaign.sending_number)
        message.created_at = now.replace(tzinfo=None)  # the daily limit counts on the sender's clock
        messages.append(message)
    db.session.flush()
    return [m.id for m in messages]


def _capped_phones(campaign, phones, now):
    """The phones among these that another campaign texted within the frequency cap."""
    if not campaign.frequency_cap_days or not phones:
        return set()
    since = now.replace(tzinfo=None) - timedelta(days=campaign.frequency_cap_days)
    return set(db.session.scalars(select(R.phone).where(
        R.phone.in_(phones), R.campaign_id != campaign.id, R.sent_at >= since))) | set(db.session.scalars(
        select(Message.to_phone).where(Message.to_phone.in_(phones), Message.direction == "outgoing",
                                       Message.source == "openphone history", Message.created_at >= since)))


def _first_properties(contact_ids):
    """{contact_id: Property}: each contact's primary (else first) property."""
    rows = db.session.execute(select(ContactProperty.contact_id, Property).join(Property)
                              .where(ContactProperty.contact_id.in_([i for i in contact_ids if i]))
                              .order_by(ContactProperty.contact_id, (ContactProperty.role != "primary"),
                                        Property.id)).all()
    found = {}
    for contact_id, prop in rows:
        found.setdefault(contact_id, prop)
    return found


def _complete_if_done(campaign):
    """A running campaign with nobody left to text is completed."""
    left = db.session.scalar(select(func.count(R.id)).where(
        R.campaign_id == campaign.id, R.status.in_(("queued", "sending"))))
    if left == 0 and campaign.status == "running":
        done = db.session.execute(update(Campaign).where(Campaign.id == campaign.id, Campaign.status == "running")
                                  .values(status="completed", finished_at=utcnow())).rowcount
        db.session.commit()
        if done:
            log.info("campaign %s completed", campaign.id)


# --- recovery --------------------------------------------------------------------------

def enqueue_sender(campaign_id, force=False):
    """One sender job per campaign per few seconds; more are harmless (claims are conditional)."""
    if not force and not get_redis().set(f"crm:campaign-sender:{campaign_id}", "1", nx=True, ex=5):
        return None
    return _enqueue("jobs.campaigns.send_due_messages", campaign_id)


def recover_campaigns():
    """What the database says is unfinished goes back on the queue. Idempotent."""
    count = 0
    lost_plans = db.session.scalars(select(Campaign.id).where(
        Campaign.status == "scheduled", Campaign.planned_at.is_(None), Campaign.plan_error.is_(None))).all()
    for campaign_id in lost_plans:
        if not job_alive(f"plan-campaign-{campaign_id}"):
            _enqueue("jobs.campaigns.plan_audience", campaign_id, job_id=f"plan-campaign-{campaign_id}")
            count += 1
    # Claimed and queued, but the sender died before OpenPhone heard of it (or it could not connect).
    # Sent only while its campaign runs and both windows are open, like any campaign text. A live
    # sender may be about to send one of these too: send_message's conditional claim lets one win.
    now = sender_now()
    zone = current_app.config["CAMPAIGN_TIMEZONE"]
    unsent = db.session.execute(select(Message.id, R.phone, R.state, Campaign).join(R, R.id == Message.campaign_recipient_id)
                                .join(Campaign, Campaign.id == R.campaign_id).where(
        Message.status == "queued", Campaign.status == "running")).all()
    for message_id, phone, state, campaign in unsent:
        if not (schedule.is_legal_now(state, phone, now) and schedule.is_campaign_open(
                campaign.window_days, campaign.window_start, campaign.window_end, now, zone)):
            continue
        if not job_alive(f"send-message-{message_id}"):
            enqueue_send(message_id)
            count += 1
    running = db.session.scalars(select(Campaign.id).where(Campaign.status == "running")).all()
    for campaign_id in running:
        if enqueue_sender(campaign_id):
            count += 1
    return count


def _enqueue(func_path, *args, job_id=None):
    return enqueue(func_path, *args, job_id=job_id)


def forecast_locations(campaign, planned=True, sample=5000):
    """(state, phone) examples of where the people still to text are, one per state and area code
    among a sample of them: the quiet hours a sending forecast must respect. Planned: the queued
    recipients; else the lists' members. (A sample keeps a 100,000-person page fast; the
    forecast is "about" anyway.)"""
    if planned:
        rows = (select(R.state.label("state"), R.phone.label("phone"))
                .where(R.campaign_id == campaign.id, R.status == "queued").limit(sample).subquery())
    else:
        members = select(ListMember.contact_id).where(ListMember.list_id.in_([lst.id for lst in campaign.lists]))
        rows = (select(literal(None).label("state"), Contact.phone.label("phone"))
                .where(Contact.id.in_(members), Contact.phone.is_not(None)).limit(sample).subquery())
    query = select(rows.c.state, func.min(rows.c.phone)).group_by(rows.c.state, func.substr(rows.c.phone, 1, 5))
    return [tuple(row) for row in db.session.execute(query).all()]
