"""Opt-outs: the list and its "+", the REST API, "Do not text" on a contact, and Possible
opt-outs (replies a person decides on). Every one of them writes through app.opt_outs.opt_out."""
from flask import abort, current_app, flash, g, redirect, request, url_for
from flask_appbuilder import ModelRestApi, expose, has_access
from flask_appbuilder.actions import action
from flask_appbuilder.fieldwidgets import BS3TextFieldWidget
from flask_appbuilder.models.filters import BaseFilter
from wtforms import StringField, ValidationError
from wtforms.validators import DataRequired

from app import audit
from app.contacts import normalize_phone
from app.extensions import db
from app.models import Message, OptOut
from app.opt_outs import InvalidPhone, mark_do_not_text, opt_out, review_reply
from app.security import AssignedToCurrentUser, ScopedInterface
from views.display import ModelView

API_SOURCES = ("api", "manual", "dnc")


def valid_phone(form, field):
    """Any way of writing a phone; stored as E.164."""
    phone = normalize_phone(field.data, current_app.config["DEFAULT_REGION"])
    if phone is None:
        raise ValidationError(f"{(field.data or '')[:40]!r} is not a valid phone number: write it with its area code, "
                              f"like 617-555-0123.")
    field.data = phone


class OptOutInterface(ScopedInterface):
    """The "+" of the Opt-outs screen saves through opt_out(): a manual opt-out, by whom."""

    def add(self, item, commit=True):
        row = opt_out(item.phone, "manual", reason=item.reason, user_id=g.user.id)
        self.session.flush()
        item.id = row.id  # the saved opt-out (new, or the one already there): the page lands on it
        if commit:
            self.session.commit()


class OptOutView(ModelView):
    datamodel = OptOutInterface(OptOut)
    base_permissions = ["can_list", "can_show", "can_add"]
    base_order = ("created_at", "desc")
    list_columns = ["phone", "active", "source", "reason", "created_by", "created_at", "revoked_at"]
    show_columns = ["phone", "phone_hash", "active", "source", "reason", "created_by", "created_at", "revoked_at"]
    search_columns = ["phone", "active", "source", "created_at"]
    add_columns = ["phone", "reason"]
    add_form_extra_fields = {"phone": StringField(
        "Phone", validators=[DataRequired(), valid_phone], widget=BS3TextFieldWidget(),
        description="As the person gave it: 617-555-0123, (617) 555 0123, +1 617 555 0123 ...")}
    description_columns = {"reason": "How the request came in, for example: called the office on May 3."}
    add_row_message = "Opt-out saved: this phone will get no more texts."


class OptOutApi(ModelRestApi):
    """GET /api/v1/optout/ and POST {"phone", "reason", "source"?} (Admin, Marketer)."""
    resource_name = "optout"
    datamodel = ScopedInterface(OptOut)
    base_permissions = ["can_get", "can_info", "can_post"]
    list_columns = show_columns = ["id", "phone", "source", "reason", "active", "created_at"]
    add_columns = ["phone", "reason"]
    search_columns = ["phone", "source", "active", "created_at"]
    order_columns = ["id", "created_at", "phone"]

    def post_headless(self):
        payload = request.get_json(silent=True) if request.is_json else None
        if not isinstance(payload, dict) or not isinstance(payload.get("phone"), str):
            return self.response_400(message="Send JSON with phone (text) and, optionally, reason and source.")
        reason, source = payload.get("reason"), payload.get("source") or "api"
        if (reason is not None and not isinstance(reason, str)) or source not in API_SOURCES:
            return self.response_422(message={"source": [f"source is one of {', '.join(API_SOURCES)}."],
                                              "reason": ["reason is text."]})
        try:
            row = opt_out(payload["phone"], source, reason=reason, user_id=audit.current_actor()[0])
        except InvalidPhone as exc:
            return self.response_422(message={"phone": [str(exc)]})
        db.session.commit()
        return self.response(201, id=row.id, result=self.show_model_schema.dump(row))


class DoNotTextMixin:
    """"Do not text" on the contact page: a manual opt-out of the contact's phone, audited.
    Staff reach only their own contacts (every <pk> route is scoped)."""

    @expose("/do_not_text/<pk>", methods=["POST"])
    @has_access
    def do_not_text(self, pk):
        contact = self.datamodel.get(pk, self._base_filters)
        if contact is None:
            abort(404)
        if not contact.phone:
            flash("This contact has no phone number to opt out.", "warning")
            return redirect(url_for(f"{self.endpoint}.show", pk=contact.id))
        reason = (request.form.get("reason") or "").strip()[:500] or "Marked do not text on the contact page"
        mark_do_not_text(contact, reason, g.user.id)
        db.session.commit()
        flash(f"{contact.phone} is marked do not text: no text will be sent to it.", "success")
        return redirect(url_for(f"{self.endpoint}.show", pk=contact.id))


class AwaitingReview(BaseFilter):
    """Inbound replies the classifier was unsure about, not yet decided by a person."""
    name = "Awaiting review"
    arg_name = "awaiting"

    def apply(self, query, value):
        return query.filter(Message.direction == "incoming", Message.opt_out_class == "uncertain",
                            Message.opt_out_reviewed_at.is_(None))


class PossibleOptOutView(ModelView):
    list_title = "Possible opt-outs"
    datamodel = ScopedInterface(Message)
    base_permissions = ["can_list"]
    base_filters = [["contact", AssignedToCurrentUser, None], ["id", AwaitingReview, None]]
    base_order = ("created_at", "desc")
    list_columns = ["created_at", "contact", "from_phone", "body"]
    search_columns = ["body", "created_at"]  # no contact picker: it would list every contact to Staff
    label_columns = {"from_phone": "From", "body": "Reply"}

    @action("confirm_opt_out", "Opt out", "Opt out the senders of the selected replies? They get no more texts.",
            "fa-ban", single=False)
    def confirm_opt_out(self, items):
        return self._review(items, True)

    @action("dismiss_opt_out", "Not an opt-out", "Mark the selected replies as not asking to stop?", "fa-check",
            single=False)
    def dismiss_opt_out(self, items):
        return self._review(items, False)

    def _review(self, items, confirmed):
        items = items if isinstance(items, list) else [items]
        for message in items:
            review_reply(message, confirmed, user_id=g.user.id)
        db.session.commit()
        flash(f"{len(items)} repl{'y' if len(items) == 1 else 'ies'} "
              f"{'opted out' if confirmed else 'marked as not an opt-out'}.", "success")
        return redirect(url_for(f"{self.endpoint}.list"))


def register(appbuilder):
    appbuilder.add_view(OptOutView, "Opt-outs", icon="fa-ban", category="Opt-outs")
    appbuilder.add_view(PossibleOptOutView, "Possible opt-outs", icon="fa-question-circle", category="Opt-outs")
    appbuilder.add_api(OptOutApi)
