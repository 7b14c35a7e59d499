"""What the campaign page and the home dashboard show, read from database rows."""
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from flask import current_app
from sqlalchemy import and_, case, exists, func, or_, select

from app import display
from app.campaigns import STATUS_ORDER, TRANSITIONS, edit_notice, exclusion_counts
from app.exports import csv_lines
from app.extensions import db
from app.history_models import MISSED_CALL_STATUSES, Call
from app.inbox import waiting_count
from app.models import (
    DEFAULT_DAILY_LIMIT,
    Campaign,
    CampaignRecipient,
    CampaignVariant,
    Contact,
    Estimate,
    Import,
    Invoice,
    Job,
    ListMember,
    Message,
    OptOut,
    Payment,
    Todo,
    utcnow,
)
from app.security import scope_clause
from app.stats import compare_variants, wilson_interval
from app.texts import TemplateError, estimate_cost, render_template, segment_info, token_values, validate_template
from app.webhook_health import BUSINESS_DAYS, BUSINESS_HOURS

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
    """[(day label, texts sent)] by the company's calendar day: counted by UTC hour in the database
    (at most 24 rows a day), each hour then placed on its local day (a text at 9 PM in Boston is
    sent the next day in UTC)."""
    day, hour = func.date(R.sent_at), func.extract("hour", R.sent_at)
    rows = db.session.execute(select(day, hour, func.count()).where(R.campaign_id == campaign_id,
                                                                    R.sent_at.is_not(None)).group_by(day, hour)).all()
    zone, counts = current_app.config["COMPANY_TIMEZONE"], {}
    for utc_day, utc_hour, n in rows:
        local = display.local_time(datetime.combine(date.fromisoformat(str(utc_day)), time(int(utc_hour))), zone)
        counts[local.date()] = counts.get(local.date(), 0) + n
    return [(display.short_day(d), counts[d]) for d in sorted(counts)]


def status_counts(campaign_id):
    rows = db.session.execute(select(R.status, func.count()).where(R.campaign_id == campaign_id).group_by(R.status))
    return dict(rows.all())


def campaign_page(campaign_id, preview_count=3):
    """Everything the campaign page shows, or None when there is no such campaign."""
    campaign = db.session.get(Campaign, campaign_id, populate_existing=True)
    if campaign is None:
        return None
    # The plan only with the planned_at read above: a plan committed meanwhile would otherwise
    # show next to a "planning..." status and a disabled Start button.
    plan = exclusion_counts(campaign.id) if campaign.planned_at else {}
    results = campaign_results(campaign.id)
    variants = results["variants"]
    statuses = status_counts(campaign.id)
    return {"campaign": campaign, "plan": plan, "variants": variants, "test": results, "statuses": statuses,
            "days": texts_per_day(campaign.id), "funnel": funnel(results),
            "previews": variant_previews(campaign, statuses.get("queued", 0), preview_count),
            "reply_rows": [(f"Variant {v['label']}", v["replied"]) for v in variants],
            "next_statuses": sorted(TRANSITIONS.get(campaign.status, ()), key=STATUS_ORDER.index),
            "edit_notice": edit_notice(campaign)}


def variant_previews(campaign, audience, limit=3):
    """Each variant rendered for a few real recipients (planned ones, else list members), with its
    segments and, for a planned audience, the estimated cost of its share."""
    contact_ids = db.session.scalars(select(R.contact_id).where(R.campaign_id == campaign.id, R.status == "queued")
                                     .order_by(R.position).limit(limit)).all()
    if not contact_ids and campaign.lists:
        contact_ids = db.session.scalars(select(ListMember.contact_id).where(
            ListMember.list_id.in_([lst.id for lst in campaign.lists])).limit(limit)).all()
    contacts = [db.session.get(Contact, cid) for cid in contact_ids if cid]
    previews = []
    for variant in campaign.variants:
        try:
            validate_template(variant.template)
        except TemplateError as exc:
            previews.append({"variant": variant, "error": str(exc), "samples": []})
            continue
        samples = []
        for contact in contacts or [None]:
            prop = contact.properties[0].property if contact is not None and contact.properties else None
            body = render_template(variant.template, token_values(contact, prop),
                                   opt_out_line=campaign.append_opt_out_line)
            samples.append({"contact": contact, "body": body, **segment_info(body)})
        per_text = max(s["segments"] for s in samples)
        share = audience / max(1, len(campaign.variants))
        previews.append({"variant": variant, "samples": samples, "segments": per_text,
                         "cost": estimate_cost(per_text * share) if audience else None})
    return previews


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


