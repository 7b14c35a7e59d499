"""REST API over the core records, scoped by role exactly like the screens."""
from flask import request
from flask_appbuilder import ModelRestApi
from flask_appbuilder.api import expose, protect

from app import analytics
from app.exports import record_api_read
from app.history_models import Call
from app.models import Campaign, Contact, ContactList, Estimate, Import, Invoice, Job, Message, Payment, Property
from app.security import ScopedInterface
from views.campaigns import api_save_campaign
from views.contact_forms import ContactApiRulesMixin
from views.contacts import CONTACT_SCOPE, OWN_LISTS, PROPERTY_SCOPE, STAFF_SCOPE, ContactInterface

CONTACT_FIELDS = ["id", "first_name", "last_name", "phone", "email", "mail_address", "mail_city",
                  "mail_state", "mail_zip", "source", "assigned_user.id", "notes", "created_at"]
EDITABLE = ["first_name", "last_name", "phone", "email", "mail_address", "mail_city", "mail_state", "mail_zip",
            "assigned_user", "notes"]


class AuditedReads:
    """List reads of personal data: past the export threshold they are audited as exports."""

    def pre_get_list(self, data):
        query = request.args.get("q", "")[:200]
        record_api_read(self.datamodel.obj.__tablename__, len(data.get("result") or []),
                        detail=f"GET {request.path}" + (f" q={query}" if query else ""))


class ContactRecordsApi(AuditedReads, ModelRestApi):
    """Read-only records that belong to a contact (texts, calls, money): Staff see their contacts' only."""

    base_filters = CONTACT_SCOPE
    base_permissions = ["can_get", "can_info"]


class ContactApi(AuditedReads, ContactApiRulesMixin, ModelRestApi):
    resource_name = "contact"
    datamodel = ContactInterface(Contact)
    base_filters = STAFF_SCOPE
    list_columns = show_columns = CONTACT_FIELDS
    add_columns = edit_columns = EDITABLE
    search_columns = ["first_name", "last_name", "phone", "email", "source", "assigned_user"]
    order_columns = ["id", "last_name", "first_name", "created_at"]


class PropertyApi(ModelRestApi):
    resource_name = "property"
    datamodel = ScopedInterface(Property)
    base_filters = PROPERTY_SCOPE
    list_columns = ["id", "apn", "address", "city", "state", "zip", "type", "year_built", "estimated_value"]


class ListApi(ModelRestApi):
    resource_name = "list"
    datamodel = ScopedInterface(ContactList)
    base_filters = OWN_LISTS
    list_columns = show_columns = ["id", "name", "description", "created_at"]
    add_columns = edit_columns = ["name", "description"]


class CampaignApi(ModelRestApi):
    resource_name = "campaign"
    datamodel = ScopedInterface(Campaign)
    base_permissions = ["can_get", "can_info", "can_results", "can_post", "can_put"]
    list_columns = show_columns = ["id", "name", "status", "sending_number", "daily_limit", "created_at"]
    add_columns = edit_columns = ["name"]  # the body is the builder's (views.campaigns.api_save_campaign)
    search_columns = ["name", "status", "sending_number", "created_at"]

    def post_headless(self):
        return api_save_campaign(self)

    def put_headless(self, pk):
        if self.datamodel.get(pk) is None:
            return self.response_404()
        return api_save_campaign(self, pk)

    @expose("/<int:pk>/results", methods=["GET"])
    @protect()
    def results(self, pk):
        """The A/B numbers the campaign page shows.
        ---
        get:
          responses:
            200:
              description: per variant sent, delivered, failed, replied, opted_out, reply_rate, ci_low,
                ci_high; the test between variants and its p-value
        """
        if self.datamodel.get(pk) is None:
            return self.response_404()
        results = analytics.campaign_results(pk)
        variants = [{key: v[key] for key in ("label", *analytics.OUTCOMES, "reply_rate", "ci_low", "ci_high")}
                    for v in results["variants"]]
        return self.response(200, id=pk, variants=variants, test=results["test"], p_value=results["p_value"],
                             significant=results["significant"])


class MessageApi(ContactRecordsApi):
    resource_name = "message"
    datamodel = ScopedInterface(Message)
    list_columns = show_columns = ["id", "contact.id", "direction", "body", "status", "from_phone", "to_phone",
                                   "created_at", "delivered_at"]


class CallApi(ContactRecordsApi):
    resource_name = "call"
    datamodel = ScopedInterface(Call)
    list_columns = show_columns = ["id", "contact.id", "direction", "status", "duration", "answered_by", "phone",
                                   "voicemail_url", "voicemail_transcript", "summary", "transcript",
                                   "recording_url", "source", "created_at"]
    search_columns = ["direction", "status", "phone", "created_at", "contact"]


class ImportApi(ModelRestApi):
    resource_name = "import"
    datamodel = ScopedInterface(Import)
    base_permissions = ["can_get", "can_info"]
    list_columns = show_columns = ["id", "filename", "format", "status", "total_rows", "rows_done",
                                   "created_at", "finished_at"]


class EstimateApi(ContactRecordsApi):
    resource_name = "estimate"
    datamodel = ScopedInterface(Estimate)
    list_columns = show_columns = ["id", "qb_id", "doc_number", "status", "txn_date", "accepted_date",
                                   "expiration_date", "total", "contact.id", "property.id", "customer_name",
                                   "sync_token", "last_updated", "deleted"]
    search_columns = ["doc_number", "status", "txn_date", "accepted_date", "deleted", "contact"]


class InvoiceApi(ContactRecordsApi):
    resource_name = "invoice"
    datamodel = ScopedInterface(Invoice)
    list_columns = show_columns = ["id", "qb_id", "doc_number", "txn_date", "due_date", "total", "balance",
                                   "estimate.id", "contact.id", "customer_name", "sync_token", "last_updated",
                                   "deleted"]
    search_columns = ["doc_number", "due_date", "balance", "deleted", "contact"]


class PaymentApi(ContactRecordsApi):
    resource_name = "payment"
    datamodel = ScopedInterface(Payment)
    list_columns = show_columns = ["id", "qb_id", "txn_date", "amount", "unapplied", "contact.id", "customer_name",
                                   "invoices_paid", "sync_token", "last_updated", "deleted"]
    search_columns = ["txn_date", "amount", "deleted", "contact"]


class JobApi(ContactRecordsApi):
    resource_name = "job"
    datamodel = ScopedInterface(Job)
    list_columns = show_columns = ["id", "status", "estimate.id", "contact.id", "property.id", "scheduled_for",
                                   "notes", "created_at", "paid_at"]
    search_columns = ["status", "scheduled_for", "contact"]


def register(appbuilder):
    for api in (ContactApi, PropertyApi, ListApi, CampaignApi, MessageApi, CallApi, ImportApi, EstimateApi, InvoiceApi,
                PaymentApi, JobApi):
        appbuilder.add_api(api)
