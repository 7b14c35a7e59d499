"""Export from the screen: a whole list, or every contact matching the contact list's filter. Small
ones download at once; big ones are made by a job, whose page shows progress and then the file."""
from flask import Response, abort, current_app, g, redirect, request, send_file, stream_with_context, url_for
from flask_appbuilder import BaseView, expose, has_access
from flask_appbuilder.api import BaseApi, protect
from flask_appbuilder.api import expose as api_expose

from app import exports, lists
from app.search import describe_filter


def _selection(values):
    """({"list_id": n} or {"search": {...}}, description) from form or JSON values; None for an unknown list."""
    list_id = values.get("list_id")
    if list_id not in (None, ""):
        chosen = lists.own_list(int(list_id)) if str(list_id).isdigit() else None
        return (None, None) if chosen is None else ({"list_id": chosen.id}, f"list {chosen.name}")
    search = {key: list(value) if isinstance(value, list) else [value]
              for key, value in (values.get("search") or {}).items()}
    return {"search": search}, f"contacts: {describe_filter(search)}"


def begin_export(selection, description):
    """The CSV now (a download) when it is small, else None after queueing the job (its Export row)."""
    if exports.count_selection(selection, g.user.id) <= current_app.config["EXPORT_DIRECT_ROWS"]:
        lines = exports.selection_csv(selection, g.user.id, description)
        return Response(stream_with_context(lines), mimetype="text/csv",
                        headers={"Content-Disposition": "attachment; filename=contacts.csv"}), None
    return None, exports.start_export(selection, description, g.user.id)


class ExportView(BaseView):
    route_base = "/exports"
    default_view = "contacts"

    @expose("/contacts", methods=["POST"])
    @has_access
    def contacts(self):
        form = request.form
        values = {"list_id": form.get("list_id"),
                  "search": {key: form.getlist(key) for key in form if key.startswith("_flt_")}}
        selection, description = _selection(values)
        if selection is None:
            abort(404)
        download, export = begin_export(selection, description)
        return download or redirect(url_for("ExportView.show", pk=export.id))

    @expose("/show/<int:pk>")
    @has_access
    def show(self, pk):
        export = exports.visible_export(pk, g.user.id) or abort(404)
        return self.render_template("export_show.html", export=export, title=f"Export: {export.description}")

    @expose("/download/<int:pk>")
    @has_access
    def download(self, pk):
        export = exports.visible_export(pk, g.user.id) or abort(404)
        if export.status != "succeeded":
            return redirect(url_for("ExportView.show", pk=pk))
        return send_file(export.stored_path, mimetype="text/csv", as_attachment=True,
                         download_name=f"contacts-export-{pk}.csv")


class ExportApi(BaseApi):
    """POST /api/v1/export/ {"list_id": 3} or {"search": {"_flt_0_first_name": "Ann"}}: 200 with the CSV
    when small, else 202 with the export's id; GET /api/v1/export/<id> its progress, /<id>/download the file."""

    resource_name = "export"

    @api_expose("/", methods=["POST"])
    @protect()
    def post(self):
        """Export contacts: a list or a filter, the caller's contacts only.
        ---
        post:
          responses:
            200:
              description: the CSV
            202:
              description: the export's id; it is being written
        """
        selection, description = _selection(request.get_json(silent=True) or {})
        if selection is None:
            return self.response_404()
        download, export = begin_export(selection, description)
        if download is not None:
            return download
        return self.response(202, id=export.id, total_rows=export.total_rows, status=export.status)

    @api_expose("/<int:pk>", methods=["GET"])
    @protect()
    def get(self, pk):
        """An export's progress.
        ---
        get:
          responses:
            200:
              description: status, rows_done, total_rows
        """
        export = exports.visible_export(pk, g.user.id)
        if export is None:
            return self.response_404()
        return self.response(200, id=pk, status=export.status, rows_done=export.rows_done,
                             total_rows=export.total_rows, error=export.error)

    @api_expose("/<int:pk>/download", methods=["GET"])
    @protect()
    def download(self, pk):
        """The export's CSV once it succeeded.
        ---
        get:
          responses:
            200:
              description: the CSV
        """
        export = exports.visible_export(pk, g.user.id)
        if export is None or export.status != "succeeded":
            return self.response_404()
        return send_file(export.stored_path, mimetype="text/csv", as_attachment=True,
                         download_name=f"contacts-export-{pk}.csv")


def register(appbuilder):
    appbuilder.add_view_no_menu(ExportView)
    appbuilder.add_api(ExportApi)
