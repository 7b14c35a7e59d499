"""Roles, login auditing and throttling, staff scoping, and the guards in front of model views.
What every request and response passes through (proxies, headers, redirects) is in app/web.py."""

from flask import abort, current_app, g, has_request_context, request
from flask_appbuilder.models.filters import BaseFilter
from flask_appbuilder.models.sqla.interface import SQLAInterface
from flask_appbuilder.security.api import SecurityApi
from flask_appbuilder.security.sqla.manager import SecurityManager
from flask_appbuilder.security.sqla.models import User, assoc_permissionview_role
from flask_limiter.util import get_remote_address
from flask_wtf.csrf import CSRFProtect
from limits import parse
from sqlalchemy import false, inspect
from werkzeug.utils import import_string

from app import audit, sessions
from app.contacts import ContactError
from app.extensions import appbuilder, db
from app.models import Contact, ContactProperty, Property
from app.users import check_password

# Every POST needs a CSRF token (FAB exempts its JWT-only APIs; signed webhooks exempt
# themselves). Without it FAB would also allow deletes and actions by plain GET links.
csrf = CSRFProtect()

# Roles are code: `crm init` writes them to the database; FAB checks them from here.
# Patterns are regular expressions matched from the start; "$" anchors the end.
_MARKETER_VIEWS = ("(PropertyView|ListView|ListMemberView|CampaignView|CampaignRecipientView"
                   "|CampaignVariantView|CampaignStatusApi|MessageView|ImportView|OptOutView|PossibleOptOutView|OptOutApi|InboxView"
                   "|TodoView|HomeView|ConversationView|SavedReplyView"
                   "|PropertyApi|ListApi|CampaignApi|MessageApi|CallApi|MediaView|ImportApi|ConversationApi|InboxApi"
                   "|SearchView|SearchApi|ExportView|ExportApi"
                   "|" + "|".join(f"{v}View" for v in ("Estimate", "Invoice", "Payment", "Job", "UnscheduledJob",
                   "OpenEstimate", "PastDueInvoice", "MonthPayment", "LastMonthPayment", "ContactEstimate",
                   "ContactInvoice", "ContactPayment", "ContactJob")) + "|EstimateApi|InvoiceApi|PaymentApi|JobApi)$")
_STAFF_VIEWS = "(ContactView|MessageView|InboxView|TodoView|HomeView|ConversationView|ContactApi|MessageApi)$"
_MENUS = ("(Contacts|Properties|Lists|Campaigns|Messages|Imports|Opt-outs|Possible opt-outs|Inbox|Saved replies|Todos"
          "|Money|Jobs|Estimates|Invoices|Payments|Settings)$")
_STAFF_MENUS = "(Contacts|Properties|Messages|Inbox|Todos|Money|Jobs|Estimates|Invoices|Payments)$"
# Money (views/money.py): Staff read their contacts' estimates, invoices and payments, and edit their jobs.
_MONEY_VIEWS = ("(Estimate|Invoice|Payment|Job|UnscheduledJob|OpenEstimate|PastDueInvoice|MonthPayment"
                "|LastMonthPayment|ContactEstimate|ContactInvoice|ContactPayment|ContactJob)View$")
_SELF_SERVICE = [
    ["(UserDBModelView|UserInfoEditView|ResetMyPasswordView)$", "(can_userinfo|userinfoedit|can_this_form_get|can_this_form_post|resetmypassword)$"],
]

