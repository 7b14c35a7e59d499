"""The Inbox (folders, Done, snooze, assign, the list's auto-refresh), the unread count on its menu
item, and the saved replies screen."""
from flask import abort, current_app, flash, g, redirect, request, url_for
from flask_appbuilder import BaseView, expose, has_access
from flask_appbuilder.api import BaseApi
from flask_appbuilder.security.decorators import permission_name, protect
from flask_login import current_user
from flask_wtf.csrf import CSRFError, validate_csrf
from wtforms import ValidationError

from app import inbox
from app.contacts import ContactError
from app.inbox_models import SavedReply
from app.saved_replies import check_reply
from app.security import ScopedInterface
from app.texts import TemplateError
from views.display import ModelView


def check_csrf():
    try:
        validate_csrf(request.form.get("csrf_token"))
    except (ValidationError, CSRFError):
        abort(400, "The form expired; reload the page and try again.")


def _back():
    """Where a filing form came from (the Inbox or the conversation), else the Inbox."""
    return redirect(request.form.get("next") or url_for("InboxView.list"))


class InboxView(BaseView):
    route_base = "/inbox"
    default_view = "list"

    def _page(self):
        assigned = request.args.get("assigned", "")
        if assigned not in ("", "none") and not assigned.isdigit():
            assigned = ""
        return inbox.inbox(g.user.id, request.args.get("folder", "open"), assigned)

    @expose("/")
    @has_access
    def list(self):
        return self.render_template("inbox.html", title="Inbox", **self._page())

    @expose("/rows")
    @has_access
    @permission_name("list")
    def rows(self):
        """The list alone, for the page's auto-refresh (what is being typed elsewhere stays)."""
        return self.render_template("_inbox_rows.html", **self._page())

    def _file(self, change, done_message):
        """Run one filing change (Done, snooze, back to the Inbox) posted from a form, then go back."""
        check_csrf()
        try:
            change()
        except inbox.InboxError as exc:
            flash(f"Not snoozed: {exc}", "danger")
        else:
            flash(done_message, "success")
        return _back()

    @expose("/done/<int:contact_id>", methods=["POST"])
    @has_access
    @permission_name("file")
    def done(self, contact_id):
        return self._file(lambda: inbox.mark_done(contact_id, g.user.id),
                          "Done: the conversation comes back when they text or call again.")

    @expose("/reopen/<int:contact_id>", methods=["POST"])
    @has_access
    @permission_name("file")
    def reopen(self, contact_id):
        return self._file(lambda: inbox.move_to_inbox(contact_id), "Moved back to the Inbox.")

    @expose("/snooze/<int:contact_id>", methods=["POST"])
    @has_access
    @permission_name("file")
    def snooze(self, contact_id):
        return self._file(lambda: inbox.snooze(contact_id, request.form.get("until"), g.user.id),
                          "Snoozed: it comes back at the time picked, or sooner if they text or call.")

    @expose("/assign/<int:contact_id>", methods=["POST"])
    @has_access
    def assign(self, contact_id):
        check_csrf()
        user = request.form.get("user", "")
        try:
            contact = inbox.assign(contact_id, int(user) if user.isdigit() else None, g.user.id)
        except (inbox.InboxError, ContactError) as exc:
            flash(f"Not assigned: {exc}", "danger")
        else:
            who = contact.assigned_user.username if contact.assigned_user else "nobody"
            flash(f"{contact} is assigned to {who}.", "success")
        return _back()


class SavedReplyView(ModelView):
    datamodel = ScopedInterface(SavedReply)
    list_title = "Saved replies"
    add_title = "New saved reply"
    edit_title = "Edit saved reply"
    show_title = "Saved reply"
    base_order = ("title", "asc")
    list_columns = ["title", "body"]
    add_columns = edit_columns = show_columns = ["title", "body"]
    description_columns = {"body": "Merge fields are filled for each contact: {first_name}, {last_name}, {city}, "
                                   "{address}, {year_built}, {years_owned}; a fallback after a bar: "
                                   "{first_name|there}."}

    validators_columns = {"body": [lambda form, field: _valid_reply(field.data)]}

    def pre_add(self, item):
        item.created_by_id = current_user.id


def _valid_reply(body):
    """The saved reply rule (app/saved_replies.py) as the form's error on the body field."""
    try:
        check_reply(body)
    except TemplateError as exc:
        raise ValidationError(str(exc)) from exc


class InboxApi(BaseApi):
    resource_name = "inbox"

    @expose("/", methods=["GET"])
    @protect(allow_browser_login=True)
    @permission_name("get")
    def folder(self):
        """GET /api/v1/inbox/?folder=open|unread|replied|snoozed|done|opted_out: the caller's
        conversations in that folder, latest first, and the count of every folder."""
        page = inbox.inbox(g.user.id, request.args.get("folder", "open"))
        return self.response(200, folder=page["folder"], counts=page["counts"], conversations=[{
            "contact_id": row["contact"].id, "name": str(row["contact"]), "phone": row["contact"].phone,
            "last_in_at": row["last_in_at"].isoformat(), "preview": row["preview"], "unread": row["unread"],
            "replied": row["replied"]} for row in page["conversations"]])


def unread_badge():
    """The Inbox menu item's count for the signed-in user (templates call it; None when signed out)."""
    if not getattr(current_user, "is_authenticated", False):
        return None
    return inbox.unread_count(current_user.id)


def register(appbuilder):
    current_app.jinja_env.globals["inbox_unread"] = unread_badge
    appbuilder.add_view(InboxView, "Inbox", icon="fa-inbox", category="Inbox")
    appbuilder.add_view(SavedReplyView, "Saved replies", icon="fa-bookmark", category="Messages")
    appbuilder.add_api(InboxApi)
