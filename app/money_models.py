"""The read-only QuickBooks mirror (customers, estimates, invoices, payments) and jobs.

Every mirrored row keeps QuickBooks' id (qb_id), its SyncToken (the record's version) and its
last update time; a record deleted in QuickBooks is marked deleted here, never dropped."""
from flask import url_for
from flask_appbuilder import Model
from markupsafe import Markup
from sqlalchemy import JSON, Boolean, Column, Date, DateTime, ForeignKey, Integer, Numeric, String, Text, select
from sqlalchemy.orm import object_session, relationship

from app.utc import utcnow

MONEY = Numeric(12, 2)




class QbCustomer(Model):
    __tablename__ = "qb_customers"
    id = Column(Integer, primary_key=True)
    qb_id = Column(String(32), nullable=False, unique=True)
    sync_token = Column(Integer, nullable=False, default=0)
    display_name = Column(String(255))
    given_name = Column(String(100))
    family_name = Column(String(100))
    company_name = Column(String(255))
    primary_phone = Column(String(100))  # as QuickBooks has them: free text
    mobile = Column(String(100))
    alternate_phone = Column(String(100))
    email = Column(String(255))
    bill_line1 = Column(String(255))
    bill_city = Column(String(100))
    bill_state = Column(String(30))
    bill_zip = Column(String(20))
    active = Column(Boolean, nullable=False, default=True)
    balance = Column(MONEY)
    contact_id = Column(Integer, ForeignKey("contacts.id", ondelete="SET NULL"), index=True)
    # phone, email, name_address, created, ambiguous, no_phone_or_email, error, chosen (by a person)
    match = Column(String(20), index=True)
    match_detail = Column(Text)  # what matched, or why nothing did
    candidates = Column(JSON)  # contact ids a person chooses from (ambiguous)
    deleted = Column(Boolean, nullable=False, default=False, index=True)
    last_updated = Column(DateTime)
    synced_at = Column(DateTime, nullable=False, default=utcnow)
    contact = relationship("Contact")

    def __repr__(self):
        return self.display_name or f"QuickBooks customer {self.qb_id}"

    def review_link(self):
        return Markup(f'<a href="{url_for("CustomerReviewView.show", pk=self.id)}">Pick the contact</a>')


class Estimate(Model):
    __tablename__ = "estimates"
    id = Column(Integer, primary_key=True)
    qb_id = Column(String(32), nullable=False, unique=True)
    sync_token = Column(Integer, nullable=False, default=0)
    doc_number = Column(String(30), index=True)
    status = Column(String(20), index=True)  # Pending, Accepted, Closed, Rejected
    txn_date = Column(Date, index=True)
    accepted_date = Column(Date, index=True)
    expiration_date = Column(Date)
    total = Column(MONEY)
    customer_qb_id = Column(String(32), index=True)  # kept even while the customer is not mirrored yet
    customer_name = Column(String(255))
    qb_customer_id = Column(Integer, ForeignKey("qb_customers.id", ondelete="SET NULL"), index=True)
    contact_id = Column(Integer, ForeignKey("contacts.id", ondelete="SET NULL"), index=True)
    property_id = Column(Integer, ForeignKey("properties.id", ondelete="SET NULL"), index=True)
    address_line1 = Column(String(255))
    address_zip = Column(String(20))
    deleted = Column(Boolean, nullable=False, default=False, index=True)
    last_updated = Column(DateTime)
    synced_at = Column(DateTime, nullable=False, default=utcnow)
    qb_customer = relationship("QbCustomer")
    contact = relationship("Contact")
    property = relationship("Property")

    def __repr__(self):
        return f"Estimate #{self.doc_number or self.qb_id}"


class Invoice(Model):
    __tablename__ = "invoices"
    id = Column(Integer, primary_key=True)
    qb_id = Column(String(32), nullable=False, unique=True)
    sync_token = Column(Integer, nullable=False, default=0)
    doc_number = Column(String(30), index=True)
    txn_date = Column(Date)
    due_date = Column(Date, index=True)
    total = Column(MONEY)
    balance = Column(MONEY)
    customer_qb_id = Column(String(32), index=True)
    customer_name = Column(String(255))
    estimate_qb_id = Column(String(32), index=True)  # from LinkedTxn
    estimate_id = Column(Integer, ForeignKey("estimates.id", ondelete="SET NULL"), index=True)
    contact_id = Column(Integer, ForeignKey("contacts.id", ondelete="SET NULL"), index=True)
    deleted = Column(Boolean, nullable=False, default=False, index=True)
    last_updated = Column(DateTime)
    synced_at = Column(DateTime, nullable=False, default=utcnow)
    estimate = relationship("Estimate")
    contact = relationship("Contact")
    payments = relationship("PaymentInvoice", viewonly=True)

    def __repr__(self):
        return f"Invoice #{self.doc_number or self.qb_id}"