ROLES = {
    "Marketer": [
        ["ContactView$", "(can_list|can_show|can_add|can_edit|can_send_text|can_do_not_text|can_export|can_export_data|can_import|can_bulk|add_to_list|remove_from_list|assign|opt_out|export_csv|text_selected)$"],
        ["ContactApi$", "(can_get|can_info|can_post|can_put)$"],
        [_MARKETER_VIEWS, "(can_.*|add_to_list|remove_from_list|assign|opt_out|export_csv|text_selected|muldelete"
                          "|confirm_opt_out|dismiss_opt_out)$"],
        [_MENUS, "menu_access$"],
        *_SELF_SERVICE,
    ],
    "Staff": [
        ["ContactView$", "(can_list|can_show|can_edit|can_send_text|can_do_not_text)$"],
        ["PossibleOptOutView$", "can_list$"],
        ["ContactApi$", "(can_get|can_info|can_put)$"],
        ["(MessageView|InboxView|ConversationView|HomeView)$", "(can_list|can_show|can_send_text|can_thread|can_simulate_reply|can_file|can_index)$"],
        ["(ContactMessageView|ContactPropertyView|PropertyContactView)$", "can_list$"],
        ["PropertyView$", "(can_list|can_show)$"],  # the properties linked to their contacts (scope_clause)
        ["(MessageApi|CallApi|PropertyApi)$", "(can_get|can_info)$"],
        ["MediaView$", "can_get$"],
        ["ConversationApi$", "can_send_text$"],
        ["InboxApi$", "can_get$"],
        ["TodoView$", "(can_list|can_show|can_add|can_edit)$"],
        ["(SearchView|SearchApi)$", "(can_index|can_get)$"],  # their own contacts only, like every screen
        ["(ExportView|ExportApi)$", "(can_contacts|can_show|can_download|can_post|can_get)$"],
        [_MONEY_VIEWS, "(can_list|can_show)$"],
        ["JobView$", "can_edit$"],
        ["(Estimate|Invoice|Payment|Job)Api$", "(can_get|can_info)$"],
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
    return scope_of(user)


def visible_contact(contact_id):
    """The contact if the current user may see it (Staff: only their own), else 404."""
    contact = db.session.get(Contact, contact_id)
    scope = current_user_scope()
    if contact is None or (scope is not None and contact.assigned_user_id != scope):
        abort(404)
    return contact


def scope_of(user):
    """None for a role that sees every contact, else the user's id."""
    if any(role.name in UNSCOPED_ROLES for role in user.roles):
        return None
    return user.id


def user_scope(user_id):
    """scope_of() for a user id (jobs act for the user who asked); None for no user (the system)."""
    if user_id is None:
        return None

    user = db.session.get(User, user_id)
    return -1 if user is None else scope_of(user)


def scope_clause(model, user_id):
    """The one rule of staff scoping, as a WHERE clause: the rows of `model` that a user limited
    to user_id may see. Contacts assigned to them; rows that hang off a contact (messages,
    todos, recipients, list memberships, property links) through it; properties one of their
    contacts is linked to; of the users, themselves. Anything else is business-wide: nothing."""
    mine = Contact.assigned_user_id == user_id
    if model is Contact:
        return mine
    if model is Property:
        return Property.contacts.any(ContactProperty.contact.has(mine))
    if model is User:
        return User.id == user_id
    contact = getattr(model, "contact", None)
    if contact is not None and getattr(contact.property, "mapper", None) is Contact.__mapper__:
        return contact.has(mine)
    return false()


class AssignedToCurrentUser(BaseFilter):
    """Base filter that limits Staff to their rows of the view's model (scope_clause)."""

    name = "Assigned to me"
    arg_name = "assigned"

    def apply(self, query, value):
        user_id = current_user_scope()
        if user_id is None:
            return query
        return query.filter(scope_clause(self.model, user_id))


class ScopedInterface(SQLAInterface):
    """A datamodel whose every query (lists, counts, rows by id, and the option lists of the
    related-field pickers, search forms and REST _info, which FAB builds from related
    interfaces of the same class) holds only the rows the current user may see."""

    def apply_filters(self, query, filters):
        query = super().apply_filters(query, filters)
        user_id = current_user_scope() if has_request_context() else None
        return query if user_id is None else query.filter(scope_clause(self.obj, user_id))


def check_assignment(contact, user_id):
    """Staff cannot change who a contact is assigned to: their contact stays theirs (the form,
    the REST API and the bulk action all ask here). user_id is the acting user's scope; None
    (Admin, Marketer, the system) may assign anyone."""
    if user_id is None:
        return
    user = inspect(contact).attrs.assigned_user
    if user.history.has_changes():  # set through the relationship (the form, the API): flushed later
        assigned = user.value.id if user.value is not None else None
    else:
        assigned = contact.assigned_user_id
    if assigned != user_id:
        raise ContactError({"assigned_user": ASSIGN_REFUSED})


ASSIGN_REFUSED = "Only an Admin or a Marketer can change who a contact is assigned to."


class CrmSecurityManager(SecurityManager):
    # FAB's "User's Statistics" chart loads Google's chart library from gstatic.com, which the
    # Content-Security-Policy refuses (and which would hand an admin page to a third party).
    userstatschartview = None

    def auth_user_db(self, username, password):
        user = super().auth_user_db(username, password)
        if user is None:  # counted, not one row each: a guessing run cannot flood the audit log
            audit.count_rejection("login_failed", request.remote_addr, subject=str(username or ""))
            count_account_failure(self.limiter, username)
        else:
            with audit.acting_as(user.id, user.username):
                audit.record_now("login", object_type="ab_user", object_id=user.id)
        return user

    def add_user(self, username, first_name, last_name, email, role=None, password="", hashed_password="",
                 **kwargs):
        if not hashed_password:
            check_password(password, username)
        return super().add_user(username, first_name, last_name, email, role, password, hashed_password, **kwargs)

    def reset_password(self, userid, password):
        """Every password change (own, by an admin, by the CLI) passes the policy; the user's
        other sessions and tokens end with it (app/sessions.py)."""
        user = self.get_user_by_id(userid)
        check_password(password, user.username if user else "")
        super().reset_password(userid, password)

    @property
    def is_auth_limited(self):
        return False  # FAB's own limit counts every attempt; register_views sets ours instead

    def register_views(self):
        """Throttle the form login and the JWT login alike, counting failed attempts only:
        after AUTH_RATE_LIMIT failures from one address for one account, that address's
        attempts at that account are refused until the window passes; after
        AUTH_ACCOUNT_CEILING failures of one account from all addresses together, each
        address gets only AUTH_ACCOUNT_SLOW_LIMIT attempts at it, so a guessing run spread
        over many addresses is slowed while the owner still gets attempts from theirs. A user
        who signs in successfully many times a day is never locked out."""
        for attribute, path in current_app.config["SECURITY_VIEWS"].items():
            setattr(self, attribute, import_string(path))  # the password policy's screens (views/security.py)
        super().register_views()
        if not current_app.config["AUTH_RATE_LIMITED"]:
            return

        limit = self.limiter.limit(self.auth_rate_limit, methods=["POST"], deduct_when=_login_failed)
        slow = self.limiter.limit(lambda: current_app.config["AUTH_ACCOUNT_SLOW_LIMIT"], methods=["POST"],
                                  deduct_when=_login_failed, exempt_when=account_below_ceiling,
                                  key_func=lambda: login_throttle_key() + "|slow")
        # The form login, the JWT login, and the password change (it checks the current password).
        blueprints = [self.auth_view.blueprint] + [view.blueprint for view in self.appbuilder.baseviews if
                                                   isinstance(view, (SecurityApi, self.resetmypasswordview))]
        for blueprint in blueprints:
            limit(blueprint)
            slow(blueprint)

    def exist_permission_on_roles(self, view_name, permission_name, role_ids):
        """One query per request for all of the roles' permissions instead of one per check
        (a page's menu makes forty checks)."""
        if not has_request_context():
            return super().exist_permission_on_roles(view_name, permission_name, role_ids)
        key = tuple(sorted(role_ids))
        if not hasattr(request, "role_permissions"):
            request.role_permissions = {}
        cache = request.role_permissions
        if key not in cache:
            pv, perm, view = self.permissionview_model, self.permission_model, self.viewmenu_model
            rows = (self.session.query(view.name, perm.name).select_from(pv)
                    .join(assoc_permissionview_role, pv.id == assoc_permissionview_role.c.permission_view_id)
                    .join(perm, pv.permission_id == perm.id).join(view, pv.view_menu_id == view.id)
                    .filter(assoc_permissionview_role.c.role_id.in_(key)).all())
            cache[key] = {tuple(row) for row in rows}
        return (view_name, permission_name) in cache[key]

    def create_jwt_manager(self, app):
        jwt_manager = super().create_jwt_manager(app)
        sessions.install_jwt(jwt_manager)
        return jwt_manager

    def on_user_logout(self, user):
        if getattr(user, "id", None) is not None:
            sessions.end_sessions(user.id)  # a copy of the cookie (or a token) stops working too
        with audit.acting_as(getattr(user, "id", None), getattr(user, "username", "anonymous")):
            audit.record_now("logout", object_type="ab_user", object_id=getattr(user, "id", None))


def _login_failed(response):
    """A login answer that did not sign anyone in (the form redirects to the index on success)."""
    if response.status_code == 302:
        return "/login" in response.headers.get("Location", "")
    return response.status_code != 200 or not response.is_json


def login_account():
    """The account name a login names (the form's or the JWT login's), as the throttle keys it."""
    body = request.get_json(silent=True) if request.is_json else None  # the JWT login posts JSON
    username = request.form.get("username") or (body.get("username") if isinstance(body, dict) else "")
    return str(username or "").strip().lower()[:100]


def login_throttle_key():
    """Throttle logins per client address (the real one behind TRUSTED_PROXIES) and account name:
    guessing one account's password is stopped without locking everyone behind the same office
    address out, or the account's owner out from another address."""
    return f"{get_remote_address()}|{login_account()}"


def _account_ceiling():
    return parse(current_app.config["AUTH_ACCOUNT_CEILING"])


def count_account_failure(limiter, username):
    limiter.limiter.hit(_account_ceiling(), "login-account", str(username or "").strip().lower()[:100])


def account_below_ceiling():
    """True while the account has had fewer failed logins, from all addresses together, than
    AUTH_ACCOUNT_CEILING; above it every address gets the slower AUTH_ACCOUNT_SLOW_LIMIT."""
    return appbuilder.sm.limiter.limiter.test(_account_ceiling(), "login-account", login_account())


def guard_views(app, appbuilder):
    """Close three gaps in FAB's model views before they run: actions fetch their rows without
    the view's base filters (Staff could act on any contact by id) and an unknown action name
    is a 500; a malformed composite key is a 500; the file-column download route (unused
    here) is a 500 for any name. Each answers 404 instead."""
    views = {view.endpoint: view for view in appbuilder.baseviews}

    @app.before_request
    def _refuse_nul():
        """PostgreSQL text cannot hold NUL; refuse it in any field instead of failing later."""
        if request.path.startswith("/webhooks/"):
            return  # signed bodies: their handler reads them, and never more than WEBHOOK_MAX_BYTES
        values = [*request.args.values(), *(request.form.values() if request.form else ())]
        raw_json = request.path.startswith("/api/") and request.is_json and request.get_data()
        if any("\x00" in value for value in values) or (raw_json and (b"\\u0000" in raw_json or b"\x00" in raw_json)):
            abort(400, description="Text may not contain NUL (\\x00) characters; remove them and try again.")

    @app.before_request
    def _guard():
        view = views.get(request.blueprint)
        if view is None or not hasattr(view, "datamodel") or not request.endpoint:
            return None
        method = request.endpoint.rpartition(".")[2]
        if method in ("action", "action_post") and hasattr(view, "actions"):
            return _guard_action(appbuilder, view, method)
        if not _allowed(appbuilder, view, method):
            return None  # FAB refuses it the usual way
        if "pk" in (request.view_args or {}):
            # Every <pk> route of a model view (FAB's and our own) names a row the user may see.
            pk = _parse_pk(view, request.view_args["pk"])
            if pk is None or view.datamodel.get(pk, view._base_filters) is None:
                abort(404)
        if method == "download":
            abort(404)
        return None


def _allowed(appbuilder, view, method):
    func = getattr(view, method, None)
    if func is None or not hasattr(func, "_permission_name"):
        return True
    name = view.get_method_permission(method)
    permission = name if name.startswith("can_") else f"can_{name}"
    return permission in view.base_permissions and appbuilder.sm.has_access(permission, view.class_permission_name)


def _parse_pk(view, raw):
    """The primary key in a URL or form, or None when it cannot be one."""
    if not view.datamodel.is_pk_composite():
        if isinstance(raw, str) and _int_pk(view) and not raw.lstrip("-").isdigit():
            return None
        return raw
    try:
        pk = view._deserialize_pk_if_composite(raw)
    except (TypeError, ValueError):
        return None
    return pk if isinstance(pk, list) and len(pk) == len(view.datamodel.get_pk_name()) else None


def _int_pk(view):
    column = view.datamodel.obj.__table__.primary_key.columns.values()[0]
    return column.type.python_type is int


def _guard_action(appbuilder, view, method):
    if method == "action":
        name, pks = request.view_args["name"], [request.view_args["pk"]]
    else:
        name, pks = request.form.get("action", ""), request.form.getlist("rowid")
    if name not in view.actions:
        abort(404)
    if not appbuilder.sm.has_access(view.get_action_permission_name(name), view.class_permission_name):
        return  # FAB refuses it the usual way
    for raw in pks:
        pk = _parse_pk(view, raw)
        if pk is None or view.datamodel.get(view._deserialize_pk_if_composite(pk), view._base_filters) is None:
            abort(404)

    audit.record_now("action", object_type=view.datamodel.obj.__tablename__,
                     changes={"action": name, "count": len(pks), "ids": pks[:1000]})
