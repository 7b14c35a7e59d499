"""The QuickBooks mirror: matching customers to contacts, idempotent syncs, SyncToken order,
deletions, the CDC gap, jobs and automatic to-dos."""
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from app.history_models import Call
from app.models import (
    AuditLog,
    Contact,
    ContactProperty,
    Estimate,
    Invoice,
    Job,
    Message,
    Payment,
    PaymentInvoice,
    Property,
    QbCustomer,
    QuickbooksSync,
    Todo,
    utcnow,
)
from app.money import Disconnected, refresh_todos, run_sync
from app.quickbooks_match import normalize_street, phones_of
from app.quickbooks_sync import upsert_records
from tests.qb_records import MemorySource, customer, estimate, invoice, payment


@pytest.mark.parametrize("fields, expected", [
    ({"primary_phone": "(617) 555-0123"}, ["+16175550123"]),
    ({"primary_phone": "617.555.0123 x12"}, ["+16175550123"]),
    ({"primary_phone": "617-555-0123 / 617-555-0199"}, ["+16175550123", "+16175550199"]),
    ({"primary_phone": "617-555-0123, 617-555-0124", "mobile": "+1 617 555 0125",
      "alternate_phone": "617 555 0126 or 617 555 0127"},
     ["+16175550123", "+16175550124", "+16175550125", "+16175550126", "+16175550127"]),
    ({"primary_phone": "call the office", "mobile": ""}, []),
    ({}, []),
    ({"primary_phone": "(617) 555-0123", "mobile": "617-555-0123"}, ["+16175550123"]),
])
def test_phones_of_reads_every_number_in_free_text(app, fields, expected):
    with app.app_context():
        assert phones_of(fields) == expected


def test_normalize_street_ignores_case_punctuation_and_street_words():
    assert normalize_street("12 Elm Street, Apt. 2") == normalize_street("12 elm st apt 2") == "12 elm st apt 2"


def _contact(db, **values):
    contact = Contact(**values)
    db.session.add(contact)
    db.session.flush()
    return contact


def _customer_row(qb_id):
    from app.extensions import db

    return db.session.scalar(select(QbCustomer).filter_by(qb_id=str(qb_id)))


def test_each_customer_is_matched_to_one_contact_and_the_outcome_is_recorded(db):
    ann = _contact(db, first_name="Ann", last_name="Ames", phone="+16175550101")
    bob = _contact(db, first_name="Bob", last_name="Burr", email="bob@example.com")
    cy = _contact(db, first_name="Cy", last_name="Cole", mail_address="9 Oak Street")
    dee = _contact(db, first_name="Dee", last_name="Dunn", phone="+16175550104")
    eve = _contact(db, first_name="Eve", last_name="Dunn", phone="+16175550105")
    house = Property(key="addr:3 pine rd", address="3 Pine Road", zip="02184")
    fay = _contact(db, first_name="Fay", last_name="Ford")
    db.session.add(house)
    db.session.flush()
    db.session.add(ContactProperty(contact_id=fay.id, property_id=house.id))
    db.session.commit()
    source = MemorySource()
    table = [  # (customer, expected match, expected contact)
        (customer(1, "Ann", "Ames", phones={"Mobile": "617.555.0101 x3"}), "phone", ann.id),
        (customer(2, "Robert", "Burr", email="BOB@example.com"), "email", bob.id),
        (customer(3, "Cy", "Cole", street="9 Oak St."), "name_address", cy.id),
        (customer(4, "Dee", "Dunn", phones={"PrimaryPhone": "617-555-0104", "AlternatePhone": "617-555-0105"}),
         "ambiguous", None),
        (customer(5, "Gus", "Gray", phones={"PrimaryPhone": "617 555 0107"}, email="gus@example.com",
                  street="1 Elm St"), "created", "new"),
        (customer(6, "Hal", "Hart"), "no_phone_or_email", None),
        (customer(7, "Fay", "Ford", street="3 Pine Rd"), "name_address", fay.id),
        (customer(8, "Ivy", "Irwin", phones={"PrimaryPhone": "555-0000 / 1-800", "Mobile": "617-555-0108, 617-555-0109",
                                             "AlternatePhone": "617-555-0101"}), "phone", ann.id),
        (customer(9, "Gus", "Gray", phones={"Mobile": "(617) 555-0107"}), "phone", "new"),
    ]
    for record, _, _ in table:
        source.put("Customer", record)
    run_sync(source=source)
    created = db.session.scalar(select(Contact).filter_by(phone="+16175550107"))
    assert created.source == "quickbooks" and (created.first_name, created.email) == ("Gus", "gus@example.com")
    assert created.mail_address == "1 Elm St"
    for record, match, contact_id in table:
        row = _customer_row(record["Id"])
        assert row.match == match, (record["Id"], row.match, row.match_detail)
        assert row.contact_id == (created.id if contact_id == "new" else contact_id), record["Id"]
        assert row.match_detail
    assert sorted(_customer_row(4).candidates) == sorted([dee.id, eve.id])
    assert db.session.scalar(select(func.count(Contact.id))) == 7  # six before, one created


