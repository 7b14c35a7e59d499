"""The read-only QuickBooks mirror: full and incremental syncs, upserts by qb_id, links.

A sync reads records from a source (app.quickbooks by default: query_all, changes_since,
get_entity) and writes them here in bulk. Upserts compare SyncTokens: the same record twice
changes nothing, and an older version never overwrites a newer one, so replayed or reordered
webhooks are harmless. A record deleted in QuickBooks is marked deleted."""
import logging
from datetime import timedelta

from sqlalchemy import bindparam, delete, or_, select, update

from app import quickbooks
from app.bulk import insert_rows, update_many, where_in
from app.extensions import db
from app.models import (
    Estimate,
    Invoice,
    Payment,
    PaymentInvoice,
    Property,
    QbCustomer,
    QuickbooksSync,
    utcnow,
)
from app.quickbooks_match import match_customers, normalize_street
from app.quickbooks_records import ENTITIES, PARSERS

log = logging.getLogger(__name__)
MODELS = {"Customer": QbCustomer, "Estimate": Estimate, "Invoice": Invoice, "Payment": Payment}
BATCH = 1000
CDC_DAYS = 30
OVERLAP = timedelta(minutes=5)  # CDC looks a little further back than the last start: clocks differ
STALE_RUN = timedelta(minutes=30)  # a sync holding the row longer than this died; the next one takes over
# Columns an upsert writes, per model (qb_id and the bookkeeping columns aside).
_SKIP = {"id", "contact_id", "qb_customer_id", "estimate_id", "property_id", "match", "match_detail", "candidates"}


class SyncBusy(RuntimeError):
    """Another sync is running."""


def default_source():
    return quickbooks


def sync_state():
    """The one QuickbooksSync row (made on first use)."""
    state = db.session.get(QuickbooksSync, 1)
    if state is None:
        state = QuickbooksSync(id=1, counts={})
        db.session.add(state)
        db.session.flush()
    return state


def _columns(model):
    return [c.name for c in model.__table__.columns if c.name not in _SKIP]


def upsert_records(entity, records, now=None):
    """Write QuickBooks records of one entity. Returns {"created", "updated", "deleted",
    "unchanged"} counts and, under "changed", the qb_ids that were created or updated."""
    model = MODELS[entity]
    table = model.__table__
    now = now or utcnow()
    rows = {}
    for record in records:
        row = PARSERS[entity](record)
        if not row["qb_id"]:
            continue
        seen = rows.get(row["qb_id"])
        if seen is None or row["deleted"] or (not seen["deleted"] and row["sync_token"] > seen["sync_token"]):
            rows[row["qb_id"]] = row
    counts = {"created": 0, "updated": 0, "deleted": 0, "unchanged": 0, "changed": []}
    existing = {}
    for clause in where_in(db.session, table.c.qb_id, sorted(rows)):
        for row_id, qb_id, token, deleted in db.session.execute(
                select(table.c.id, table.c.qb_id, table.c.sync_token, table.c.deleted).where(clause)):
            existing[qb_id] = (row_id, token, deleted)
    columns = _columns(model)
    inserts, updates, marks = [], [], []
    for qb_id, row in rows.items():
        old = existing.get(qb_id)
        if old is None:
            values = {c: row.get(c) for c in columns}
            values.update(synced_at=now, deleted=row["deleted"])
            if "active" in values and values["active"] is None:
                values["active"] = True
            inserts.append(values)
            counts["deleted" if row["deleted"] else "created"] += 1
        elif row["deleted"]:
            if not old[2]:
                marks.append({"id": old[0], "deleted": True, "synced_at": now})
                counts["deleted"] += 1
            else:
                counts["unchanged"] += 1
        elif row["sync_token"] > old[1] and not old[2]:
            updates.append({"id": old[0], **{c: row.get(c) for c in columns if c != "qb_id"}, "synced_at": now})
            counts["updated"] += 1
        else:
            counts["unchanged"] += 1
            continue
        if not row["deleted"]:
            counts["changed"].append(qb_id)
    insert_rows(db.session, table, inserts, conflict=["qb_id"])
    update_many(db.session, table, updates + marks)
    if model is Payment:
        _write_applied(table, {qb_id: rows[qb_id]["_applied"] for qb_id in counts["changed"]})
    if model is QbCustomer and counts["changed"]:
        counts["contacts_created"] = _match(counts["changed"], rows)
    return counts


def _write_applied(table, applied):
    """Replace what each changed payment paid, invoice by invoice."""
    if not applied:
        return
    ids = {}
    for clause in where_in(db.session, table.c.qb_id, sorted(applied)):
        ids.update(dict(db.session.execute(select(table.c.qb_id, table.c.id).where(clause)).all()))
    link = PaymentInvoice.__table__
    for clause in where_in(db.session, link.c.payment_id, sorted(ids.values())):
        db.session.execute(delete(link).where(clause))
    rows = [{"payment_id": ids[qb_id], "invoice_qb_id": invoice, "amount": amount, "invoice_id": None}
            for qb_id, lines in applied.items() for invoice, amount in lines.items()]
    insert_rows(db.session, link, rows)


def _match(qb_ids, rows):
    """Match changed customers that have no contact yet (or an unresolved ambiguity); a
    customer already linked (by a sync or by a person) keeps its contact."""
    table = QbCustomer.__table__
    pending = []
    for clause in where_in(db.session, table.c.qb_id, qb_ids):
        pending += [qb_id for qb_id, contact_id, match in db.session.execute(
            select(table.c.qb_id, table.c.contact_id, table.c.match).where(clause))
            if contact_id is None and match != "chosen"]
    if not pending:
        return []
    outcomes, created = match_customers([rows[qb_id] for qb_id in pending])
    stmt = (update(table).where(table.c.qb_id == bindparam("_qb_id"))
            .values(contact_id=bindparam("contact_id"), match=bindparam("match"),
                    match_detail=bindparam("match_detail"), candidates=bindparam("candidates")))
    db.session.connection().execute(stmt, [{"_qb_id": qb_id, **outcome} for qb_id, outcome in outcomes.items()])
    return created


