"""Campaigns: settings, messages, preview, plan, start/pause/cancel, A/B results and charts."""

from flask import Response, current_app, flash, redirect, request, stream_with_context, url_for
from flask_appbuilder import ModelView, expose, has_access
from flask_appbuilder.api import BaseApi, protect
from flask_appbuilder.api import expose as api_expose
from flask_appbuilder.models.sqla.interface import SQLAInterface
from wtforms import BooleanField, IntegerField, StringField, TimeField
from wtforms.validators import DataRequired, Optional, ValidationError

from app import analytics, campaigns, winners
from app.campaigns import CampaignError, NoSuchCampaign
from app.extensions import db
from app.models import DEFAULT_WINDOW, Campaign, CampaignRecipient, CampaignVariant
from app.texts import TemplateError, validate_template

FILTER_FIELDS = {
    "property_types": StringField("Property types", [Optional()], description="Comma separated, e.g. SFR, MFR"),
    "cities": StringField("Cities", [Optional()], description="Comma separated, e.g. Quincy, Braintree"),
    "zips": StringField("ZIP codes", [Optional()], description="Comma separated, e.g. 02169, 02184"),
    "year_built_min": IntegerField("Built in or after", [Optional()]),
    "year_built_max": IntegerField("Built in or before", [Optional()]),
    "not_replied": BooleanField("Only people who never replied"),
}
SETTING_FIELDS = {
    "window_start": TimeField("Window start", [DataRequired()], default=DEFAULT_WINDOW[0]),
    "window_end": TimeField("Window end", [DataRequired()], default=DEFAULT_WINDOW[1]),
    "sending_number": StringField("Sending number", [DataRequired()],
                                  default=lambda: current_app.config["OPENPHONE_FROM"]),
    "include_previously_texted": BooleanField("Include people texted before"),
    "include_existing_customers": BooleanField("Include existing customers (QuickBooks)"),
    "append_opt_out_line": BooleanField("Append \"Reply STOP to opt out.\"", default=True),
}


def _template_is_valid(form, field):
    try:
        validate_template(field.data)
    except TemplateError as exc:
        raise ValidationError(str(exc)) from exc


class CampaignVariantView(ModelView):
    datamodel = SQLAInterface(CampaignVariant)
    list_columns = ["label", "template"]
    add_columns = edit_columns = ["campaign", "label", "template"]
    validators_columns = {"template": [_template_is_valid]}
    description_columns = {"template": "Tokens: {first_name}, {last_name}, {city}, {address}, {year_built}, "
                                       "{years_owned}; fallbacks like {first_name|there}."}

    def pre_add(self, item):
        _refuse_unless(campaigns.check_variant_edit, item)

    def pre_update(self, item):
        _refuse_unless(campaigns.check_variant_edit, item)

    def pre_delete(self, item):
        _refuse_unless(campaigns.check_variant_edit, item)


def _refuse_unless(check, item):
    """Run an app/campaigns rule; when it refuses, drop what the form already wrote into the session
    (Flask-AppBuilder shows the rule's message)."""
    try:
        check(item)
    except CampaignError:
        db.session.rollback()
        raise


PLANNED = "Fixed once scheduled (Unschedule to change it)."


class CampaignRecipientView(ModelView):
    datamodel = SQLAInterface(CampaignRecipient)
    base_permissions = ["can_list"]
    base_order = ("position", "asc")
    list_columns = ["position", "phone", "contact", "state", "variant", "status", "exclusion_reason", "sent_at",
                    "replied_at", "opted_out_at"]
    search_columns = ["status", "exclusion_reason", "phone", "state"]


