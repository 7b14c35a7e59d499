"""Campaigns: settings, messages, preview, plan, start/pause/cancel, A/B results and charts."""

from flask import Response, current_app, flash, redirect, request, stream_with_context, url_for
from flask_appbuilder import ModelView, expose, has_access
from flask_appbuilder.api import BaseApi, protect
from flask_appbuilder.api import expose as api_expose
from flask_appbuilder.models.sqla.interface import SQLAInterface
from sqlalchemy import select
from wtforms import BooleanField, IntegerField, StringField, TimeField
from wtforms.validators import DataRequired, Optional, ValidationError

from app import analytics, campaigns, winners
from app.campaigns import CampaignError
from app.extensions import db
from app.models import DEFAULT_WINDOW, Campaign, CampaignRecipient, CampaignVariant, Contact, ListMember
from app.texts import TemplateError, estimate_cost, render_template, segment_info, token_values, validate_template

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
        campaign = db.session.get(Campaign, pk)
        if request.method == "GET" and campaign is not None and campaign.status != "draft":
            flash(campaigns.edit_notice(campaign), "warning")
        return super().edit(pk)

    @expose("/show/<pk>", methods=["GET"])
    @has_access
    def show(self, pk):
        campaign = db.session.get(Campaign, pk, populate_existing=True)
        if campaign is None:
            flash("No such campaign.", "danger")
            return redirect(url_for(".list"))
        widgets = self._show(pk)
        # The plan only with the planned_at read above: a plan committed during this request
        # would otherwise show next to a "planning..." status and a disabled Start button.
        plan = campaigns.exclusion_counts(campaign.id) if campaign.planned_at else {}
        results = analytics.campaign_results(campaign.id)
        variants = results["variants"]
        return self.render_template(
            self.show_template, pk=pk, title=self.show_title, widgets=widgets, related_views=self._related_views,
            campaign=campaign, plan=plan, variants=variants, test=results,
            statuses=analytics.status_counts(campaign.id), days=analytics.texts_per_day(campaign.id),
            funnel=analytics.funnel(results), previews=_previews(campaign),
            reply_rows=[(f"Variant {v['label']}", v["replied"]) for v in variants],
            next_statuses=sorted(campaigns.TRANSITIONS.get(campaign.status, ()), key=campaigns.STATUS_ORDER.index),
            edit_notice=campaigns.edit_notice(campaign))

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


def _previews(campaign, limit=3):
    """Each variant rendered for a few real recipients (planned ones, else list members)."""
    contact_ids = db.session.scalars(select(CampaignRecipient.contact_id).where(
        CampaignRecipient.campaign_id == campaign.id, CampaignRecipient.status == "queued")
        .order_by(CampaignRecipient.position).limit(limit)).all()
    if not contact_ids and campaign.lists:
        contact_ids = db.session.scalars(select(ListMember.contact_id).where(
            ListMember.list_id.in_([lst.id for lst in campaign.lists])).limit(limit)).all()
    contacts = [db.session.get(Contact, cid) for cid in contact_ids if cid]
    audience = analytics.status_counts(campaign.id).get("queued", 0)
    previews = []
    for variant in campaign.variants:
        try:
            validate_template(variant.template)
        except TemplateError as exc:
            previews.append({"variant": variant, "error": str(exc), "samples": []})
            continue
        samples = []
        for contact in contacts or [None]:
            prop = contact.properties[0].property if contact is not None and contact.properties else None
            body = render_template(variant.template, token_values(contact, prop),
                                   opt_out_line=campaign.append_opt_out_line)
            samples.append({"contact": contact, "body": body, **segment_info(body)})
        per_text = max(s["segments"] for s in samples)
        share = (audience or 0) / max(1, len(campaign.variants))
        previews.append({"variant": variant, "samples": samples, "segments": per_text,
                         "cost": estimate_cost(per_text * share) if audience else None})
    return previews


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
        if db.session.get(Campaign, pk) is None:
            return self.response_404()
        status = (request.get_json(silent=True) or {}).get("status", "")
        try:
            campaign = campaigns.change_status(pk, status)
        except CampaignError as exc:
            db.session.rollback()
            return self.response(409, message=str(exc))
        return self.response(200, id=campaign.id, status=campaign.status)


def register(appbuilder):
    appbuilder.add_view(CampaignView, "Campaigns", icon="fa-paper-plane", category="Campaigns")
    appbuilder.add_view_no_menu(CampaignVariantView)
    appbuilder.add_view_no_menu(CampaignRecipientView)
    appbuilder.add_api(CampaignStatusApi)
