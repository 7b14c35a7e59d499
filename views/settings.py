"""Settings -> Integrations (Admin): integration credentials set on screen, stored encrypted,
never shown back."""
from flask import flash, g, redirect, request, url_for
from flask_appbuilder import BaseView, expose, has_access

from app import integration_secrets
from app.extensions import db


class IntegrationsView(BaseView):
    route_base = "/settings/integrations"
    default_view = "index"

    @expose("/")
    @has_access
    def index(self):
        secrets = [{"name": name, "label": label, "status": integration_secrets.describe(name)}
                   for name, label in integration_secrets.KNOWN.items()]
        return self.render_template("settings_integrations.html", secrets=secrets, title="Integrations")

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


def register(appbuilder):
    appbuilder.add_view(IntegrationsView, "Integrations", icon="fa-key", category="Settings", category_icon="fa-cog")
