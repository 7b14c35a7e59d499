"""Money screens: the QuickBooks mirror (read-only), jobs (schedule date, notes, status), the
customers' match outcomes and the review list for ambiguous ones; POST /webhooks/quickbooks."""
from datetime import date

from flask import abort, flash, redirect, request, url_for
from flask_appbuilder import expose, has_access
from flask_appbuilder.fieldwidgets import Select2Widget
from flask_appbuilder.models.filters import BaseFilter
from wtforms import SelectField
from wtforms.validators import DataRequired

from app import money
from app.analytics import money_filters
from app.models import Estimate, Invoice, Job, Payment, QbCustomer
from app.money_models import JOB_STATUSES
from app.security import AssignedToCurrentUser, ScopedInterface
from views.display import ModelView

CONTACT_SCOPE = [["contact", AssignedToCurrentUser, None]]  # as views/contacts.py: Staff see their contacts' money
READ_ONLY = ["can_list", "can_show"]


class MoneyNumber(BaseFilter):
    """The rows behind one number of Money waiting (app.analytics.money_filters)."""

    number = None

    def apply(self, query, value):
        return query.filter(*money_filters(date.today())[self.number][1])


def behind(number):
    return type(f"Behind_{number}", (MoneyNumber,), {"number": number, "name": number})


class EstimateView(ModelView):
    datamodel = ScopedInterface(Estimate)
    base_permissions = READ_ONLY
    base_filters = CONTACT_SCOPE
    base_order = ("txn_date", "desc")
    list_columns = ["doc_number", "contact", "customer_name", "status", "txn_date", "accepted_date", "total",
                    "property", "deleted"]
    show_columns = ["doc_number", "status", "contact", "customer_name", "qb_customer", "property", "txn_date",
                    "accepted_date", "expiration_date", "total", "address_line1", "address_zip", "qb_id",
                    "sync_token", "last_updated", "deleted"]
    search_columns = ["doc_number", "status", "txn_date", "accepted_date", "deleted"]


class InvoiceView(ModelView):
    datamodel = ScopedInterface(Invoice)
    base_permissions = READ_ONLY
    base_filters = CONTACT_SCOPE
    base_order = ("due_date", "asc")
    list_columns = ["doc_number", "contact", "customer_name", "txn_date", "due_date", "total", "balance", "estimate",
                    "deleted"]
    show_columns = ["doc_number", "contact", "customer_name", "estimate", "txn_date", "due_date", "total", "balance",
                    "qb_id", "sync_token", "last_updated", "deleted"]
    search_columns = ["doc_number", "due_date", "balance", "deleted"]


class PaymentView(ModelView):
    datamodel = ScopedInterface(Payment)
    base_permissions = READ_ONLY
    base_filters = CONTACT_SCOPE
    base_order = ("txn_date", "desc")
    list_columns = ["txn_date", "contact", "customer_name", "amount", "unapplied", "invoices_paid", "deleted"]
    show_columns = ["txn_date", "contact", "customer_name", "amount", "unapplied", "invoices_paid", "qb_id",
                    "sync_token", "last_updated", "deleted"]
    search_columns = ["txn_date", "amount", "deleted"]
    label_columns = {"invoices_paid": "Invoices paid", "txn_date": "Date"}


class JobView(ModelView):
    datamodel = ScopedInterface(Job)
    base_permissions = ["can_list", "can_show", "can_edit"]
    base_filters = CONTACT_SCOPE
    base_order = ("created_at", "desc")
    list_columns = ["contact", "estimate", "status", "scheduled_for", "property", "created_at"]
    show_columns = ["contact", "property", "estimate", "status", "scheduled_for", "notes", "estimate_total",
                    "invoiced", "paid", "balance_due", "created_at", "paid_at"]
    edit_columns = ["status", "scheduled_for", "notes"]
    label_columns = {"estimate_total": "Estimate total", "invoiced": "Invoiced", "paid": "Paid by payments",
                     "balance_due": "Balance due", "scheduled_for": "Scheduled for"}
    search_columns = ["status", "scheduled_for", "created_at"]
    edit_form_extra_fields = {"status": SelectField("Status", choices=[(s, s) for s in JOB_STATUSES],
                                                    validators=[DataRequired()], widget=Select2Widget())}

    def pre_update(self, item):
        """Setting a date schedules an accepted job."""
        if item.scheduled_for is not None and item.status == "Accepted":
            item.status = "Scheduled"


class UnscheduledJobView(JobView):
    list_title = "Accepted estimates not yet scheduled"
    base_permissions = ["can_list"]
    base_filters = CONTACT_SCOPE + [["id", behind("unscheduled"), None]]


class OpenEstimateView(EstimateView):
    list_title = "Open estimates"
    base_permissions = ["can_list"]
    base_filters = CONTACT_SCOPE + [["id", behind("open_estimates"), None]]


