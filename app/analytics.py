"""What the campaign page and the home dashboard show, read from database rows."""
from datetime import timedelta

from sqlalchemy import and_, case, exists, func, or_, select

from app.exports import csv_lines
from app.extensions import db
from app.models import (
    DEFAULT_DAILY_LIMIT,
    Campaign,
    CampaignRecipient,
    CampaignVariant,
    Contact,
    Import,
    Message,
    OptOut,
    utcnow,
)
from app.stats import compare_variants, wilson_interval

R = CampaignRecipient
SENT = ("sent", "review")  # 'review': OpenPhone may have it; counted as sent until a person checks
# Each recipient counts at most once in each column; these are the columns' names everywhere
# (the campaign page, its funnel, the recipients CSV and GET /api/v1/campaign/<id>/results).
OUTCOMES = ("sent", "delivered", "failed", "replied", "opted_out")


def _outcome_flags():
    """0/1 per recipient row. Replies carry the recipient's id as well as the campaign text, so
    delivery is read from the outgoing text alone and a second reply counts nothing twice."""
    sent = R.status.in_(SENT)
    delivered = exists().where(Message.campaign_recipient_id == R.id, Message.direction == "outgoing",
                               Message.delivered_at.is_not(None))
    return {
        "sent": case((sent, 1), else_=0),
        "delivered": case((and_(sent, delivered), 1), else_=0),
        "failed": case((R.status == "failed", 1), else_=0),
        "replied": case((and_(sent, R.replied_at.is_not(None)), 1), else_=0),
        "opted_out": case((and_(sent, R.opted_out_at.is_not(None)), 1), else_=0),
    }


def campaign_results(campaign_id):
    """The A/B numbers: per variant (label order) sent, delivered, failed, replied, opted out,
    reply rate (replied / sent) with its 95% Wilson interval; plus the test between variants.

    {"variants": [{"id", "label", "template", "sent", ..., "reply_rate", "ci_low", "ci_high"}],
     "test": name or None, "statistic", "p_value", "significant"}"""
    flags = _outcome_flags()
    per_recipient = (select(R.variant_id, *(flag.label(name) for name, flag in flags.items()))
                     .where(R.campaign_id == campaign_id).subquery())
    rows = db.session.execute(
        select(CampaignVariant.id, CampaignVariant.label, CampaignVariant.template,
               *(func.coalesce(func.sum(per_recipient.c[name]), 0) for name in OUTCOMES))
        .select_from(CampaignVariant)
        .outerjoin(per_recipient, per_recipient.c.variant_id == CampaignVariant.id)
        .where(CampaignVariant.campaign_id == campaign_id)
        .group_by(CampaignVariant.id, CampaignVariant.label, CampaignVariant.template)
        .order_by(CampaignVariant.label)).all()
    variants = []
    for vid, label, template, *counts in rows:
        numbers = dict(zip(OUTCOMES, (int(n) for n in counts), strict=True))
        low, high = wilson_interval(numbers["replied"], numbers["sent"])
        variants.append({"id": vid, "label": label, "template": template, **numbers,
                         "reply_rate": numbers["replied"] / numbers["sent"] if numbers["sent"] else 0.0,
                         "ci_low": low, "ci_high": high})
    test = compare_variants([(v["label"], v["replied"], v["sent"]) for v in variants])
    return {"variants": variants, **test}


def funnel(results):
    """(step, count) for the funnel chart, from campaign_results()."""
    return [(step, sum(v[key] for v in results["variants"])) for step, key in
            (("Sent", "sent"), ("Delivered", "delivered"), ("Failed", "failed"), ("Replied", "replied"),
             ("Opted out", "opted_out"))]


def texts_per_day(campaign_id):
    day = func.date(R.sent_at)
    rows = db.session.execute(select(day, func.count()).where(R.campaign_id == campaign_id, R.sent_at.is_not(None))
                              .group_by(day).order_by(day)).all()
    return [(str(d), n) for d, n in rows]


def status_counts(campaign_id):
    rows = db.session.execute(select(R.status, func.count()).where(R.campaign_id == campaign_id).group_by(R.status))
    return dict(rows.all())


RECIPIENT_FIELDS = ["position", "phone", "first_name", "last_name", "state", "variant", "status",
                    "exclusion_reason", "sent_at", "delivered_at", "replied_at", "opted_out_at", "error", *OUTCOMES]