class CampaignView(ModelView):
    datamodel = SQLAInterface(Campaign)
    base_order = ("created_at", "desc")
    list_columns = ["name", "status", "sending_number", "daily_limit", "start_date", "created_at"]
    search_columns = ["name", "status", "sending_number", "created_at"]
    add_columns = edit_columns = ["name", "lists", "sending_number", "daily_limit", "window_days", "window_start",
                                  "window_end", "start_date", "frequency_cap_days", "include_previously_texted",
                                  "include_existing_customers", "append_opt_out_line", *FILTER_FIELDS]
    add_form_extra_fields = edit_form_extra_fields = {**SETTING_FIELDS, **FILTER_FIELDS}
    description_columns = {"window_days": "Days to send, Monday=0: 0,1,2,3,4 is Monday to Friday",
                           "window_start": "Business time (CAMPAIGN_TIMEZONE); each recipient's legal hours apply too",
                           "lists": f"The audience. {PLANNED}",
                           "frequency_cap_days": f"A phone gets at most one campaign text in this many days. {PLANNED}",
                           "include_previously_texted": f"Off: people texted before are skipped. {PLANNED}",
                           "include_existing_customers": "Off: contacts with a QuickBooks customer are skipped. "
                                                         f"{PLANNED}"}
    related_views = [CampaignVariantView, CampaignRecipientView]
    show_template = "campaign_show.html"

    def prefill_form(self, form, pk):
        filters = self.datamodel.get(pk).filters or {}
        for name in FILTER_FIELDS:
            value = filters.get(name)
            getattr(form, name).data = ", ".join(value) if isinstance(value, list) else value

    def pre_add(self, item):
        item.filters = _filters_from(item)
        from flask import g

        item.created_by_id = g.user.id
        campaigns.add_draft_variant(item)

    def pre_update(self, item):
        item.filters = _filters_from(item)
        _refuse_unless(campaigns.check_campaign_edit, item)

    def pre_delete(self, item):
        _refuse_unless(campaigns.check_deletable, item)

    @expose("/edit/<pk>", methods=["GET", "POST"])
    @has_access
    def edit(self, pk):
        """The form says up front what its campaign's state allows (the rule refuses the rest)."""
        campaign = self.datamodel.get(pk)
        if request.method == "GET" and campaign is not None and campaign.status != "draft":
            flash(campaigns.edit_notice(campaign), "warning")
        return super().edit(pk)

    @expose("/show/<pk>", methods=["GET"])
    @has_access
    def show(self, pk):
        page = analytics.campaign_page(pk)
        if page is None:
            flash("No such campaign.", "danger")
            return redirect(url_for(".list"))
        return self.render_template(self.show_template, pk=pk, title=self.show_title, widgets=self._show(pk),
                                    related_views=self._related_views, **page)

    @expose("/transition/<int:pk>/<status>", methods=["POST"])
    @has_access
    def transition(self, pk, status):
        try:
            campaigns.change_status(pk, status)
            flash("Unscheduled: the campaign is a draft again and its plan was dropped." if status == "draft"
                  else f"Campaign is now {status}.", "success")
        except CampaignError as exc:
            db.session.rollback()
            flash(str(exc), "danger")
        return redirect(url_for(".show", pk=pk))

    @expose("/winner/<int:pk>/<int:variant_id>", methods=["GET", "POST"])
    @has_access
    def winner(self, pk, variant_id):
        """GET: the confirmation (numbers, p-value, warnings, who moves); POST: the move it showed."""
        try:
            if request.method == "POST":
                moved = winners.declare_winner(pk, variant_id, request.form.get("fingerprint", ""))
                flash(f"Winner declared: {moved} recipients not yet texted moved to it.", "success")
                return redirect(url_for(".show", pk=pk))
            preview = winners.winner_preview(pk, variant_id)
        except CampaignError as exc:
            db.session.rollback()
            flash(str(exc), "danger")
            changed = request.method == "POST" and "changed since" in str(exc)
            return redirect(url_for(".winner", pk=pk, variant_id=variant_id) if changed else url_for(".show", pk=pk))
        return self.render_template("campaign_winner.html", title="Declare winner", **preview)

    @expose("/undo_winner/<int:pk>", methods=["POST"])
    @has_access
    def undo_winner(self, pk):
        try:
            restored = winners.undo_winner(pk)
            flash(f"Winner undone: {restored} recipients not yet texted are back on their planned variant.", "success")
        except CampaignError as exc:
            db.session.rollback()
            flash(str(exc), "danger")
        return redirect(url_for(".show", pk=pk))

    @expose("/clone/<int:pk>", methods=["POST"])
    @has_access
    def clone(self, pk):
        from flask import g

        copy = campaigns.clone_campaign(pk, user_id=g.user.id)
        flash("Cloned as a draft: edit its messages, then schedule it.", "success")
        return redirect(url_for(".show", pk=copy.id))

    @expose("/recipients_csv/<int:pk>", methods=["GET"])
    @has_access
    def recipients_csv(self, pk):
        return Response(stream_with_context(analytics.recipients_csv(pk)), mimetype="text/csv",
                        headers={"Content-Disposition": f"attachment; filename=campaign-{pk}-recipients.csv"})


def _split(value):
    return [part.strip() for part in (value or "").split(",") if part.strip()]


def _filters_from(item):
    filters = {}
    for name in ("property_types", "cities", "zips"):
        values = _split(getattr(item, name, None))
        if values:
            filters[name] = [v.upper() for v in values] if name == "property_types" else values
    for name in ("year_built_min", "year_built_max", "not_replied"):
        if getattr(item, name, None):
            filters[name] = getattr(item, name)
    return filters


class CampaignStatusApi(BaseApi):
    """POST /api/v1/campaign_status/<id> {"status": "running"}: the same rules as the buttons."""

    resource_name = "campaign_status"

    @api_expose("/<int:pk>", methods=["POST"])
    @protect()
    def post(self, pk):
        """Change a campaign's status.
        ---
        post:
          responses:
            200:
              description: the campaign's new status
        """
        status = (request.get_json(silent=True) or {}).get("status", "")
        try:
            campaign = campaigns.change_status(pk, status)
        except NoSuchCampaign:
            db.session.rollback()
            return self.response_404()
        except CampaignError as exc:
            db.session.rollback()
            return self.response(409, message=str(exc))
        return self.response(200, id=campaign.id, status=campaign.status)


def register(appbuilder):
    appbuilder.add_view(CampaignView, "Campaigns", icon="fa-paper-plane", category="Campaigns")
    appbuilder.add_view_no_menu(CampaignVariantView)
    appbuilder.add_view_no_menu(CampaignRecipientView)
    appbuilder.add_api(CampaignStatusApi)