def test_a_second_sync_changes_nothing(db):
    source = MemorySource()
    source.put("Customer", customer(1, phones={"PrimaryPhone": "617-555-0111"}))
    source.put("Estimate", estimate(10, 1, 1200))
    source.put("Invoice", invoice(20, 1, 1200, 1200, "2026-12-01", estimate_id=10))
    source.put("Payment", payment(30, 1, "2026-11-20", [(20, 200)]))
    first = run_sync(source=source)
    assert first["Customer"]["created"] == 1 and first["Payment"]["created"] == 1
    before = {m: db.session.execute(select(m.id, m.sync_token, m.synced_at)).all()
              for m in (QbCustomer, Estimate, Invoice, Payment)}
    contacts, audits = (db.session.scalar(select(func.count(t.id))) for t in (Contact, AuditLog))
    second = run_sync(full=True, source=source)
    for entity in ("Customer", "Estimate", "Invoice", "Payment"):
        assert second[entity] == {"created": 0, "updated": 0, "deleted": 0, "unchanged": 1}
    assert {m: db.session.execute(select(m.id, m.sync_token, m.synced_at)).all() for m in before} == before
    assert db.session.scalar(select(func.count(Contact.id))) == contacts
    assert db.session.scalar(select(func.count(AuditLog.id))) == audits + 1  # the run's own summary row
    assert db.session.scalar(select(func.count()).select_from(PaymentInvoice)) == 1


def test_an_older_sync_token_never_overwrites_a_newer_one(db):
    newer = {**estimate(10, 1, 900, status="Accepted"), "SyncToken": "3"}
    older = {**estimate(10, 1, 500, status="Pending"), "SyncToken": "2"}
    upsert_records("Estimate", [newer])
    counts = upsert_records("Estimate", [older])
    db.session.commit()
    row = db.session.scalar(select(Estimate))
    assert (row.sync_token, row.total, row.status) == (3, Decimal("900.00"), "Accepted")
    assert counts["unchanged"] == 1
    upsert_records("Estimate", [{**newer, "SyncToken": "4", "TotalAmt": 950}])
    db.session.commit()
    assert db.session.scalar(select(Estimate.total)) == Decimal("950.00")


def test_a_deletion_in_quickbooks_marks_the_row_deleted(db):
    source = MemorySource()
    source.put("Customer", customer(1, email="a@example.com"))
    source.put("Estimate", estimate(10, 1, 100))
    run_sync(source=source)
    source.delete("Estimate", "10")
    counts = run_sync(source=source)
    assert counts["how"] == "cdc" and counts["Estimate"]["deleted"] == 1
    row = db.session.scalar(select(Estimate))
    assert row.deleted is True and row.total == Decimal("100.00")
    assert run_sync(source=source)["Estimate"]["deleted"] == 0  # marked once


def test_a_cdc_window_past_30_days_falls_back_to_a_query_by_last_updated_time(db):
    source = MemorySource()
    source.put("Customer", customer(1, email="a@example.com"), when=datetime(2026, 1, 1))
    run_sync(source=source)
    db.session.execute(QuickbooksSync.__table__.update().values(last_cdc_at=utcnow() - timedelta(days=40)))
    db.session.commit()
    source.put("Customer", customer(1, "Ann", email="a@example.com"))
    source.calls.clear()
    counts = run_sync(source=source)
    assert counts["how"] == "query"
    assert not [c for c in source.calls if c[0] == "cdc"]
    assert any("LastUpdatedTime >" in (c[2] or "") for c in source.calls if c[0] == "query")
    assert counts["Customer"]["updated"] == 1 and _customer_row(1).given_name == "Ann"


