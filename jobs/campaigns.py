"""RQ entry points for campaigns: take ids, call app.campaigns."""
import logging

from app import campaigns
from app.extensions import db
from app.models import Campaign

log = logging.getLogger(__name__)


def plan_audience(campaign_id):
    try:
        return campaigns.plan_audience(campaign_id)
    except Exception as exc:
        db.session.rollback()
        log.exception("planning campaign %s failed", campaign_id)
        campaign = db.session.get(Campaign, campaign_id)
        if campaign is not None:
            campaign.plan_error = f"{type(exc).__name__}: {exc}"[:2000]
            db.session.commit()
        raise


def send_due_messages(campaign_id):
    # Bounded, so a worker stops promptly when asked; the recovery tick enqueues the next round.
    return campaigns.send_due_messages(campaign_id, max_seconds=60)
