"""Campaigns: settings, messages, preview, plan, start/pause/cancel, A/B results and charts."""

from flask import Response, current_app, flash, g, jsonify, redirect, request, stream_with_context, url_for
from flask_appbuilder import expose, has_access
from flask_appbuilder.api import BaseApi, protect
from flask_appbuilder.api import expose as api_expose
from flask_appbuilder.models.sqla.interface import SQLAInterface
from wtforms.validators import ValidationError

from app import analytics, audit, campaign_settings, campaigns, display, lists, winners
from app.campaign_settings import CampaignInputError
from app.campaigns import CampaignError, NoSuchCampaign
from app.extensions import db
from app.models import Campaign, CampaignRecipient, CampaignVariant
from app.texts import TOKENS, TemplateError, validate_template
from views.display import ModelView

# The exclusions the plan records, in the words the page uses.
EXCLUSIONS = (("opted_out", "Opted out"), ("texted_before", "Texted before"),
              ("existing_customer", "Existing customer (QuickBooks)"), ("no_valid_phone", "No mobile phone"),
              ("outside_filters", "Outside the filters"), ("frequency_cap", "Texted by another campaign recently"))

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


def _act_then_show(pk, act, said):
    """A button on the campaign page: run the rule, flash what it did (said(result)) or why it
    refused, and go back to the campaign."""
    try:
        flash(said(act()), "success")
    except CampaignError as exc:
        db.session.rollback()
        flash(str(exc), "danger")
    return redirect(url_for(".show", pk=pk))


def _refuse_unless(check, item):
    """Run an app/campaigns rule; when it refuses, drop what the form already wrote into the session
    (Flask-AppBuilder shows the rule's message)."""
    try:
        check(item)
    except CampaignError:
        db.session.rollback()
        raise


class CampaignRecipientView(ModelView):
    datamodel = SQLAInterface(CampaignRecipient)
    list_title = "Recipients"
    base_permissions = ["can_list"]
    base_order = ("position", "asc")
    list_columns = ["position", "phone", "contact", "state", "variant", "status", "exclusion_reason", "sent_at",
                    "replied_at", "opted_out_at"]
    search_columns = ["status", "exclusion_reason", "phone", "state"]


