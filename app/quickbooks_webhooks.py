"""QuickBooks webhooks: both notification shapes read into one event per changed record, stored
once by its id like OpenPhone's (app.events), and applied by a job that fetches the record."""
import hashlib
import json
import logging

from app import audit
from app.models import utcnow
from app.money import update_jobs
from app.quickbooks_records import ENTITIES
from app.quickbooks_sync import default_source, fetch_missing_customers, link_records, upsert_records

log = logging.getLogger(__name__)
PREFIX = "qb:"  # event ids in webhook_events: never the same as an OpenPhone event's
_PAST = {"create": "created", "update": "updated", "delete": "deleted", "merge": "merged", "void": "voided",
         "emailed": "emailed"}
_NAMES = {name.lower(): name for name in ENTITIES}


class MalformedNotification(ValueError):
    """A body that is neither QuickBooks shape."""


def _event(event_id, realm, entity, qb_id, operation, when):
    entity_name = _NAMES.get(str(entity or "").lower(), str(entity or ""))
    operation = str(operation or "updated").lower()
    operation = _PAST.get(operation, operation)
    body = {"realm": str(realm or ""), "entity": entity_name, "id": str(qb_id or ""), "operation": operation,
            "time": when}
    return PREFIX + str(event_id)[:96], f"qbo.{entity_name.lower()}.{operation}"[:60], body


def read_notifications(payload):
    """[(event id, type, body)] from a CloudEvents array or the legacy eventNotifications shape.

    CloudEvents keep their own id; a legacy entry has none, so its id is a hash of realm, entity,
    record id, operation and lastUpdated (a redelivery hashes the same)."""
    events = []
    if isinstance(payload, list):
        for item in payload:
            if not isinstance(item, dict) or not item.get("id") or not item.get("type"):
                raise MalformedNotification("each CloudEvent needs an id and a type")
            parts = str(item["type"]).split(".")  # qbo.estimate.updated.v1
            entity, operation = (parts[1], parts[2]) if len(parts) >= 3 else (None, None)
            events.append(_event(item["id"], item.get("intuitaccountid"), entity, item.get("intuitentityid"),
                                 operation, item.get("time")))
        return events
    if isinstance(payload, dict) and isinstance(payload.get("eventNotifications"), list):
        for notification in payload["eventNotifications"]:
            realm = (notification or {}).get("realmId")
            for entity in ((notification or {}).get("dataChangeEvent") or {}).get("entities") or []:
                key = "|".join(str(entity.get(k)) for k in ("name", "id", "operation", "lastUpdated"))
                digest = hashlib.sha256(f"{realm}|{key}".encode()).hexdigest()[:40]
                events.append(_event(f"legacy-{digest}", realm, entity.get("name"), entity.get("id"),
                                     entity.get("operation"), entity.get("lastUpdated")))
        return events
    raise MalformedNotification("expected a CloudEvents array or {\"eventNotifications\": [...]}")


def apply_quickbooks_event(event, source=None):
    """Fetch the record an event names and upsert it (a deletion marks it deleted). Returns the
    event's status: processed, or ignored (another company, an entity the mirror does not keep,
    a record QuickBooks no longer has)."""
    source = source or default_source()
    body = json.loads(event.body)
    if body.get("realm") != str(source.realm_id() or ""):
        log.info("QuickBooks event %s is for company %s, not ours: ignored", event.provider_event_id, body.get("realm"))
        return "ignored"
    entity, qb_id = body.get("entity"), body.get("id")
    if entity not in ENTITIES or not qb_id:
        return "ignored"
    if body.get("operation") == "deleted":
        record = {"Id": qb_id, "status": "Deleted"}
    else:
        record = source.get_entity(entity, qb_id)
        if record is None:
            return "ignored"
    started = utcnow()
    counts = upsert_records(entity, [record], now=started)
    fetch_missing_customers(source)
    link_records(since=started)
    jobs = update_jobs()
    audit.record("sync", "quickbooks_sync", 1, detail=f"QuickBooks webhook {event.provider_event_id}: {entity} {qb_id}",
                 changes={k: v for k, v in counts.items() if k != "changed"} | {"jobs": jobs})
    return "processed"