def test_an_estimate_for_an_unknown_customer_is_kept_and_linked_when_the_customer_arrives(db):
    source = MemorySource()
    source.put("Customer", customer(1, email="a@example.com"))
    run_sync(source=source)
    source.records["Customer"]["2"] = {**customer(2, "Zed", "Zane", email="zed@example.com"),
                                       "MetaData": {"LastUpdatedTime": "2020-01-01T00:00:00+00:00"}}
    source.put("Estimate", estimate(10, 2, 700))  # the customer is not among the changes
    run_sync(source=source)
    assert ("get", "Customer", "2") in source.calls
    row = db.session.scalar(select(Estimate))
    zed = db.session.scalar(select(Contact).filter_by(email="zed@example.com"))
    assert row.contact_id == zed.id and row.qb_customer.qb_id == "2"


def test_accepted_estimate_becomes_one_job_which_is_paid_when_payments_clear_its_invoices(db):
    source = MemorySource()
    source.put("Customer", customer(1, phones={"PrimaryPhone": "617-555-0111"}))
    source.put("Estimate", estimate(10, 1, 1000, status="Accepted", accepted="2026-11-02"))
    run_sync(source=source)
    run_sync(source=source)
    job = db.session.scalar(select(Job))
    assert db.session.scalar(select(func.count(Job.id))) == 1
    assert job.status == "Accepted" and job.contact.phone == "+16175550111"
    job.status, job.scheduled_for = "Scheduled", datetime(2026, 11, 10).date()
    db.session.commit()
    source.put("Estimate", estimate(10, 1, 1000, status="Closed", accepted="2026-11-02"))
    source.put("Invoice", invoice(20, 1, 1000, 400, "2026-12-01", estimate_id=10))
    source.put("Payment", payment(30, 1, "2026-11-20", [(20, 600)]))
    # An estimate first seen already closed into an invoice was done: its job starts Done.
    source.put("Estimate", estimate(11, 1, 300, status="Closed", accepted="2026-10-02"))
    source.put("Invoice", invoice(21, 1, 300, 300, "2026-11-01", estimate_id=11))
    run_sync(source=source)
    statuses = dict(db.session.execute(select(Estimate.qb_id, Job.status).join(Job, Job.estimate_id == Estimate.id)).all())
    assert statuses == {"10": "Scheduled", "11": "Done"}  # a person's schedule is kept
    source.put("Invoice", invoice(20, 1, 1000, 0, "2026-12-01", estimate_id=10))
    source.put("Payment", payment(31, 1, "2026-11-25", [(20, 400)]))
    run_sync(source=source)
    job = db.session.scalar(select(Job).join(Estimate).where(Estimate.qb_id == "10"))
    assert job.status == "Paid" and job.paid_at is not None
    assert db.session.scalar(select(func.count(Job.id))) == 2
    # The second payment is deleted in QuickBooks: the invoice is open again and the job waits for money.
    source.put("Invoice", invoice(20, 1, 1000, 400, "2026-12-01", estimate_id=10))
    source.delete("Payment", "31")
    run_sync(source=source)
    db.session.refresh(job)
    assert (job.status, job.paid_at) == ("Done", None)
    sync = db.session.scalars(select(AuditLog).where(AuditLog.action == "sync").order_by(AuditLog.id.desc())).first()
    assert sync.changes["jobs"]["unpaid"] == 1
    # Paid again when a new payment clears it; a job marked Paid by hand with no invoice stays Paid.
    source.put("Invoice", invoice(20, 1, 1000, 0, "2026-12-01", estimate_id=10))
    source.put("Payment", payment(32, 1, "2026-11-28", [(20, 400)]))
    cash = db.session.scalar(select(Job).join(Estimate).where(Estimate.qb_id == "11"))
    source.delete("Invoice", "21")
    run_sync(source=source)
    cash.status = "Paid"
    db.session.commit()
    run_sync(source=source)
    db.session.refresh(job)
    db.session.refresh(cash)
    assert (job.status, cash.status) == ("Paid", "Paid")