def dashboard(now_day_bounds, default_limit=DEFAULT_DAILY_LIMIT, user_id=None):
    """The home page: texts today per number against its limit, running campaigns, conversations
    waiting for a reply, running imports, opt-outs this week. For a user_id limited to their own
    contacts (Staff, app.security.scope_clause) every part counts only theirs: texts to their
    contacts, campaigns that text them, their conversations and opt-outs, no imports."""
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
    waiting = waiting_count(user_id)
    imports = db.session.scalars(theirs(select(Import).where(Import.status.in_(("queued", "running"))), Import)
                                 .order_by(Import.id)).all()
    opt_outs = select(func.count(OptOut.id)).where(OptOut.active.is_(True), OptOut.source != "erasure",
                                                   OptOut.created_at >= utcnow() - timedelta(days=7))
    if user_id is not None:
        opt_outs = opt_outs.where(OptOut.phone.in_(theirs(select(Contact.phone), Contact)))
    opt_outs = db.session.scalar(opt_outs)
    return {"numbers": numbers, "running": running, "waiting": waiting, "imports": imports, "opt_outs": opt_outs}


# --- Money waiting: the owner's morning numbers, each with the rows behind it ---------------

def _month_start(day):
    return day.replace(day=1)


def money_filters(today):
    """The WHERE clauses behind each number of Money waiting, by name. The home page counts them
    and the list each number links to shows the same rows (views/money.py)."""
    last_month_end = _month_start(today) - timedelta(days=1)
    last_month_day = last_month_end.replace(day=min(today.day, last_month_end.day))
    return {
        "unscheduled": (Job, [Job.status == "Accepted", Job.scheduled_for.is_(None),
                              Job.estimate.has(Estimate.deleted.is_(False))]),
        "open_estimates": (Estimate, [Estimate.status == "Pending", Estimate.deleted.is_(False)]),
        "past_due": (Invoice, [Invoice.deleted.is_(False), Invoice.balance > 0, Invoice.due_date < today]),
        "payments_this_month": (Payment, [Payment.deleted.is_(False), Payment.txn_date >= _month_start(today),
                                          Payment.txn_date <= today]),
        "payments_last_month": (Payment, [Payment.deleted.is_(False),
                                          Payment.txn_date >= _month_start(last_month_end),
                                          Payment.txn_date <= last_month_day]),
    }


