"""Money: running a QuickBooks sync, the jobs accepted estimates become, and the automatic
to-dos (schedule the job, follow up the estimate, chase the invoice, call back)."""
import logging
from datetime import timedelta

from flask import current_app
from sqlalchemy import and_, exists, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased

from app import audit, display, quickbooks
from app.bulk import insert_rows, update_many, where_in
from app.extensions import db
from app.history_models import MISSED_CALL_STATUSES, Call
from app.models import (
    Contact,
    Estimate,
    Invoice,
    Job,
    Message,
    Payment,
    PaymentInvoice,
    QbCustomer,
    QuickbooksSync,
    Todo,
    utcnow,
)
from app.queue import enqueue, get_redis, job_alive
from app.quickbooks_sync import (
    OVERLAP,
    STALE_RUN,
    SyncBusy,
    default_source,
    fetch_missing_customers,
    link_records,
    pull_by_query,
    pull_changes,
    sync_state,
)

log = logging.getLogger(__name__)
CALL_BACK_DAYS = 7  # missed calls older than this are history, not a to-do


class Disconnected(RuntimeError):
    """QuickBooks refused the stored tokens: a person must reconnect."""


def _claim(now):
    """Take the sync row for this run (one sync at a time across every worker)."""
    try:
        with db.session.begin_nested():
            sync_state()
    except IntegrityError:
        pass
    db.session.commit()
    taken = db.session.execute(update(QuickbooksSync).where(
        QuickbooksSync.id == 1,
        or_(QuickbooksSync.running_since.is_(None), QuickbooksSync.running_since < now - STALE_RUN))
        .values(running_since=now).execution_options(synchronize_session=False)).rowcount
    db.session.commit()
    if not taken:
        raise SyncBusy("A QuickBooks sync is already running.")
    return db.session.get(QuickbooksSync, 1, populate_existing=True)


def run_sync(full=False, source=None, now=None):
    """One sync: full (every record) on the first run or when asked, else changes since the last
    run (CDC; past 30 days a query by LastUpdatedTime). Then links, jobs and to-dos. Returns the
    counts; raises Disconnected (sync paused, nothing deleted) or SyncBusy."""
    source = source or default_source()
    disconnected = getattr(source, "QuickBooksDisconnected", Disconnected)
    started = utcnow()
    state = _claim(started)
    since, how = state.last_cdc_at, "full"
    try:
        with audit.bulk():
            if full or since is None:
                counts = pull_by_query(source)
            else:
                counts, how = pull_changes(source, since - OVERLAP)
            fetched = fetch_missing_customers(source)
            link_records(None if how == "full" else started)
            jobs = update_jobs(now)
        todos = refresh_todos(now)
    except disconnected as exc:
        db.session.rollback()
        _finish(paused_reason=f"QuickBooks refused the connection ({exc}): reconnect it in Settings -> "
                              "Integrations.", last_error=str(exc)[:2000])
        raise Disconnected(str(exc)) from exc
    except Exception as exc:
        db.session.rollback()
        _finish(last_error=f"{type(exc).__name__}: {exc}"[:2000])
        raise
    if fetched:
        counts["Customer (fetched)"] = {k: v for k, v in fetched.items() if k in ("created", "updated")}
    counts.update(how=how, jobs=jobs, todos=todos)
    values = {"last_cdc_at": started, "last_finished_at": utcnow(), "paused_reason": None, "last_error": None,
              "counts": counts}
    if how != "cdc":
        values["last_full_sync_at"] = started
    audit.record("sync", "quickbooks_sync", 1, changes=counts, detail=f"QuickBooks {how} sync")
    _finish(**values)
    return counts


def _finish(**values):
    db.session.execute(update(QuickbooksSync).where(QuickbooksSync.id == 1)
                       .values(running_since=None, **values).execution_options(synchronize_session=False))
    db.session.commit()