class Payment(Model):
    __tablename__ = "payments"
    id = Column(Integer, primary_key=True)
    qb_id = Column(String(32), nullable=False, unique=True)
    sync_token = Column(Integer, nullable=False, default=0)
    txn_date = Column(Date, index=True)
    amount = Column(MONEY)
    unapplied = Column(MONEY)
    customer_qb_id = Column(String(32), index=True)
    customer_name = Column(String(255))
    contact_id = Column(Integer, ForeignKey("contacts.id", ondelete="SET NULL"), index=True)
    deleted = Column(Boolean, nullable=False, default=False, index=True)
    last_updated = Column(DateTime)
    synced_at = Column(DateTime, nullable=False, default=utcnow)
    contact = relationship("Contact")
    applied = relationship("PaymentInvoice", back_populates="payment", cascade="all, delete-orphan")

    def __repr__(self):
        return f"Payment {self.qb_id}"

    def invoices_paid(self):
        """'#1001: 250.00, #1002: 100.00': what this payment paid, invoice by invoice."""
        return ", ".join(f"#{(a.invoice.doc_number if a.invoice else None) or a.invoice_qb_id}: {a.amount}"
                         for a in self.applied)


class PaymentInvoice(Model):
    """How much of one payment went to one invoice (Payment.Line[].LinkedTxn)."""
    __tablename__ = "payment_invoices"
    payment_id = Column(Integer, ForeignKey("payments.id", ondelete="CASCADE"), primary_key=True)
    invoice_qb_id = Column(String(32), primary_key=True)
    invoice_id = Column(Integer, ForeignKey("invoices.id", ondelete="SET NULL"), index=True)
    amount = Column(MONEY, nullable=False)
    payment = relationship("Payment", back_populates="applied")
    invoice = relationship("Invoice")


JOB_STATUSES = ("Accepted", "Scheduled", "In progress", "Done", "Paid")


class Job(Model):
    """The work an accepted estimate became; its invoices are the estimate's."""
    __tablename__ = "jobs"
    id = Column(Integer, primary_key=True)
    status = Column(String(20), nullable=False, default="Accepted", index=True)
    estimate_id = Column(Integer, ForeignKey("estimates.id", ondelete="CASCADE"), nullable=False, unique=True)
    contact_id = Column(Integer, ForeignKey("contacts.id", ondelete="SET NULL"), index=True)
    property_id = Column(Integer, ForeignKey("properties.id", ondelete="SET NULL"), index=True)
    scheduled_for = Column(Date, index=True)
    notes = Column(Text)
    created_at = Column(DateTime, nullable=False, default=utcnow, index=True)
    paid_at = Column(DateTime)
    estimate = relationship("Estimate")
    contact = relationship("Contact")
    property = relationship("Property")

    def __repr__(self):
        return f"Job {self.id}: {self.contact or self.estimate}"

    def invoices(self):
        return object_session(self).scalars(select(Invoice).where(Invoice.estimate_id == self.estimate_id,
                                                                  Invoice.deleted.is_(False))).all()

    def estimate_total(self):
        return self.estimate.total if self.estimate else None

    def invoiced(self):
        return sum((i.total or 0) for i in self.invoices())

    def balance_due(self):
        return sum((i.balance or 0) for i in self.invoices())

    def paid(self):
        return sum((a.amount or 0) for i in self.invoices() for a in i.payments if not a.payment.deleted)


class QuickbooksSync(Model):
    """The one row of sync state: when it last ran, where CDC resumes, why it is paused."""
    __tablename__ = "quickbooks_sync"
    id = Column(Integer, primary_key=True)
    last_full_sync_at = Column(DateTime)
    last_cdc_at = Column(DateTime)  # changes since this time are still to fetch
    last_finished_at = Column(DateTime)
    running_since = Column(DateTime)  # a sync holds this; a stale one is taken over
    paused_reason = Column(Text)
    last_error = Column(Text)
    counts = Column(JSON)
