"""RQ entry points for the QuickBooks mirror: primitives in, app.money does the work."""
import logging

from app import money
from app.quickbooks_sync import SyncBusy

log = logging.getLogger(__name__)


def sync_quickbooks(full=False):
    try:
        return money.run_sync(full=bool(full))
    except SyncBusy:
        log.info("QuickBooks sync skipped: another one is running")
        return None
    except money.Disconnected as exc:
        log.warning("QuickBooks sync paused: %s", exc)
        return None


def refresh_todos():
    return money.refresh_todos()