def update_jobs(now=None):
    """Accepted estimates (and estimates closed into an invoice) become one job each; a job never
    scheduled whose estimate is invoiced is Done; a job whose invoices are paid in full by payments
    becomes Paid, and a Paid job whose payment is gone is Done again.
    Returns {"created": n, "done": n, "paid": n, "unpaid": n}."""
    now = now or utcnow()
    invoiced = exists().where(Invoice.estimate_id == Estimate.id, Invoice.deleted.is_(False))
    new = db.session.execute(select(Estimate.id, Estimate.contact_id, Estimate.property_id, invoiced).where(
        Estimate.deleted.is_(False), ~exists().where(Job.estimate_id == Estimate.id),
        or_(Estimate.status == "Accepted", and_(Estimate.status == "Closed", invoiced)))).all()
    # An estimate already invoiced was done: its job starts Done, not waiting to be scheduled.
    rows = [{"estimate_id": e, "contact_id": c, "property_id": p, "status": "Done" if billed else "Accepted",
             "created_at": now} for e, c, p, billed in new]
    insert_rows(db.session, Job.__table__, rows, conflict=["estimate_id"])
    done = db.session.execute(update(Job).where(
        Job.status == "Accepted", Job.scheduled_for.is_(None),
        exists().where(Invoice.estimate_id == Job.estimate_id, Invoice.deleted.is_(False)))
        .values(status="Done").execution_options(synchronize_session=False)).rowcount
    already_paid = set(db.session.scalars(select(Job.id).where(Job.status == "Paid")))
    for column in ("contact_id", "property_id"):
        value = select(getattr(Estimate, column)).where(Estimate.id == Job.estimate_id).scalar_subquery()
        db.session.execute(update(Job).where(getattr(Job, column).is_(None), value.is_not(None)).values({column: value})
                           .execution_options(synchronize_session=False))
    settled = _settled()
    paid = [job_id for job_id, ok in settled.items() if ok and job_id not in already_paid]
    update_many(db.session, Job.__table__, [{"id": i, "status": "Paid", "paid_at": now} for i in paid])
    # A payment deleted or voided in QuickBooks (or an invoice reopened) puts the money back to
    # waiting: the job is Done again until its invoices are settled once more. A job marked Paid by
    # hand with no invoice in QuickBooks (paid in cash, say) is left as the person set it.
    unpaid = [job_id for job_id in already_paid if settled.get(job_id) is False]
    update_many(db.session, Job.__table__, [{"id": i, "status": "Done", "paid_at": None} for i in unpaid])
    return {"created": len(rows), "done": done, "paid": len(paid), "unpaid": len(unpaid)}


def _settled():
    """{job id: settled} for every job with a live invoice: settled when QuickBooks shows each of
    its invoices paid off (balance 0) and live payments cover their total."""
    live_invoice = and_(Invoice.estimate_id == Job.estimate_id, Invoice.deleted.is_(False))
    totals = db.session.execute(select(Job.id, func.sum(Invoice.total), func.coalesce(func.sum(Invoice.balance), 0))
                                .join(Invoice, live_invoice).group_by(Job.id)).all()
    paid_amounts = {}
    for clause in where_in(db.session, Job.id, [job_id for job_id, _, balance in totals if balance == 0]):
        paid_amounts.update(db.session.execute(
            select(Job.id, func.sum(PaymentInvoice.amount)).join(Invoice, live_invoice)
            .join(PaymentInvoice, PaymentInvoice.invoice_id == Invoice.id)
            .join(Payment, and_(Payment.id == PaymentInvoice.payment_id, Payment.deleted.is_(False)))
            .where(clause).group_by(Job.id)).all())
    return {job_id: balance == 0 and (paid_amounts.get(job_id) or 0) >= (total or 0)
            for job_id, total, balance in totals}


def _names(contact_ids):
    rows = db.session.execute(select(Contact.id, Contact.first_name, Contact.last_name, Contact.phone,
                                     Contact.email, Contact.assigned_user_id).where(Contact.id.in_(contact_ids)))
    return {r.id: (" ".join(p for p in (r.first_name, r.last_name) if p) or r.phone or r.email,
                   r.assigned_user_id) for r in rows}


def business_day(now):
    """The business's date (CAMPAIGN_TIMEZONE) at a naive UTC moment: what "today" means on screens."""
    return display.local_time(now, current_app.config["CAMPAIGN_TIMEZONE"]).date()


def due_todos(now=None):
    """{(kind, key): (title, contact_id, fallback name)} of every automatic to-do whose condition holds now."""
    now = now or utcnow()
    today = business_day(now)
    wanted = {}
    for job_id, contact_id, name in db.session.execute(
            select(Job.id, Job.contact_id, Estimate.customer_name).join(Estimate, Estimate.id == Job.estimate_id)
            .where(Job.status == "Accepted", Job.scheduled_for.is_(None),
                   or_(Estimate.accepted_date <= today - timedelta(days=1),
                       and_(Estimate.accepted_date.is_(None), Job.created_at <= now - timedelta(hours=24))))):
        wanted[("schedule_job", f"job:{job_id}")] = ("Schedule {}", contact_id, name)
    for estimate_id, contact_id, doc, qb_id in db.session.execute(
            select(Estimate.id, Estimate.contact_id, Estimate.doc_number, Estimate.qb_id).where(
                Estimate.status == "Pending", Estimate.deleted.is_(False),
                Estimate.txn_date <= today - timedelta(days=3))):
        wanted[("follow_up_estimate", f"estimate:{estimate_id}")] = (
            f"Follow up on estimate #{doc or qb_id}", contact_id, None)
    for invoice_id, contact_id, name in db.session.execute(
            select(Invoice.id, Invoice.contact_id, Invoice.customer_name).where(
                Invoice.deleted.is_(False), Invoice.balance > 0, Invoice.due_date <= today - timedelta(days=7))):
        wanted[("chase_invoice", f"invoice:{invoice_id}")] = ("Chase {}", contact_id, name)
    later = aliased(Call)
    returned = or_(
        exists().where(Message.contact_id == Call.contact_id, Message.direction == "outgoing",
                       Message.created_at > Call.created_at),
        exists().where(later.contact_id == Call.contact_id, later.created_at > Call.created_at,
                       or_(later.direction == "outgoing", later.status.not_in(MISSED_CALL_STATUSES))))
    for contact_id, call_id in db.session.execute(
            select(Call.contact_id, func.max(Call.id)).where(
                Call.direction == "incoming", Call.status.in_(MISSED_CALL_STATUSES), Call.contact_id.is_not(None),
                Call.created_at >= now - timedelta(days=CALL_BACK_DAYS), ~returned)
            .group_by(Call.contact_id)):
        wanted[("call_back", f"call:{call_id}")] = ("Call back {}", contact_id, None)
    return wanted


