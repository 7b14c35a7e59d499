"""Contacts, properties, lists and todos."""
from flask import g, request, url_for
from flask_appbuilder import expose, has_access
from markupsafe import Markup, escape

from app import conversations, display, lists
from app.models import Contact, ContactList, ContactProperty, ListMember, Message, Property, Todo
from app.search import ContactFilterConverter
from app.security import AssignedToCurrentUser, ScopedInterface
from views import money
from views.contact_actions import ContactActionsMixin
from views.contact_data import ContactDataMixin
from views.contact_forms import ContactRulesMixin, StaffAssignmentMixin, with_contact_rules
from views.counts import EstimatedPager, EstimatingInterface
from views.display import ModelView
from views.opt_outs import DoNotTextMixin

STAFF_SCOPE = [["assigned_user_id", AssignedToCurrentUser, None]]
CONTACT_SCOPE = [["contact", AssignedToCurrentUser, None]]
PROPERTY_SCOPE = [["id", AssignedToCurrentUser, None]]  # Staff: the properties linked to their contacts
OWN_LISTS = [["id", lists.OwnListsOnly, None]]


class ContactInterface(EstimatingInterface):
    """The contacts' datamodel: its phone filter takes a number in any format."""

    filter_converter_class = ContactFilterConverter


def link_to(endpoint):
    """A list column formatter: the related record's name, linked to its page."""
    return lambda record: Markup('<a href="{}">{}</a>').format(url_for(endpoint, pk=record.id), escape(record)) \
        if record is not None else ""


class ContactPropertyView(ModelView):
    list_title = "Properties"
    datamodel = ScopedInterface(ContactProperty)
    base_permissions = ["can_list"]
    base_filters = CONTACT_SCOPE
    search_form_query_rel_fields = {"contact": STAFF_SCOPE}
    list_columns = ["property", "role"]
    formatters_columns = {"property": link_to("PropertyView.show")}


class ContactMessageView(ModelView):
    list_title = "Messages"
    datamodel = ScopedInterface(Message)
    base_permissions = ["can_list"]
    base_filters = CONTACT_SCOPE
    search_form_query_rel_fields = {"contact": STAFF_SCOPE}
    base_order = ("created_at", "desc")
    list_columns = ["created_at", "direction", "body", "status"]


class ListMemberView(ModelView):
    list_title = "List memberships"
    datamodel = ScopedInterface(ListMember)
    base_permissions = ["can_list", "can_delete"]
    base_filters = CONTACT_SCOPE + [["list_id", lists.OwnListsOnly, None]]
    search_form_query_rel_fields = {"contact": STAFF_SCOPE, "list": OWN_LISTS}
    list_columns = ["list", "contact", "added_at"]
    formatters_columns = {"list": link_to("ListView.show"), "contact": link_to("ContactView.show")}


class ContactView(EstimatedPager, StaffAssignmentMixin, ContactRulesMixin, DoNotTextMixin, ContactActionsMixin,
                  ContactDataMixin, ModelView):
    datamodel = ContactInterface(Contact)
    base_filters = STAFF_SCOPE
    base_order = ("id", "desc")
    list_template = "contact_list.html"
    list_columns = ["first_name", "last_name", "phone", "email", "source", "assigned_user", "created_at"]
    search_columns = ["first_name", "last_name", "phone", "email", "source", "assigned_user", "created_at"]
    show_fieldsets = [
        ("Contact", {"fields": ["first_name", "last_name", "phone", "email", "source", "assigned_user", "notes"]}),
        ("Mailing address", {"fields": ["mail_address", "mail_city", "mail_state", "mail_zip"], "expanded": False}),
        ("Record", {"fields": ["created_at", "updated_at", "name_as_received"], "expanded": False}),
    ]
    add_columns = ["first_name", "last_name", "phone", "email", "mail_address", "mail_city", "mail_state",
                   "mail_zip", "assigned_user", "notes"]
    edit_columns = add_columns
    # The conversation (texts and calls) is on the page itself, once.
    related_views = [ContactPropertyView, ListMemberView, *money.CONTACT_MONEY_VIEWS]
    show_template = "contact_show.html"
    label_columns = {"name_as_received": "Name as received"}
    formatters_columns = {"source": display.contact_source}

    @expose("/show/<int:pk>", methods=["GET"])
    @has_access
    def show(self, pk):
        """The contact's page; opening it reads their conversation for this user (else 404)."""
        contact = conversations.open_conversation(pk, g.user.id)
        return self.render_template(self.show_template, pk=pk, title="Details", contact=contact,
                                    widgets=self._show(pk), related_views=self._related_views)

    def _init_forms(self):
        super()._init_forms()
        self.add_form, self.edit_form = with_contact_rules(self.add_form), with_contact_rules(self.edit_form)


class PropertyContactView(ModelView):
    list_title = "Owners and contacts"
    datamodel = ScopedInterface(ContactProperty)
    base_filters = CONTACT_SCOPE
    base_permissions = ["can_list"]
    list_columns = ["contact", "role"]
    formatters_columns = {"contact": link_to("ContactView.show")}


class PropertyView(ModelView):
    datamodel = ScopedInterface(Property)
    base_filters = PROPERTY_SCOPE
    base_order = ("id", "desc")
    list_columns = ["address", "city", "zip", "type", "year_built", "estimated_value", "owner_name"]
    search_columns = ["apn", "address", "city", "state", "zip", "type", "year_built", "owner_name",
                      "owner_occupied", "listing_status"]
    related_views = [PropertyContactView]


class ListView(ModelView):
    datamodel = ScopedInterface(ContactList)
    list_title, show_title, add_title, edit_title = "Lists", "List", "New list", "Edit list"
    base_filters = OWN_LISTS
    base_order = ("created_at", "desc")
    list_columns = ["name", "member_count", "description", "created_at"]
    show_columns = ["name", "description", "member_count", "created_at"]
    label_columns = {"member_count": "Members", "created_at": "Created"}
    formatters_columns = {"description": lambda text: text or ""}
    add_columns = edit_columns = ["name", "description"]
    search_columns = ["name", "created_at"]
    show_template = "list_show.html"

    @expose("/show/<pk>", methods=["GET"])
    @has_access
    def show(self, pk):
        widgets = self._show(pk)
        members = lists.members_page(int(pk), request.args.get("members_page", 0, type=int), user_id=g.user.id)
        return self.render_template(self.show_template, pk=pk, title=self.show_title, widgets=widgets,
                                    related_views=self._related_views, members=members)


class TodoView(ModelView):
    datamodel = ScopedInterface(Todo)
    base_filters = CONTACT_SCOPE
    base_order = ("due_date", "asc")
    list_columns = ["title", "contact", "due_date", "done", "assigned_user"]
    add_columns = edit_columns = ["title", "contact", "due_date", "done", "assigned_user"]
    search_columns = ["title", "due_date", "done"]
    add_form_query_rel_fields = edit_form_query_rel_fields = {"contact": STAFF_SCOPE}


def register(appbuilder):
    appbuilder.add_view(ContactView, "Contacts", icon="fa-address-book", category="Contacts")
    appbuilder.add_view(TodoView, "Todos", icon="fa-check-square", category="Contacts")
    appbuilder.add_view(PropertyView, "Properties", icon="fa-home", category="Properties")
    appbuilder.add_view(ListView, "Lists", icon="fa-list", category="Lists")
    for view in (ContactPropertyView, ContactMessageView, ListMemberView, PropertyContactView):
        appbuilder.add_view_no_menu(view)