def test_automatic_todos_are_created_once_and_closed_when_their_condition_ends(db):
    now = datetime(2026, 11, 20, 14, 0)
    source = MemorySource()
    source.put("Customer", customer(1, "Ann", "Ames", phones={"PrimaryPhone": "617-555-0111"}))
    source.put("Estimate", estimate(10, 1, 1000, status="Accepted", accepted="2026-11-19"))
    source.put("Estimate", estimate(11, 1, 500, status="Pending", txn_date="2026-11-17", doc="1011"))
    source.put("Estimate", estimate(12, 1, 500, status="Pending", txn_date="2026-11-18", doc="1012"))
    source.put("Invoice", invoice(20, 1, 300, 300, "2026-11-13"))
    source.put("Invoice", invoice(21, 1, 300, 300, "2026-11-14"))
    run_sync(source=source, now=now)
    ann = db.session.scalar(select(Contact).filter_by(phone="+16175550111"))
    db.session.add(Call(provider_id="ACmissed1", direction="incoming", status="missed", contact_id=ann.id,
                        phone=ann.phone, created_at=now - timedelta(hours=2)))
    db.session.commit()
    assert refresh_todos(now) == {"created": 1, "closed": 0}  # the call back
    titles = sorted(db.session.scalars(select(Todo.title).where(Todo.done.is_(False))))
    assert titles == ["Call back Ann Ames", "Chase Ann Ames", "Follow up on estimate #1011", "Schedule Ann Ames"]
    assert refresh_todos(now) == {"created": 0, "closed": 0}
    # The conditions end: the job is scheduled, the estimate accepted, the invoice paid, the call returned.
    job = db.session.scalar(select(Job))
    job.scheduled_for, job.status = now.date(), "Scheduled"
    db.session.add(Message(direction="outgoing", kind="sms", status="sent", contact_id=ann.id, to_phone=ann.phone,
                           created_at=now))
    db.session.commit()
    source.put("Estimate", estimate(11, 1, 500, status="Accepted", txn_date="2026-11-17", doc="1011",
                                    accepted="2026-11-20"))
    source.put("Invoice", invoice(20, 1, 300, 0, "2026-11-13"))
    run_sync(source=source, now=now)
    assert sorted(db.session.scalars(select(Todo.title).where(Todo.done.is_(False)))) == []
    assert db.session.scalar(select(func.count(Todo.id))) == 4
    later = now + timedelta(days=1)
    assert refresh_todos(later)["created"] == 3  # estimate 12 is 3 days old, invoice 21 is 7 days late, job 11
    assert sorted(db.session.scalars(select(Todo.title).where(Todo.done.is_(False)))) == [
        "Chase Ann Ames", "Follow up on estimate #1012", "Schedule Ann Ames"]
    assert db.session.scalar(select(func.count(AuditLog.id)).where(AuditLog.action == "todos")) >= 3


def test_a_disconnected_quickbooks_pauses_the_sync_and_deletes_nothing(db):
    class Refused(Exception):
        pass

    source = MemorySource()
    source.QuickBooksDisconnected = Refused
    source.put("Customer", customer(1, email="a@example.com"))
    run_sync(source=source)

    def refuse(*args, **kwargs):
        raise Refused("invalid_grant")

    source.changes_since = refuse
    with pytest.raises(Disconnected):
        run_sync(source=source)
    state = db.session.get(QuickbooksSync, 1, populate_existing=True)
    assert "reconnect" in state.paused_reason.lower() and state.running_since is None
    assert db.session.scalar(select(func.count(QbCustomer.id))) == 1
    assert db.session.scalar(select(func.count(Payment.id))) == 0
    assert db.session.scalar(select(func.count(Invoice.id))) == 0


def test_the_tick_enqueues_one_due_sync_however_many_workers_ask(app, db, redis, run_jobs):
    from app.models import Contact as C
    from app.money import enqueue_sync_if_due
    from app.queue import get_queue

    ann = C(first_name="Ann", phone="+16175550111")
    db.session.add(ann)
    db.session.flush()
    db.session.add(Call(provider_id="ACmissed1", direction="incoming", status="missed", contact_id=ann.id,
                        phone=ann.phone, created_at=utcnow() - timedelta(hours=1)))
    db.session.commit()
    assert [enqueue_sync_if_due() for _ in range(5)] == [1, 0, 0, 0, 0]  # five workers' ticks
    assert len(get_queue()) == 1
    run_jobs()
    assert db.session.scalar(select(Todo.title)) == "Call back Ann"
    assert enqueue_sync_if_due() == 0  # not due again until QUICKBOOKS_SYNC_MINUTES have passed


def test_a_running_sync_keeps_a_second_one_out(db):
    from app.money import _claim
    from app.quickbooks_sync import SyncBusy

    _claim(utcnow())
    with pytest.raises(SyncBusy):
        run_sync(source=MemorySource())
    db.session.execute(QuickbooksSync.__table__.update().values(running_since=utcnow() - timedelta(hours=1)))
    db.session.commit()
    assert run_sync(source=MemorySource())["how"] == "full"  # a run that died long ago is taken over
