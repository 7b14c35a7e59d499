"""Roles, login auditing, staff scoping and security headers."""
from flask import g
from flask_appbuilder.models.filters import BaseFilter
from flask_appbuilder.security.sqla.manager import SecurityManager

# Roles are code: `crm init` writes them to the database; FAB checks them from here.
# Patterns are regular expressions matched from the start; "$" anchors the end.
_MARKETER_VIEWS = ("(PropertyView|ListView|ListMemberView|CampaignView|CampaignRecipientView"
                   "|MessageView|ImportView|OptOutView|InboxView|TodoView|HomeView|ConversationView"
                   "|PropertyApi|ListApi|CampaignApi|MessageApi|ImportApi)$")
_STAFF_VIEWS = "(ContactView|MessageView|InboxView|TodoView|HomeView|ConversationView|ContactApi|MessageApi)$"
_MENUS = "(Contacts|Properties|Lists|Campaigns|Messages|Imports|Opt-outs|Inbox|Todos)$"
_STAFF_MENUS = "(Contacts|Messages|Inbox|Todos)$"
_SELF_SERVICE = [
    ["(UserDBModelView|UserInfoEditView|ResetMyPasswordView)$", "(can_userinfo|userinfoedit|can_this_form_get|can_this_form_post|resetmypassword)$"],
]

ROLES = {
    "Marketer": [
        ["ContactView$", "(can_list|can_show|can_add|can_edit|can_send_text|can_export|can_import|add_to_list|remove_from_list|assign|opt_out|export_csv|text_selected)$"],
        ["ContactApi$", "(can_get|can_info|can_post|can_put)$"],
        [_MARKETER_VIEWS, "(can_.*|add_to_list|remove_from_list|assign|opt_out|export_csv|text_selected|muldelete)$"],
        [_MENUS, "menu_access$"],
        *_SELF_SERVICE,
    ],
    "Staff": [
        ["ContactView$", "(can_list|can_show|can_edit|can_send_text)$"],
        ["ContactApi$", "(can_get|can_info|can_put)$"],
        ["(MessageView|InboxView|ConversationView|HomeView)$", "(can_list|can_show|can_send_text|can_thread|can_simulate_reply|can_index)$"],
        ["MessageApi$", "(can_get|can_info)$"],
        ["TodoView$", "(can_list|can_show|can_add|can_edit)$"],
        [_STAFF_MENUS, "menu_access$"],
        *_SELF_SERVICE,
    ],
}
# Roles that see every contact; everyone else sees only contacts assigned to them.
UNSCOPED_ROLES = {"Admin", "Marketer"}


def current_user_scope():
    """None when the user sees every contact, else the user id they are limited to."""
    user = getattr(g, "user", None)
    if user is None or not getattr(user, "is_authenticated", False):
        return -1
    if any(role.name in UNSCOPED_ROLES for role in user.roles):
        return None
    return user.id


class AssignedToCurrentUser(BaseFilter):
    """Base filter that limits Staff to rows whose contact is assigned to them.

    column_name is the path to the assigned user id: "assigned_user_id" on contacts,
    "contact.assigned_user_id" on tables that hang off a contact.
    """

    name = "Assigned to me"
    arg_name = "assigned"

    def apply(self, query, value):
        user_id = current_user_scope()
        if user_id is None:
            return query
        from app.models import Contact

        if self.column_name == "assigned_user_id":
            return query.filter(self.model.assigned_user_id == user_id)
        return query.filter(self.model.contact.has(Contact.assigned_user_id == user_id))


class CrmSecurityManager(SecurityManager):
    def auth_user_db(self, username, password):
        from app import audit

        user = super().auth_user_db(username, password)
        if user is None:
            audit.record_now("login_failed", object_type="ab_user", detail=f"username={str(username)[:100]!r}")
        else:
            audit.record_now("login", object_type="ab_user", object_id=user.id)
        return user

    def on_user_logout(self, user):
        from app import audit

        audit.record_now("logout", object_type="ab_user", object_id=getattr(user, "id", None))


def login_throttle_key():
    """Throttle logins per client address and account name: guessing one account's password
    is stopped without locking everyone behind the same office address out."""
    from flask import request
    from flask_limiter.util import get_remote_address

    username = (request.form.get("username") or "").strip().lower()[:100]
    return f"{get_remote_address()}|{username}"


SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}


def install_headers(app):
    @app.after_request
    def _headers(response):
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        if app.config.get("PRODUCTION"):
            response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
        return response