class CampaignView(ModelView):
    datamodel = SQLAInterface(Campaign)
    base_order = ("created_at", "desc")
    list_title, show_title, add_title, edit_title = "Campaigns", "Campaign", "New campaign", "Edit campaign"
    list_columns = ["name", "status", "sending_number", "daily_limit", "start_date", "created_at"]
    search_columns = ["name", "status", "sending_number", "created_at"]
    show_columns = ["name", "status", "sending_number", "daily_limit", "start_date", "created_at", "started_at",
                    "finished_at"]
    add_columns = edit_columns = ["name"]
    label_columns = {"sending_number": "Sending number", "daily_limit": "Texts per day", "start_date": "Start date",
                     "created_at": "Created", "started_at": "Started", "finished_at": "Finished"}
    related_views = [CampaignRecipientView]  # the messages are written on the builder page
    show_template = "campaign_show.html"

    def pre_delete(self, item):
        _refuse_unless(campaigns.check_deletable, item)

    @expose("/add", methods=["GET", "POST"])
    @has_access
    def add(self):
        """The builder: the whole campaign on one page (audience, messages A and B, sending)."""
        return self._builder(None)

    @expose("/edit/<pk>", methods=["GET", "POST"])
    @has_access
    def edit(self, pk):
        """The same page for an existing campaign; it says up front what the campaign's state allows."""
        campaign = self.datamodel.get(pk)
        if campaign is None:
            flash("No such campaign.", "danger")
            return redirect(url_for(".list"))
        return self._builder(campaign)

    def _builder(self, campaign):
        errors = {}
        values = campaign_settings.campaign_values(campaign)
        if campaign is None and request.method == "GET":  # "Text this list" on a list's page: ?list_id=N
            values["lists"] = lists.own_list_ids(request.args.getlist("list_id", type=int))
        if request.method == "POST":
            values = _posted(request.form)
            try:
                saved = campaign_settings.save_campaign(values, campaign.id if campaign else None, user_id=g.user.id)
            except CampaignInputError as exc:
                errors = exc.errors
            else:
                flash("Campaign saved.", "success")
                return redirect(url_for(".show", pk=saved.id))
        return self.render_template(
            "campaign_builder.html", title=self.edit_title if campaign else self.add_title, campaign=campaign,
            values=values, errors=errors, tokens=TOKENS,
            lists=campaign_settings.list_choices(campaign.id if campaign else None),
            weekdays=campaign_settings.weekday_names(), zone=current_app.config["CAMPAIGN_TIMEZONE"],
            notice=campaigns.edit_notice(campaign) if campaign is not None and campaign.status != "draft" else None,
            preview=campaign_settings.preview_messages(values))

    @expose("/preview", methods=["POST"])
    @has_access
    def preview(self):
        """The builder's live preview: each message filled from a real member, segments and cost."""
        return jsonify(campaign_settings.preview_messages(_posted(request.form)))

    @expose("/test_text/<int:pk>", methods=["POST"])
    @has_access
    def test_text(self, pk):
        """Send message A or B to the signed-in user's own phone, once, through the outbox."""
        variant = request.form.get("variant", "A")
        return _act_then_show(pk, lambda: campaign_settings.send_test_text(
            pk, variant, request.form.get("phone", ""), g.user.id), lambda message: (
            f"Test of message {variant} queued to {display.phone(message.to_phone)}: "
            "it is not counted as a campaign text."))

    @expose("/show/<pk>", methods=["GET"])
    @has_access
    def show(self, pk):
        page = analytics.campaign_page(pk)
        if page is None:
            flash("No such campaign.", "danger")
            return redirect(url_for(".list"))
        campaign, counts = page["campaign"], page["plan"] or {}
        if campaign.status == "draft":
            counts = {"queued": campaign_settings.list_audience([lst.id for lst in campaign.lists])}
        return self.render_template(self.show_template, pk=pk, title=self.show_title, widgets=self._show(pk),
                                    related_views=self._related_views, exclusions=EXCLUSIONS,
                                    sending_plan=campaign_settings.sending_plan(campaign, counts),
                                    test_phone=campaign_settings.remembered_test_phone(g.user.id),
                                    times=campaign_settings.campaign_times(campaign),
                                    weekdays=dict(campaign_settings.weekday_names()), **page)

    @expose("/transition/<int:pk>/<status>", methods=["POST"])
    @has_access
    def transition(self, pk, status):
        return _act_then_show(pk, lambda: campaigns.change_status(pk, status), lambda _campaign: (
            "Unscheduled: the campaign is a draft again and its plan was dropped." if status == "draft"
            else f"Campaign is now {status}."))

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
        return _act_then_show(pk, lambda: winners.undo_winner(pk), lambda restored: (
            f"Winner undone: {restored} recipients not yet texted are back on their planned variant."))

    @expose("/clone/<int:pk>", methods=["POST"])
    @has_access
    def clone(self, pk):
        copy = campaigns.clone_campaign(pk, user_id=g.user.id)
        flash("Cloned as a draft: edit its messages, then schedule it.", "success")
        return redirect(url_for(".show", pk=copy.id))

    @expose("/recipients_csv/<int:pk>", methods=["GET"])
    @has_access
    def recipients_csv(self, pk):
        return Response(stream_with_context(analytics.recipients_csv(pk)), mimetype="text/csv",
                        headers={"Content-Disposition": f"attachment; filename=campaign-{pk}-recipients.csv"})


def _posted(form):
    """The builder's form as the plain values app/campaign_settings reads (several lists and days)."""
    data = {key: form.get(key) for key in form if key not in ("lists", "window_days", "csrf_token")}
    return {**data, "lists": form.getlist("lists"), "window_days": form.getlist("window_days")}


def api_save_campaign(api, pk=None):
    """POST /api/v1/campaign/ (a new campaign) and PUT /api/v1/campaign/<id> (the fields sent change,
    the rest stay): the builder's rules. 422 with a message per field; 409 when the state refuses."""
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        return api.response_400(message="Send the campaign as a JSON object.")
    try:
        campaign = campaign_settings.save_campaign(data, pk, user_id=audit.current_actor()[0], partial=True)
    except CampaignInputError as exc:
        return api.response(409 if "form" in exc.errors else 422, message=exc.errors)
    return api.response(201 if pk is None else 200, id=campaign.id, result=campaign_settings.campaign_values(campaign))


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
