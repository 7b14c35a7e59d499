"""Recovery: whatever the database says is unfinished goes back on the queue."""
import logging

from app.audit import flush_rejections
from app.campaigns import recover_campaigns
from app.events import recover_events
from app.exports import recover_exports
from app.history import enqueue_nightly_if_due, recover_history
from app.imports import recover_imports
from app.messages import recover_sending
from app.money import enqueue_sync_if_due

log = logging.getLogger(__name__)


def recover_unfinished():
    """Called by every worker every few seconds; each step is idempotent."""
    steps = [("sending", recover_sending), ("webhook events", recover_events), ("imports", recover_imports),
             ("exports", recover_exports), ("campaigns", recover_campaigns), ("QuickBooks sync", enqueue_sync_if_due),
             ("OpenPhone history", recover_history), ("nightly OpenPhone pull", enqueue_nightly_if_due)]
    for name, step in steps:
        count = step()
        if count:
            log.info("recovery %s: re-enqueued %s", name, count)
    written = flush_rejections()
    if written:
        log.info("rejected requests: %s audit rows written", written)
