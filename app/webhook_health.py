"""Is OpenPhone still delivering webhooks? When the last one arrived, a warning when texts go
out in business hours and none came for WEBHOOK_SILENCE_MINUTES, and the webhooks OpenPhone
has registered for this CRM's URL (OpenPhone's webhooks API), registering the missing ones.

OpenPhone gives each webhook it creates its own signing key: the CRM stores the keys of the
webhooks it registers (encrypted, as integration secrets are) and accepts a delivery signed by
any of them as well as by the webhook secret (Settings -> Integrations or OPENPHONE_WEBHOOK_SECRET).
When the screen lists OpenPhone's webhooks, the keys of webhooks deleted in OpenPhone are removed."""
import logging
from datetime import timedelta

from flask import current_app, request
from sqlalchemy import func, select

from app import audit, display
from app.extensions import db
from app.integration_secrets import SecretUnreadable, get_secret, set_secret
from app.models import IntegrationSecret, Message, WebhookEvent, utcnow
from app.openphone import OpenPhoneError, client_from_config, verify_signature, webhook_secret

log = logging.getLogger(__name__)
# The events the CRM applies, by OpenPhone's webhook kind (POST /v1/webhooks/<kind>).
REQUIRED = {"messages": ["message.received", "message.delivered"],
            "calls": ["call.completed", "call.recording.completed"]}
KEY_PREFIX = "openphone_webhook_key:"  # + OpenPhone's webhook id: that webhook's signing key
BUSINESS_DAYS, BUSINESS_HOURS = range(0, 5), range(8, 18)  # Monday-Friday, 8:00-18:00 local


def last_webhook_at():
    return db.session.scalar(select(func.max(WebhookEvent.received_at)))


def silence_warning(now=None):
    """The banner's text when, in business hours, texts went out in the last WEBHOOK_SILENCE_MINUTES
    and no webhook arrived in that time; else None."""
    now = now or utcnow()
    minutes = current_app.config["WEBHOOK_SILENCE_MINUTES"]
    local = display.local_time(now, current_app.config["CAMPAIGN_TIMEZONE"])
    if local.weekday() not in BUSINESS_DAYS or local.hour not in BUSINESS_HOURS:
        return None
    since = now - timedelta(minutes=minutes)
    sent = db.session.scalar(select(func.count()).select_from(Message).where(
        Message.direction == "outgoing", Message.sent_at >= since))
    last = last_webhook_at()
    if not sent or (last is not None and last >= since):
        return None
    when = f"since {display.when(last, current_app.config['COMPANY_TIMEZONE'])}" if last else "ever"
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
    forget_deleted_webhooks(hooks)
    ours = [h for h in hooks if h.get("url") == url]
    covered = {e for h in ours if h.get("status", "enabled") == "enabled" for e in h.get("events") or []}
    missing = [(kind, event) for kind, events in REQUIRED.items() for event in events if event not in covered]
    return {"url": url, "hooks": ours, "missing": missing, "error": None}


def forget_deleted_webhooks(hooks):
    """Remove the stored signing keys of webhooks OpenPhone no longer has (`hooks`: its whole list),
    so a deleted webhook's key verifies nothing; each removal is audited without the key."""
    names = db.session.scalars(select(IntegrationSecret.name).where(IntegrationSecret.name.startswith(KEY_PREFIX))).all()
    existing = {str(h.get("id")) for h in hooks}
    gone = [name for name in names if name[len(KEY_PREFIX):] not in existing]
    for name in gone:
        set_secret(name, "", reason=f"webhook {name[len(KEY_PREFIX):]} is no longer in OpenPhone: its signing key removed")
    if gone:
        db.session.commit()
    return len(gone)


def register_missing(url, user_id=None):
    """Register one webhook per kind for the events OpenPhone does not yet send to `url`, and keep
    each new webhook's signing key. Each is committed as soon as OpenPhone created it, so a later
    failure never loses the key of a webhook that exists."""
    state = registered_webhooks(url)
    if state["error"]:
        raise OpenPhoneError(state["error"])
    created = []
    for kind in REQUIRED:
        events = [event for k, event in state["missing"] if k == kind]
        if events:
            hook = client_from_config().create_webhook(kind, url, events)
            created.append(hook)
            keyed = bool(hook.get("id") and hook.get("key"))
            if keyed:
                set_secret(KEY_PREFIX + str(hook["id"]), hook["key"], user_id=user_id)
            audit.record("create", "openphone_webhooks", None,
                         detail=f"{kind} webhook {hook.get('id')} for {url}: {', '.join(events)}; "
                                + ("its signing key stored encrypted" if keyed else "OpenPhone gave no signing key"))
            db.session.commit()
    return created


def webhook_keys():
    """The signing keys of the webhooks the CRM registered. Raises OpenPhoneError for a key the
    configured ENCRYPTION_KEY cannot read (the webhook answers 503 and OpenPhone retries)."""
    names = db.session.scalars(select(IntegrationSecret.name).where(IntegrationSecret.name.startswith(KEY_PREFIX))
                               .order_by(IntegrationSecret.updated_at.desc())).all()
    try:
        return [get_secret(name) for name in names]
    except SecretUnreadable as exc:
        raise OpenPhoneError(str(exc)) from exc


def verify_webhook(headers, body):
    """None when the raw body is signed by the webhook secret or by a registered webhook's own
    key, else why not (the secret's verdict). Raises OpenPhoneError for an unreadable secret."""
    reason = verify_signature(webhook_secret(current_app.config), headers, body)
    if reason is None:
        return None
    if any(verify_signature(key, headers, body) is None for key in webhook_keys()):
        return None
    return reason
