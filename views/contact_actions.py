"""Bulk actions on the contact list: a mixin added to ContactView's bases."""
from urllib.parse import parse_qs, parse_qsl, urlencode, urlparse

from flask import Response, flash, g, redirect, request, url_for
from flask_appbuilder import expose, has_access
from flask_appbuilder.actions import action

from app import contact_actions
from app.extensions import db

NEEDS_ARGUMENT = {"add_to_list": "list", "remove_from_list": "list", "assign": "user"}
# The list's own state in its query: filters, order, page and page size.
LIST_STATE = ("_flt_", "_oc_", "_od_", "page_", "psize_")
TITLES = {"add_to_list": "Add to list", "remove_from_list": "Remove from list", "assign": "Assign to user",
          "opt_out": "Opt out"}


def _ids(items):
    return [item.id for item in (items if isinstance(items, list) else [items])]


def list_state(query):
    """The filters, order and page of a list's query string, re-encoded (nothing else is kept)."""
    return urlencode([(k, v) for k, v in parse_qsl(query or "") if k.startswith(LIST_STATE)])


class ContactActionsMixin:
    """add_to_list, remove_from_list, assign, opt_out, export_csv, text_selected, and the same
    for "every contact matching the current filter" (run by a job)."""

    def _to_form(self, name, items):
        ids = ",".join(str(i) for i in _ids(items))
        search = list_state(urlparse(request.referrer or "").query)
        return redirect(url_for(f"{self.endpoint}.bulk", name=name, ids=ids, search=search))

    @action("add_to_list", "Add to list", single=False)
    def add_to_list(self, items):
        return self._to_form("add_to_list", items)

    @action("remove_from_list", "Remove from list", single=False)
    def remove_from_list(self, items):
        return self._to_form("remove_from_list", items)

    @action("assign", "Assign to user", single=False)
    def assign(self, items):
        return self._to_form("assign", items)

    @action("opt_out", "Opt out", "Opt out every selected phone? They will get no more texts.", single=False)
    def opt_out(self, items):
        return self._to_form("opt_out", items)

    @action("export_csv", "Export CSV", single=False)
    def export_csv(self, items):
        return Response(contact_actions.export_csv(_ids(items)), mimetype="text/csv",
                        headers={"Content-Disposition": "attachment; filename=contacts.csv"})

    @action("text_selected", "Text selected", single=False)
    def text_selected(self, items):
        campaign = contact_actions.text_selected(_ids(items), user_id=g.user.id)
        db.session.commit()
        flash("A draft campaign holds the selected contacts: write its message, then schedule it.", "success")
        return redirect(url_for("CampaignView.show", pk=campaign.id))

    @expose("/bulk/<name>", methods=["GET", "POST"])
    @has_access
    def bulk(self, name):
        if name not in TITLES:
            flash("Unknown bulk action.", "danger")
            return redirect(url_for(f"{self.endpoint}.list"))
        ids = [int(i) for i in (request.values.get("ids") or "").split(",") if i.isdigit()]
        search = {k: v for k, v in parse_qs(request.values.get("search") or "").items() if k.startswith("_flt_")}
        if request.method == "POST":
            return self._bulk_apply(name, ids, search)
        choices = contact_actions.choices(NEEDS_ARGUMENT.get(name))
        return self.render_template("contact_bulk.html", name=name, title=TITLES[name], ids=ids,
                                    search=request.values.get("search") or "", has_filter=bool(search),
                                    choices=choices, argument_kind=NEEDS_ARGUMENT.get(name),
                                    back=self._back_to_list())

    def _back_to_list(self):
        """The contact list as the user left it: same filters, order and page (always this site's list)."""
        state = list_state(request.values.get("search"))
        return url_for(f"{self.endpoint}.list") + (f"?{state}" if state else "")

    def _bulk_apply(self, name, ids, search):
        argument = request.form.get("argument") or None
        if NEEDS_ARGUMENT.get(name) == "list" and not argument:
            flash("Choose a list.", "danger")
            return redirect(request.url)
        if request.form.get("scope") == "matching":
            contact_actions.enqueue_apply_to_matching(name, search, argument, g.user.id)
            flash(f"{TITLES[name]}: every contact matching the filter is being processed in the background.", "info")
        else:
            count = contact_actions.apply(name, ids, argument, g.user.id)
            db.session.commit()
            flash(f"{TITLES[name]}: {count} contacts done.", "success")
        return redirect(self._back_to_list())
