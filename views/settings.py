"""Settings -> Integrations (Admin): integration credentials set on screen, stored encrypted,
never shown back."""
from flask import flash, g, redirect, request, url_for
from flask_appbuilder import BaseView, expose, has_access

from app import integration_secrets, quickbooks
from app.extensions import db
from app.web import allow_offsite_redirect
from views import openphone_history


class IntegrationsView(BaseView):
    route_base = "/settings/integrations"
    default_view = "index"

    @expose("/")
    @has_access
    def index(self):
        secrets = [{"name": name, "label": label, "status": integration_secrets.describe(name)}
                   for name, label in integration_secrets.KNOWN.items()]
        return self.render_template("settings_integrations.html", secrets=secrets, title="Integrations",
                                    qb=quickbooks.connection_details(), qb_sandbox=quickbooks.settings()["sandbox"],
                                    **openphone_history.screen())

    @expose("/quickbooks/connect")
    @has_access
    def connect_quickbooks(self):
        """Off to Intuit's consent page, with a state this user must bring back. A link, not a
        form: the page's CSP (form-action 'self') would stop a form's redirect to Intuit."""
        callback = url_for(".quickbooks_callback", _external=True)
        return redirect(allow_offsite_redirect(quickbooks.authorize_url(user_id=g.user.id, redirect_uri=callback)))

    @expose("/quickbooks/callback")
    @has_access
    def quickbooks_callback(self):
        """Intuit sends the person back here with code, state and realmId (or error)."""
        if request.args.get("error"):
            flash(f"QuickBooks was not connected: {request.args['error']}.", "warning")
            return redirect(url_for(".index"))
        try:
            quickbooks.complete_authorization(request.args.get("code"), request.args.get("state"),
                                              request.args.get("realmId"), user_id=g.user.id)
        except quickbooks.QuickBooksError as exc:
            db.session.rollback()
            flash(f"QuickBooks was not connected: {exc}", "danger")
            return redirect(url_for(".index"))
        flash(f"Connected to QuickBooks company {quickbooks.realm_id()}.", "success")
        return redirect(url_for(".index"))

    @expose("/quickbooks/disconnect", methods=["POST"])
    @has_access
    def disconnect_quickbooks(self):
        if quickbooks.connection_status() == quickbooks.NOT_CONNECTED:
            flash("QuickBooks is not connected.", "info")
        elif quickbooks.disconnect():
            flash("QuickBooks disconnected: the tokens are revoked at Intuit and deleted here.", "success")
        else:
            flash("QuickBooks disconnected here; Intuit did not confirm the revocation (remove the app under "
                  "QuickBooks -> Apps if it is still listed).", "warning")
        return redirect(url_for(".index"))

    @expose("/save", methods=["POST"])
    @has_access
    def save(self):
        name = request.form.get("name", "")
        if name not in integration_secrets.KNOWN:
            flash("Unknown setting.", "danger")
            return redirect(url_for(".index"))
        label = integration_secrets.KNOWN[name]
        value = "" if request.form.get("remove") else request.form.get("value", "").strip()
        if not value and not request.form.get("remove"):
            flash(f"Type the new {label}, or tick Remove.", "warning")
            return redirect(url_for(".index"))
        try:
            integration_secrets.set_secret(name, value, user_id=g.user.id)
        except integration_secrets.SecretRefused as exc:
            db.session.rollback()
            flash(str(exc), "danger")
            return redirect(url_for(".index"))
        db.session.commit()
        flash(f"{label} {'saved: ' + integration_secrets.describe(name) if value else 'removed'}.", "success")
        return redirect(url_for(".index"))


    # --- OpenPhone history and webhooks (views/openphone_history.py does the work) -------------

    @expose("/history/start", methods=["POST"])
    @has_access
    def start_history(self):
        return openphone_history.start(g.user.id)

    @expose("/history/progress")
    @has_access
    def history_progress(self):
        return openphone_history.progress_json()

    @expose("/webhooks/register", methods=["POST"])
    @has_access
    def register_webhooks(self):
        return openphone_history.register_missing(g.user.id)


def register(appbuilder):
    appbuilder.add_view(IntegrationsView, "Integrations", icon="fa-key", category="Settings", category_icon="fa-cog")
