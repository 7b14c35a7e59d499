"""How the contact rules (app.contacts.clean_contact) show at the screen and API doors:
field errors on the form, 409 / 422 with the reason over the API."""
from flask import url_for
from flask_appbuilder.fieldwidgets import BS3TextFieldWidget
from markupsafe import Markup, escape
from wtforms import StringField
from wtforms.validators import Optional

from app import display
from app.contacts import EDITABLE_FIELDS, ContactError, apply_contact_rules, clean_contact
from app.extensions import db
from app.security import check_assignment, current_user_scope

NAME_FIELDS = ("first_name", "last_name", "name_as_received")


def _visible(contact):
    scope = current_user_scope()
    return scope is None or contact.assigned_user_id == scope


def duplicate_message(existing, link=True):
    """"That phone belongs to <the existing contact>", named and linked only for a user who may see it."""
    if not _visible(existing):
        return "This phone number already belongs to another contact, assigned to someone else. Ask an Admin."
    name = escape(str(existing))
    if link:
        name = Markup(f'<a href="{url_for("ContactView.show", pk=existing.id)}">{name}</a>')
    return Markup(f"{escape(display.phone(existing.phone))} already belongs to {name} (contact {existing.id}): one phone, "
                  f"one contact. Open that contact to update it instead.")


def with_contact_rules(form_class):
    """The add or edit form FAB generated, checked by clean_contact: errors land on their field,
    and the cleaned values (E.164 phone, lower-cased email) are what gets saved."""

    class ContactForm(form_class):
        # Typed as the user likes ("+1 617 555 3020"): clean_contact decides, not a length check.
        phone = StringField("Phone", validators=[Optional()], widget=BS3TextFieldWidget())

        def validate(self, extra_validators=None):
            valid = super().validate(extra_validators)
            values = {f: getattr(self, f).data for f in EDITABLE_FIELDS if hasattr(self, f)}
            try:
                cleaned = clean_contact(values, contact_id=getattr(self, "_id", None))
            except ContactError as exc:
                for field, message in exc.errors.items():
                    if exc.existing is not None and field == "phone":
                        message = duplicate_message(exc.existing)
                    target = getattr(self, field, None) or self.first_name
                    target.errors = [*target.errors, message]
                return False
            for field, value in cleaned.items():
                if field not in NAME_FIELDS:  # pre_add / pre_update case names and keep them as typed
                    getattr(self, field).data = value
            return valid

    return ContactForm


class ContactRulesMixin:
    """pre_add / pre_update for a ModelView or ModelRestApi of contacts."""

    def pre_add(self, item):
        apply_contact_rules(item)

    def pre_update(self, item):
        check_assignment(item, current_user_scope())
        apply_contact_rules(item)


class StaffAssignmentMixin:
    """The contact edit form of a user limited to their own contacts has no "assigned user":
    not shown, and not applied if posted (check_assignment refuses a change anyway)."""

    def _get_edit_widget(self, form, exclude_cols=None, widgets=None):
        if current_user_scope() is not None:
            exclude_cols = [*(exclude_cols or []), "assigned_user"]
        return super()._get_edit_widget(form=form, exclude_cols=exclude_cols, widgets=widgets)

    def process_form(self, form, is_created):
        if current_user_scope() is not None and hasattr(form, "assigned_user"):
            del form.assigned_user
        super().process_form(form, is_created)


class ContactApiRulesMixin(ContactRulesMixin):
    """POST / PUT refused with the reason: 409 naming the contact that has the phone, else 422."""

    def post_headless(self):
        return self._checked(super().post_headless)

    def put_headless(self, pk):
        return self._checked(lambda: super(ContactApiRulesMixin, self).put_headless(pk))

    def _checked(self, call):
        try:
            return call()
        except ContactError as exc:
            db.session.rollback()
            if exc.existing is None:
                return self.response_422(message={field: [message] for field, message in exc.errors.items()})
            body = {"message": {"phone": [str(duplicate_message(exc.existing, link=False))]}}
            if _visible(exc.existing):
                body["existing_id"] = exc.existing.id
                body["existing_url"] = url_for("ContactView.show", pk=exc.existing.id)
            return self.response(409, **body)