class PastDueInvoiceView(InvoiceView):
    list_title = "Invoices past due"
    base_permissions = ["can_list"]
    base_filters = CONTACT_SCOPE + [["id", behind("past_due"), None]]


class MonthPaymentView(PaymentView):
    list_title = "Payments this month"
    base_permissions = ["can_list"]
    base_filters = CONTACT_SCOPE + [["id", behind("payments_this_month"), None]]


class LastMonthPaymentView(PaymentView):
    list_title = "Payments, same days last month"
    base_permissions = ["can_list"]
    base_filters = CONTACT_SCOPE + [["id", behind("payments_last_month"), None]]


class QbCustomerView(ModelView):
    list_title = "QuickBooks customers"
    datamodel = ScopedInterface(QbCustomer)
    base_permissions = READ_ONLY
    base_order = ("id", "desc")
    list_columns = ["display_name", "primary_phone", "email", "match", "match_detail", "contact", "balance",
                    "deleted"]
    show_columns = ["display_name", "given_name", "family_name", "company_name", "primary_phone", "mobile",
                    "alternate_phone", "email", "bill_line1", "bill_city", "bill_state", "bill_zip", "active",
                    "balance", "match", "match_detail", "candidates", "contact", "qb_id", "sync_token",
                    "last_updated", "deleted"]
    search_columns = ["display_name", "email", "match", "deleted"]
    label_columns = {"review_link": "Review", "match": "Matched by", "match_detail": "How"}


class Ambiguous(BaseFilter):
    name = "ambiguous"

    def apply(self, query, value):
        return query.filter(QbCustomer.match == "ambiguous")


class CustomerReviewView(QbCustomerView):
    """Ambiguous customers: a person picks which of the candidate contacts is theirs."""
    list_title = "QuickBooks customers to review"
    base_permissions = ["can_list", "can_show", "can_choose"]
    base_filters = [["id", Ambiguous, None]]
    list_columns = ["display_name", "primary_phone", "mobile", "alternate_phone", "email", "match_detail",
                    "review_link"]
    show_template = "customer_review.html"

    @expose("/choose/<int:pk>", methods=["POST"])
    @has_access
    def choose(self, pk):
        customer = self.datamodel.get(pk, self._base_filters)
        if customer is None:
            abort(404)
        try:
            contact = money.choose_contact(customer.id, request.form.get("contact_id", type=int))
        except ValueError as exc:
            flash(str(exc), "danger")
            return redirect(url_for(".show", pk=pk))
        flash(f"{customer} is now linked to {contact}; its estimates, invoices and payments follow.", "info")
        return redirect(url_for(".list"))

    @expose("/show/<pk>", methods=["GET"])
    @has_access
    def show(self, pk):
        customer = self.datamodel.get(pk, self._base_filters)
        if customer is None:
            abort(404)
        return self.render_template(self.show_template, customer=customer, contacts=money.candidate_contacts(customer),
                                    title="Which contact is this customer?")


class ContactEstimateView(EstimateView):
    list_title = "Estimates"
    base_permissions = ["can_list"]
    list_columns = ["doc_number", "status", "txn_date", "accepted_date", "total", "deleted"]


class ContactInvoiceView(InvoiceView):
    list_title = "Invoices"
    base_permissions = ["can_list"]
    list_columns = ["doc_number", "txn_date", "due_date", "total", "balance", "deleted"]


class ContactPaymentView(PaymentView):
    list_title = "Payments"
    base_permissions = ["can_list"]
    list_columns = ["txn_date", "amount", "invoices_paid", "deleted"]


class ContactJobView(JobView):
    list_title = "Jobs"
    base_permissions = ["can_list"]
    list_columns = ["estimate", "status", "scheduled_for", "created_at"]


CONTACT_MONEY_VIEWS = [ContactEstimateView, ContactInvoiceView, ContactPaymentView, ContactJobView]


def register(appbuilder):
    appbuilder.add_view(JobView, "Jobs", icon="fa-wrench", category="Money")
    appbuilder.add_view(EstimateView, "Estimates", icon="fa-file-text-o", category="Money")
    appbuilder.add_view(InvoiceView, "Invoices", icon="fa-file-o", category="Money")
    appbuilder.add_view(PaymentView, "Payments", icon="fa-money", category="Money")
    appbuilder.add_view(QbCustomerView, "QuickBooks customers", icon="fa-users", category="Money")
    appbuilder.add_view(CustomerReviewView, "Customers to review", icon="fa-question-circle", category="Money")
    for view in (UnscheduledJobView, OpenEstimateView, PastDueInvoiceView, MonthPaymentView, LastMonthPaymentView,
                 *CONTACT_MONEY_VIEWS):
        appbuilder.add_view_no_menu(view)