def link_records(since=None):
    """Tie mirrored rows together by QuickBooks ids, whatever order they arrived in: each
    estimate, invoice and payment to its customer's contact, invoices to their estimate,
    payment lines to their invoice, estimates to the property at their address.

    since: only rows written since then and rows still unlinked (an incremental sync, a webhook);
    None: every row (a full sync, a person choosing a customer's contact)."""
    customer = QbCustomer.__table__

    def scope(table, column):
        return [] if since is None else [or_(table.c[column].is_(None), table.c.synced_at >= since)]

    estimates, invoices, link = Estimate.__table__, Invoice.__table__, PaymentInvoice.__table__
    for table in (estimates, invoices, Payment.__table__):
        _copy(table, "contact_id", customer.c.contact_id, customer.c.qb_id == table.c.customer_qb_id,
              scope(table, "contact_id"))
    _copy(estimates, "qb_customer_id", customer.c.id, customer.c.qb_id == estimates.c.customer_qb_id,
          scope(estimates, "qb_customer_id"))
    _copy(invoices, "estimate_id", estimates.c.id, estimates.c.qb_id == invoices.c.estimate_qb_id,
          scope(invoices, "estimate_id"))
    _copy(link, "invoice_id", invoices.c.id, invoices.c.qb_id == link.c.invoice_qb_id, [link.c.invoice_id.is_(None)])
    _link_properties(since)


def _copy(table, column, value, joined, where):
    """UPDATE table SET column = value FROM the joined table, only where it differs (one join, not a
    subquery per row)."""
    db.session.execute(update(table).values({column: value}).where(joined, table.c[column].is_distinct_from(value),
                                                                   *where)
                       .execution_options(synchronize_session=False))


def _link_properties(since=None):
    """An estimate's ship (else bill) street and ZIP that match one property link it to it (of the
    estimates written since `since`, or all)."""
    query = select(Estimate.id, Estimate.address_line1, Estimate.address_zip).where(
        Estimate.property_id.is_(None), Estimate.address_line1.is_not(None))
    if since is not None:
        query = query.where(Estimate.synced_at >= since)
    pending = db.session.execute(query).all()
    if not pending:
        return
    zips = sorted({(z or "")[:5] for _, _, z in pending if z})
    places = {}
    for clause in where_in(db.session, Property.zip, zips):
        for prop_id, address, zip_code in db.session.execute(select(Property.id, Property.address, Property.zip)
                                                             .where(clause)):
            places.setdefault((normalize_street(address), (zip_code or "")[:5]), []).append(prop_id)
    rows = []
    for estimate_id, line1, zip_code in pending:
        found = places.get((normalize_street(line1), (zip_code or "")[:5]), [])
        if len(found) == 1:
            rows.append({"id": estimate_id, "property_id": found[0]})
    update_many(db.session, Estimate.__table__, rows)


def fetch_missing_customers(source, limit=100):
    """Customers that estimates, invoices or payments name but the mirror lacks: fetched one by
    one (an estimate for an unknown customer is kept and linked when its customer arrives)."""
    known = select(QbCustomer.qb_id)
    missing = set()
    for model in (Estimate, Invoice, Payment):
        missing.update(db.session.scalars(select(model.customer_qb_id).where(
            model.customer_qb_id.is_not(None), model.customer_qb_id.not_in(known)).distinct().limit(limit)))
    records = [r for r in (source.get_entity("Customer", qb_id) for qb_id in sorted(missing)[:limit]) if r]
    return upsert_records("Customer", records) if records else None


def _merge_counts(total, entity, counts):
    mine = total.setdefault(entity, {"created": 0, "updated": 0, "deleted": 0, "unchanged": 0})
    for key in mine:
        mine[key] += counts.get(key, 0)
    total["contacts_created"] = total.get("contacts_created", 0) + len(counts.get("contacts_created", []))


def _query_where(entity, since):
    parts = ["Active IN (true, false)"] if entity == "Customer" else []
    if since is not None:
        parts.append(f"MetaData.LastUpdatedTime > '{since.strftime('%Y-%m-%dT%H:%M:%S')}Z'")
    return " AND ".join(parts) or None


def _batches(iterable, size=BATCH):
    batch = []
    for item in iterable:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def pull_by_query(source, since=None):
    """Every record of every entity (updated after `since` when given), customers first."""
    total = {}
    for entity in ENTITIES:
        for batch in _batches(source.query_all(entity, _query_where(entity, since))):
            _merge_counts(total, entity, upsert_records(entity, batch))
            db.session.commit()  # progress survives a failure; the cursor moves only at the end
    return total


def pull_changes(source, since):
    """CDC since `since`; a window past QuickBooks' 30 days falls back to the query."""
    too_old = getattr(source, "CdcTooOld", LookupError)
    if utcnow() - since > timedelta(days=CDC_DAYS):
        return pull_by_query(source, since), "query"
    try:
        changes = source.changes_since(list(ENTITIES), since)
    except too_old:
        return pull_by_query(source, since), "query"
    total = {}
    for entity in ENTITIES:
        for batch in _batches(changes.get(entity) or []):
            _merge_counts(total, entity, upsert_records(entity, batch))
            db.session.commit()
    return total, "cdc"