def recipients_csv(campaign_id):
    """Every recipient with its outcome, streamed row by row, safe to open in a spreadsheet, audited.
    The last columns are the 0/1 flags the A/B table sums: a column's total per variant is
    the number on the campaign page."""
    delivered_at = (select(func.max(Message.delivered_at)).where(
        Message.campaign_recipient_id == R.id, Message.direction == "outgoing").scalar_subquery())
    query = (select(R.position, R.phone, Contact.first_name, Contact.last_name, R.state, CampaignVariant.label,
                    R.status, R.exclusion_reason, R.sent_at, delivered_at, R.replied_at, R.opted_out_at, R.error,
                    *_outcome_flags().values())
             .outerjoin(Contact, Contact.id == R.contact_id).outerjoin(CampaignVariant, CampaignVariant.id == R.variant_id)
             .where(R.campaign_id == campaign_id).order_by(R.status, R.position, R.id))
    rows = db.session.execute(query.execution_options(yield_per=2000))
    yield from csv_lines("campaign_recipients", RECIPIENT_FIELDS, rows, phone_columns=["phone"],
                         object_id=campaign_id, detail=f"recipients of campaign {campaign_id}")


def waiting_conversations(user_id=None, assigned=None):
    """The Inbox and the dashboard's "waiting for a reply": contacts whose last text is an inbound
    one that is not an opt-out (a STOP waits for nobody), as (Message, Contact) rows. user_id limits
    them to one user's contacts (Staff); assigned filters by assignee ("none": unassigned)."""
    last = (select(Message.contact_id, func.max(Message.id).label("last_id"))
            .where(Message.direction.in_(("incoming", "outgoing")), Message.kind == "sms",
                   Message.contact_id.is_not(None))
            .group_by(Message.contact_id).subquery())
    query = (select(Message, Contact).join(last, Message.id == last.c.last_id)
             .join(Contact, Contact.id == Message.contact_id)
             .where(Message.direction == "incoming",
                    or_(Message.opt_out_class.is_(None), Message.opt_out_class.not_in(("keyword", "phrase")))))
    if user_id is not None:
        query = query.where(Contact.assigned_user_id == user_id)
    if assigned == "none":
        query = query.where(Contact.assigned_user_id.is_(None))
    elif assigned:
        query = query.where(Contact.assigned_user_id == int(assigned))
    return query


def dashboard(now_day_bounds, default_limit=DEFAULT_DAILY_LIMIT, user_id=None):
    """The home page: texts today per number against its limit, running campaigns, conversations
    waiting for a reply, running imports, opt-outs this week. For a user_id limited to their own
    contacts (Staff, app.security.scope_clause) every part counts only theirs: texts to their
    contacts, campaigns that text them, their conversations and opt-outs, no imports."""
    from app.security import scope_clause

    def theirs(query, model):
        return query if user_id is None else query.where(scope_clause(model, user_id))

    start, end = now_day_bounds
    sent = dict(db.session.execute(theirs(select(Message.from_phone, func.count()).where(
        Message.direction == "outgoing", Message.campaign_recipient_id.is_not(None),
        Message.created_at >= start, Message.created_at < end), Message).group_by(Message.from_phone)).all())
    campaigns = select(Campaign)
    if user_id is not None:
        campaigns = campaigns.where(Campaign.id.in_(theirs(select(R.campaign_id), R)))
    limits = dict(db.session.execute(select(Campaign.sending_number, func.max(Campaign.daily_limit)).where(
        Campaign.status.in_(("running", "paused", "scheduled")),
        Campaign.id.in_(campaigns.with_only_columns(Campaign.id))).group_by(Campaign.sending_number)).all())
    numbers = [{"number": n, "sent": sent.get(n, 0), "limit": limits.get(n, default_limit)}
               for n in sorted(set(sent) | set(limits))]
    running = db.session.scalars(campaigns.where(Campaign.status == "running").order_by(Campaign.id)).all()
    waiting = db.session.scalar(select(func.count()).select_from(waiting_conversations(user_id).subquery()))
    imports = db.session.scalars(theirs(select(Import).where(Import.status.in_(("queued", "running"))), Import)
                                 .order_by(Import.id)).all()
    opt_outs = select(func.count(OptOut.id)).where(OptOut.active.is_(True), OptOut.source != "erasure",
                                                   OptOut.created_at >= utcnow() - timedelta(days=7))
    if user_id is not None:
        opt_outs = opt_outs.where(OptOut.phone.in_(theirs(select(Contact.phone), Contact)))
    opt_outs = db.session.scalar(opt_outs)
    return {"numbers": numbers, "running": running, "waiting": waiting, "imports": imports, "opt_outs": opt_outs}