def refresh_todos(now=None):
    """Create each due automatic to-do once; mark done those whose condition has ended.
    Returns {"created": n, "closed": n}; one audit row says which."""
    now = now or utcnow()
    wanted = due_todos(now)
    existing = {(kind, key): (todo_id, done) for todo_id, kind, key, done in db.session.execute(
        select(Todo.id, Todo.kind, Todo.key, Todo.done).where(Todo.kind.is_not(None)))}
    missing = {pair: due for pair, due in wanted.items() if pair not in existing}
    names = _names({contact_id for _, contact_id, _ in missing.values() if contact_id})
    rows = []
    for (kind, key), (title, contact_id, fallback) in missing.items():
        name, assigned = names.get(contact_id, (None, None))
        rows.append({"kind": kind, "key": key, "title": title.format(name or fallback or "customer")[:255],
                     "contact_id": contact_id, "assigned_user_id": assigned, "due_date": business_day(now),
                     "done": False, "created_at": now})
    closed = [todo_id for pair, (todo_id, done) in existing.items() if not done and pair not in wanted]
    if rows:
        db.session.execute(insert(Todo.__table__), rows)
    update_many(db.session, Todo.__table__, [{"id": i, "done": True} for i in closed])
    if rows or closed:
        audit.record("todos", "todos", changes={"created": [f"{r['kind']} {r['key']}" for r in rows][:1000],
                                                "closed": closed[:1000]}, detail="automatic to-dos")
    db.session.commit()
    return {"created": len(rows), "closed": len(closed)}


def quickbooks_status():
    """"connected", "needs_reconnect" (the home page says "Reconnect QuickBooks") or "not_connected"."""
    return quickbooks.connection_status()


def last_sync():
    """The sync's state row (last finished, running since, last error) as it stands; None before
    the first sync (read only, unlike quickbooks_sync.sync_state which makes the row)."""
    return db.session.get(QuickbooksSync, 1)


def candidate_contacts(customer):
    """The contacts an ambiguous QuickBooks customer might be, for a person to choose from."""
    return [c for c in (db.session.get(Contact, i) for i in customer.candidates or []) if c is not None]


def quickbooks_configured():
    """Whether a sync can run: QuickBooks is connected and not waiting for a person to reconnect."""
    return quickbooks_status() == "connected"


def enqueue_sync_if_due(now=None):
    """Every worker's tick asks: when the last sync finished more than QUICKBOOKS_SYNC_MINUTES
    ago and none is running, one sync (or, without a QuickBooks connection, one to-do refresh)
    is enqueued. A Redis key taken with NX lets one worker of many enqueue it; the sync's own
    claim on its database row lets one run at a time. Returns 1 when it enqueued."""
    now = now or utcnow()
    minutes = float(current_app.config["QUICKBOOKS_SYNC_MINUTES"])
    state = db.session.get(QuickbooksSync, 1)
    if state is not None:
        if state.running_since is not None and state.running_since > now - STALE_RUN:
            return 0
        if state.last_finished_at is not None and state.last_finished_at > now - timedelta(minutes=minutes):
            return 0
    # Its own key per kind: connecting QuickBooks does not wait for the to-do refresh's turn to pass.
    kind = "sync" if quickbooks_configured() else "todos"
    job_id = f"quickbooks-{kind}"
    if job_alive(job_id) or not get_redis().set(f"crm:quickbooks:{kind}-due", 1, nx=True,
                                                ex=max(int(minutes * 60), 1)):
        return 0
    if kind == "sync":
        enqueue("jobs.quickbooks.sync_quickbooks", False, job_id=job_id, job_timeout=3600)
    else:
        enqueue("jobs.quickbooks.refresh_todos", job_id=job_id)
    return 1



def choose_contact(qb_customer_id, contact_id):
    """A person settles an ambiguous customer: one of its candidate contacts becomes its contact,
    and its estimates, invoices and payments follow. Audited like any edit."""
    customer = db.session.get(QbCustomer, qb_customer_id)
    if customer is None:
        raise ValueError("That QuickBooks customer no longer exists.")
    if contact_id not in (customer.candidates or []) or db.session.get(Contact, contact_id) is None:
        raise ValueError("Pick one of the candidate contacts listed for this customer.")
    customer.contact_id, customer.match = contact_id, "chosen"
    customer.match_detail = f"chosen from contacts {', '.join(str(c) for c in customer.candidates)}"
    db.session.flush()
    link_records()
    update_jobs()
    db.session.commit()
    return db.session.get(Contact, contact_id)
