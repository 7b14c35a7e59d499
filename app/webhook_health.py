"""Is OpenPhone still delivering webhooks? When the last one arrived, a warning when texts go
out in business hours and none came for WEBHOOK_SILENCE_MINUTES, and the webhooks OpenPhone
has registered for this CRM's URL (OpenPhone's webhooks API), registering the missing ones."""
import logging
from datetime import timedelta
from zoneinfo import ZoneInfo

from flask import current_app, request
from sqlalchemy import func, select

from app import audit
from app.extensions import db
from app.models import Message, WebhookEvent, utcnow
from app.openphone import OpenPhoneError, client_from_config

log = logging.getLogger(__name__)
# The events the CRM applies, by OpenPhone's webhook kind (POST /v1/webhooks/<kind>).
REQUIRED = {"messages": ["message.received", "message.delivered"],
            "calls": ["call.completed", "call.recording.completed"]}
BUSINESS_DAYS, BUSINESS_HOURS = range(0, 5), range(8, 18)  # Monday-Friday, 8:00-18:00 local


def last_webhook_at():
    return db.session.scalar(select(func.max(WebhookEvent.received_at)))


def silence_warning(now=None):
    """The banner's text when, in business hours, texts went out in the last WEBHOOK_SILENCE_MINUTES
    and no webhook arrived in that time; else None."""
    now = now or utcnow()
    minutes = current_app.config["WEBHOOK_SILENCE_MINUTES"]
    local = now.replace(tzinfo=ZoneInfo("UTC")).astimezone(ZoneInfo(current_app.config["CAMPAIGN_TIMEZONE"]))
    if local.weekday() not in BUSINESS_DAYS or local.hour not in BUSINESS_HOURS:
        return None
    since = now - timedelta(minutes=minutes)
    sent = db.session.scalar(select(func.count()).select_from(Message).where(
        Message.direction == "outgoing", Message.sent_at >= since))
    last = last_webhook_at()
    if not sent or (last is not None and last >= since):
        return None
    when = f"since {last:%Y-%m-%d %H:%M} UTC" if last else "ever"
    return (f"No webhook from OpenPhone {when}, while {sent} text(s) went out in the last {minutes} minutes: "
            f"replies and delivery reports may be missing. Check Settings -> Integrations -> Webhooks.")


def crm_webhook_url(url_root):
    return (current_app.config["CRM_PUBLIC_URL"] or url_root).rstrip("/") + "/webhooks/openphone"


def registered_webhooks(url=None):
    """{"url", "hooks": OpenPhone's webhooks for this URL, "missing": [(kind, event)], "error"}."""
    url = url or crm_webhook_url(request.url_root)
    try:
        hooks = client_from_config().list_webhooks()
    except OpenPhoneError as exc:
        return {"url": url, "hooks": [], "missing": [], "error": str(exc)}
    ours = [h for h in hooks if h.get("url") == url]
    covered = {e for h in ours if h.get("status", "enabled") == "enabled" for e in h.get("events") or []}
    missing = [(kind, event) for kind, events in REQUIRED.items() for event in events if event not in covered]
    return {"url": url, "hooks": ours, "missing": missing, "error": None}


def register_missing(url, user_id=None):
    """Register one webhook per kind for the events OpenPhone does not yet send to `url`."""
    state = registered_webhooks(url)
    if state["error"]:
        raise OpenPhoneError(state["error"])
    created = []
    for kind in REQUIRED:
        events = [event for k, event in state["missing"] if k == kind]
        if events:
            hook = client_from_config().create_webhook(kind, url, events)
            created.append(hook)
            audit.record("create", "openphone_webhooks", None,
                         detail=f"{kind} webhook {hook.get('id')} for {url}: {', '.join(events)}")
    return created
