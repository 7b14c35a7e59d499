"""The home page's day-to-day parts, read from rows: the latest replies, yesterday's campaign
numbers, and the getting-started checklist of a new install."""
from datetime import datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from flask import current_app
from sqlalchemy import and_, case, exists, func, or_, select

from app import display, openphone
from app.analytics import SENT
from app.extensions import db
from app.models import Campaign, CampaignRecipient, Contact, Import, Message
from app.security import scope_clause

R = CampaignRecipient


def recent_replies(user_id=None, limit=8):
    """The newest texts people sent us, with who sent them; Staff see their contacts' only."""
    query = (select(Message.id, Message.body, Message.created_at, Message.contact_id, Contact.first_name,
                    Contact.last_name, Message.from_phone)
             .outerjoin(Contact, Contact.id == Message.contact_id)
             .where(Message.direction == "incoming", Message.kind == "sms"))
    if user_id is not None:
        query = query.where(scope_clause(Message, user_id))
    rows = db.session.execute(query.order_by(Message.created_at.desc(), Message.id.desc()).limit(limit)).all()
    return [{"id": r.id, "body": r.body or "", "at": r.created_at, "contact_id": r.contact_id,
             "name": " ".join(p for p in (r.first_name, r.last_name) if p) or display.phone(r.from_phone) or "Unknown"}
            for r in rows]


def yesterday_campaigns(now, user_id=None):
    """Per campaign active yesterday (in COMPANY business time): texts sent yesterday, how many of those
    were delivered, and the replies and opt-outs that came in yesterday, each person once; plus a
    "total" row. Staff count their contacts only."""
    zone = ZoneInfo(current_app.config["CAMPAIGN_TIMEZONE"])
    today = now.astimezone(zone).date()
    start, end = (datetime.combine(day, time(0), zone).astimezone(timezone.utc).replace(tzinfo=None)
                  for day in (today - timedelta(days=1), today))

    def during(column):
        return and_(column >= start, column < end)

    sent = and_(R.status.in_(SENT), during(R.sent_at))
    delivered = exists().where(Message.campaign_recipient_id == R.id, Message.direction == "outgoing",
                               Message.delivered_at.is_not(None))
    columns = {
        "sent": func.sum(case((sent, 1), else_=0)),
        "delivered": func.sum(case((and_(sent, delivered), 1), else_=0)),
        "replies": func.sum(case((during(R.replied_at), 1), else_=0)),
        "opt_outs": func.sum(case((during(R.opted_out_at), 1), else_=0)),
    }
    query = (select(Campaign.id, Campaign.name, *(c.label(n) for n, c in columns.items()))
             .join(R, R.campaign_id == Campaign.id)
             .where(or_(during(R.sent_at), during(R.replied_at), during(R.opted_out_at)))
             .group_by(Campaign.id, Campaign.name).order_by(Campaign.name))
    if user_id is not None:
        query = query.where(scope_clause(R, user_id))
    rows = [{"id": r.id, "name": r.name, **{n: int(getattr(r, n) or 0) for n in columns}}
            for r in db.session.execute(query)]
    total = {n: sum(r[n] for r in rows) for n in columns}
    return {"day": today - timedelta(days=1), "rows": rows, "total": total}


def getting_started():
    """The first steps of a new install, each ticked by what the database holds: a list imported,
    OpenPhone connected (a key stored or configured), a campaign created. None once all are done."""
    steps = [
        {"key": "import", "label": "Import a list", "done": db.session.scalar(
            select(exists().where(Import.status == "succeeded")))},
        {"key": "openphone", "label": "Connect OpenPhone", "done": not openphone.sandbox(current_app.config)},
        {"key": "campaign", "label": "Create a campaign",
         "done": db.session.scalar(select(Campaign.id).limit(1)) is not None},
    ]
    return None if all(step["done"] for step in steps) else steps
