"""How every screen shows values (app/display.py as Jinja filters and FAB formatters), and the
model view every screen builds on: plain titles and messages, and after a save the saved record."""
import re
from datetime import datetime
from decimal import Decimal

from flask import current_app, g, redirect, url_for
from flask_appbuilder import ModelView as FabModelView
from flask_appbuilder.fields import QuerySelectField
from markupsafe import Markup
from wtforms.fields.core import UnboundField

from app import display

PHONE_COLUMNS = re.compile(r"(^|_)phone$|^sending_number$|^phone_number$")
MONEY_COLUMNS = re.compile(r"^(amount|total|balance|estimated_value|estimated_equity|estimate_total|invoiced|paid)$")


# Column headings in plain words where the column's name does not say it ("created_at" -> "Added").
LABELS = {"created_at": "Added", "updated_at": "Updated", "assigned_user": "Assigned to", "mail_address": "Mailing address",
          "mail_city": "Mailing city", "mail_state": "Mailing state", "mail_zip": "Mailing ZIP", "zip": "ZIP",
          "apn": "APN", "email": "Email", "sms": "SMS", "to_phone": "To", "from_phone": "From", "qb_id": "QuickBooks id"}


def label_for(column):
    """'first_name' -> 'First name' (FAB would say 'First Name')."""
    return LABELS.get(column) or column.replace("_", " ").strip().capitalize()


def zone():
    return current_app.config["COMPANY_TIMEZONE"]


def shown(value, column="", with_zone=True):
    """A stored value as people read it; `column` (its name) picks phones, money and window days."""
    if value is None:
        return ""
    if isinstance(value, Markup):
        return value
    if column and PHONE_COLUMNS.search(column):
        return display.phone(value)
    if column == "window_days":
        return display.window_days(value)
    if isinstance(value, Decimal) or (column and MONEY_COLUMNS.match(column)):
        return display.money(value)
    if isinstance(value, (list, tuple)):
        return ", ".join(shown(v) for v in value)
    if isinstance(value, datetime):
        return display.when(value, zone(), with_zone)
    return display.value(value, zone())


def named_column(column):
    return bool(PHONE_COLUMNS.search(column) or MONEY_COLUMNS.match(column) or column == "window_days")


def formatter_for(column):
    """The FAB formatter of one column (FAB calls it with the raw value)."""
    return lambda value: shown(value, column)


FILTERS = {
    "phone": display.phone,
    "money": display.money,
    "window_days": display.window_days,
    "blank": display.blank,
    "yes_no": display.yes_no,
    "reply_rate": display.reply_rate,
    "day": display.day,
    "clock": display.clock,
    "when": lambda value, with_zone=True: display.when(value, zone(), with_zone),
    "shown": shown,
}


def install(app):
    """The filters every template uses: {{ contact.phone|phone }}, {{ message.created_at|when }}."""
    app.jinja_env.filters.update(FILTERS)
    app.jinja_env.globals["company_zone"] = zone


def plural(noun):
    if re.search(r"[^aeiou]y$", noun):
        return noun[:-1] + "ies"
    if re.search(r"(s|x|ch|sh)$", noun):
        return noun + "es"
    return noun + "s"


def noun_of(model_name):
    """'ContactList' -> 'contact list'."""
    return re.sub(r"(?<!^)(?=[A-Z])", " ", model_name).lower()


def name_empty_choices(form):
    """A pick-one field's empty choice reads "Nobody" (a user) or "(none)", not FAB's "__None"."""
    for name, field in vars(form).items():
        if isinstance(field, UnboundField) and issubclass(field.field_class, QuerySelectField) \
                and field.kwargs.get("allow_blank") and not field.kwargs.get("blank_text"):
            field.kwargs["blank_text"] = "Nobody" if "user" in name else "(none)"


class PlainViewMixin:
    """Plain words ("Contacts", "New contact", "Contact saved"), values shown for people, and a
    save that lands on the saved record; for FAB's model views (ours and its user and role screens)."""

    noun = None  # what one row is called on screen; default: the model's name in words

    def _init_titles(self):
        noun = self.noun or noun_of(self.datamodel.model_name)
        self.list_title = self.list_title or plural(noun).capitalize()
        self.add_title = self.add_title or f"New {noun}"
        self.edit_title = self.edit_title or f"Edit {noun}"
        self.show_title = self.show_title or noun.capitalize()
        self.add_row_message = self.edit_row_message = f"{noun.capitalize()} saved"
        self.delete_row_message = f"{noun.capitalize()} deleted"
        super()._init_titles()

    def _init_properties(self):
        super()._init_properties()
        # By name: phones, money, window days. Everything else is shown by its type, by the list
        # and show templates (times with their zone on a record's page, without in a list).
        named = {c for c in {*self.list_columns, *self.show_columns} if named_column(c)}
        self.formatters_columns = {**{c: formatter_for(c) for c in named}, **self.formatters_columns}

    def _init_forms(self):
        super()._init_forms()
        for form in (self.add_form, self.edit_form):
            name_empty_choices(form)

    @staticmethod
    def _prettify_column(name):
        return label_for(name)

    def post_add(self, item):
        super().post_add(item)
        g.saved_pk = self.datamodel.get_pk_value(item)

    def post_update(self, item):
        super().post_update(item)
        g.saved_pk = self.datamodel.get_pk_value(item)

    def post_add_redirect(self):
        return self._to_saved_record() or super().post_add_redirect()

    def post_edit_redirect(self):
        return self._to_saved_record() or super().post_edit_redirect()

    def _to_saved_record(self):
        """The saved record's page, when there is one the user may open."""
        pk = g.pop("saved_pk", None)
        if pk is None or not self.appbuilder.sm.has_access("can_show", self.class_permission_name):
            return None
        return redirect(url_for(f"{self.endpoint}.show", pk=self._serialize_pk_if_composite(pk)))


class ModelView(PlainViewMixin, FabModelView):
    """The model view every screen of the CRM builds on."""