def money_waiting(today, user_id=None, shown=10):
    """Accepted estimates not yet scheduled (count, amount, how many late after 24 h, and the
    `shown` oldest with name, amount, days since acceptance), open estimates (count, total, oldest age in days), invoices past due (count, balance,
    oldest days past due), payments this month to date against the same days of last month.
    user_id limits every number to one user's contacts (Staff)."""
    filters = money_filters(today)

    def where(name):
        model, clauses = filters[name]
        return clauses + ([scope_clause(model, user_id)] if user_id is not None else [])

    jobs = db.session.execute(
        select(Job.id, Estimate.total, Estimate.accepted_date, Estimate.customer_name, Job.created_at,
               Contact.first_name, Contact.last_name, Contact.phone)
        .join(Estimate, Estimate.id == Job.estimate_id).outerjoin(Contact, Contact.id == Job.contact_id)
        .where(*where("unscheduled")).order_by(Estimate.accepted_date, Job.id).limit(shown)).all()
    rows = []
    for job_id, total, accepted, customer, created, first, last, phone in jobs:
        accepted = accepted or created.date()
        days = (today - accepted).days
        rows.append({"job_id": job_id, "amount": total or 0, "accepted": accepted, "days": days, "late": days >= 1,
                     "name": " ".join(p for p in (first, last) if p) or customer or display.phone(phone) or f"Job {job_id}"})
    count, amount, late = db.session.execute(
        select(func.count(Job.id), func.coalesce(func.sum(Estimate.total), 0),
               func.count(Job.id).filter(func.coalesce(Estimate.accepted_date, func.date(Job.created_at))
                                         <= today - timedelta(days=1)))
        .join(Estimate, Estimate.id == Job.estimate_id).where(*where("unscheduled"))).one()
    unscheduled = {"count": count, "total": amount, "late": late, "rows": rows}
    estimates = db.session.execute(select(func.count(Estimate.id), func.coalesce(func.sum(Estimate.total), 0),
                                          func.min(Estimate.txn_date)).where(*where("open_estimates"))).one()
    invoices = db.session.execute(select(func.count(Invoice.id), func.coalesce(func.sum(Invoice.balance), 0),
                                         func.min(Invoice.due_date)).where(*where("past_due"))).one()
    this_month, last_month = (db.session.scalar(select(func.coalesce(func.sum(Payment.amount), 0))
                                                .where(*where(name)))
                              for name in ("payments_this_month", "payments_last_month"))
    return {
        "unscheduled": unscheduled,
        "open_estimates": {"count": estimates[0], "total": estimates[1],
                           "oldest_days": (today - estimates[2]).days if estimates[2] else None},
        "past_due": {"count": invoices[0], "balance": invoices[1],
                     "oldest_days": (today - invoices[2]).days if invoices[2] else None},
        "payments": {"this_month": this_month, "last_month": last_month},
    }


def todays_todos(today, user_id=None, limit=20):
    """Open to-dos due today or before (automatic ones included), oldest first; Staff see theirs."""
    query = select(Todo).where(Todo.done.is_(False), or_(Todo.due_date.is_(None), Todo.due_date <= today))
    if user_id is not None:
        query = query.where(or_(scope_clause(Todo, user_id), Todo.assigned_user_id == user_id))
    return db.session.scalars(query.order_by(Todo.due_date, Todo.id).limit(limit)).all()


def overnight_since(now, zone):
    """When last night began: the close of business hours on the last business day before today
    (Friday evening, seen on a Monday morning), as naive UTC."""
    local = now.astimezone(ZoneInfo(zone))
    day = local.date() - timedelta(days=1)
    while day.weekday() not in BUSINESS_DAYS:
        day -= timedelta(days=1)
    close = datetime.combine(day, time(BUSINESS_HOURS.stop), ZoneInfo(zone))
    return close.astimezone(timezone.utc).replace(tzinfo=None)


def overnight_until(now, zone):
    """When last night ended: the start of today's business hours once they began (so Monday's
    daytime texts are not overnight), otherwise now; as naive UTC."""
    local = now.astimezone(ZoneInfo(zone))
    opening = datetime.combine(local.date(), time(BUSINESS_HOURS.start), ZoneInfo(zone))
    end = opening if local.weekday() in BUSINESS_DAYS and local >= opening else local
    return end.astimezone(timezone.utc).replace(tzinfo=None)


def overnight_activity(now, zone, user_id=None):
    """What came in last night (from the close of the last business day to the start of today's),
    texts in and out, calls (missed ones apart) and campaign replies, counted from their rows;
    Staff count their contacts' only."""
    since, until = overnight_since(now, zone), overnight_until(now, zone)

    def count(model, column, *conditions):
        query = select(func.count()).select_from(model).where(column >= since, column < until, *conditions)
        if user_id is not None:
            query = query.where(scope_clause(model, user_id))
        return db.session.scalar(query)

    return {
        "since": since,
        "until": until,
        "texts_in": count(Message, Message.created_at, Message.direction == "incoming"),
        "texts_out": count(Message, Message.sent_at, Message.direction == "outgoing"),
        "calls": count(Call, Call.created_at),
        "missed_calls": count(Call, Call.created_at, Call.direction == "incoming",
                              or_(Call.status.in_(MISSED_CALL_STATUSES), Call.voicemail_url.is_not(None))),
        "campaign_replies": count(CampaignRecipient, CampaignRecipient.replied_at),
    }
