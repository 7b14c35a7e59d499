"""Conversations (the thread page, its refresh, the send box), messages and failed webhook events."""
import logging

import httpx
from flask import current_app, flash, g, redirect, request, url_for
from flask_appbuilder import BaseView, expose, has_access
from flask_appbuilder.actions import action
from flask_appbuilder.api import BaseApi
from flask_appbuilder.models.sqla.filters import FilterEqual
from flask_appbuilder.security.decorators import permission_name, protect
from flask_wtf.csrf import generate_csrf

from app import conversations, events
from app.messages import TextError
from app.models import Message, WebhookEvent
from app.opt_outs import OptedOut
from app.security import ScopedInterface
from views import inbox
from views.contacts import CONTACT_SCOPE
from views.display import ModelView
from views.inbox import check_csrf

log = logging.getLogger(__name__)


class ConversationView(BaseView):
    route_base = "/conversations"

    @expose("/thread/<int:contact_id>")
    @has_access
    def thread(self, contact_id):
        contact = conversations.open_conversation(contact_id, g.user.id)
        return self.render_template("conversation.html", contact=contact, title=f"Conversation with {contact}")

    @expose("/thread_part/<int:contact_id>")
    @has_access
    @permission_name("thread")
    def thread_part(self, contact_id):
        """The thread alone, for the page's auto-refresh (the send box keeps what is being typed)."""
        contact = conversations.open_conversation(contact_id, g.user.id)
        return self.render_template("_thread.html", convo=conversations.conversation(contact.id))

    @expose("/send_text/<int:contact_id>", methods=["POST"])
    @has_access
    def send_text(self, contact_id):
        check_csrf()
        try:
            conversations.send_text(contact_id, request.form.get("body"), g.user.id)
        except (OptedOut, TextError) as exc:
            flash(f"Not sent: {exc}", "danger")
        else:
            flash("Text queued.", "success")
        return redirect(request.form.get("next") or url_for("ContactView.show", pk=contact_id))

    @expose("/simulate_reply/<int:contact_id>", methods=["POST"])
    @has_access
    def simulate_reply(self, contact_id):
        check_csrf()
        try:
            conversations.simulate_reply(contact_id, request.form.get("body"))
            flash("The sandbox OpenPhone sent a reply; it appears here in a moment.", "success")
        except httpx.HTTPError as exc:
            flash(f"The sandbox OpenPhone is not answering ({exc}); is `crm run` running?", "danger")
        return redirect(request.form.get("next") or url_for("ContactView.show", pk=contact_id))


class MessageView(ModelView):
    datamodel = ScopedInterface(Message)
    base_permissions = ["can_list", "can_show"]
    base_filters = CONTACT_SCOPE
    base_order = ("created_at", "desc")
    list_columns = ["created_at", "contact", "direction", "kind", "body", "status", "to_phone", "error"]
    show_columns = ["created_at", "contact", "direction", "kind", "body", "status", "from_phone", "to_phone",
                    "provider_id", "error", "sending_started_at", "sent_at", "delivered_at", "campaign_recipient"]
    search_columns = ["direction", "kind", "status", "to_phone", "body", "created_at"]


class WebhookEventView(ModelView):
    datamodel = ScopedInterface(WebhookEvent)
    base_permissions = ["can_list", "can_show"]
    base_filters = [["status", FilterEqual, "failed"]]
    base_order = ("received_at", "desc")
    list_title = "Failed events"
    list_columns = ["received_at", "type", "provider_event_id", "attempts", "error"]
    show_columns = ["received_at", "type", "provider_event_id", "status", "attempts", "error", "body"]

    @action("retry", "Retry", "Process the selected events again?", "fa-refresh")
    def retry(self, items):
        items = items if isinstance(items, list) else [items]
        for event in items:
            events.retry_event(event.id)
        flash(f"{len(items)} event(s) queued for another try.", "success")
        return redirect(self.get_redirect())


class ConversationApi(BaseApi):
    resource_name = "conversation"

    @expose("/send_text", methods=["POST"])
    @protect(allow_browser_login=True)
    def send_text(self):
        """POST {"contact_id": 1, "body": "..."}: queue a one-off text (opt-outs are checked)."""
        payload = request.get_json(silent=True) if request.is_json else None
        if not isinstance(payload, dict) or not isinstance(payload.get("contact_id"), int):
            return self.response_400(message="Send JSON with contact_id (a number) and body.")
        try:
            message = conversations.send_text(payload["contact_id"], payload.get("body"), g.user.id)
        except OptedOut as exc:
            return self.response(409, message=str(exc))
        except TextError as exc:
            return self.response_400(message=str(exc))
        return self.response(202, id=message.id, status=message.status)


def register(appbuilder):
    current_app.jinja_env.globals["conversation"] = conversations.conversation
    current_app.jinja_env.globals.setdefault("csrf_token", generate_csrf)
    inbox.register(appbuilder)
    appbuilder.add_view(MessageView, "Messages", icon="fa-comments", category="Messages")
    appbuilder.add_view(WebhookEventView, "Failed events", icon="fa-exclamation-triangle", category="Messages")
    appbuilder.add_view_no_menu(ConversationView)
    appbuilder.add_api(ConversationApi)
