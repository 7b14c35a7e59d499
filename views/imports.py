"""Imports: upload, mapping step, live progress, cancel, rejected rows download."""
from flask import Response, abort, current_app, flash, g, jsonify, redirect, request, stream_with_context, url_for
from flask_appbuilder import expose, has_access
from flask_appbuilder.models.sqla.interface import SQLAInterface
from werkzeug.exceptions import RequestEntityTooLarge

from app import contact_actions, display, import_report, imports
from app.import_files import BadFile, inspect_file
from app.models import Import
from views.display import ModelView, zone


class ImportView(ModelView):
    datamodel = SQLAInterface(Import)
    base_permissions = ["can_list", "can_show", "can_upload", "can_mapping", "can_progress", "can_cancel",
                        "can_rejected"]
    base_order = ("created_at", "desc")
    list_columns = ["filename", "format", "list", "status", "rows_done", "total_rows", "created_at"]
    search_columns = ["filename", "format", "status", "created_at"]
    formatters_columns = {"format": lambda code: import_report.FORMAT_NAMES.get(code, code or "")}
    show_template = "import_show.html"
    list_template = "import_list.html"

    def _load(self, pk):
        return self.datamodel.get(pk) or abort(404)

    @expose("/upload", methods=["GET", "POST"])
    @has_access
    def upload(self):
        limit = current_app.config["MAX_UPLOAD_MB"]
        if request.method == "GET":
            return self.render_template("import_upload.html", lists=contact_actions.choices("list"), limit=limit)
        try:
            upload = request.files.get("file")
        except RequestEntityTooLarge:
            flash(f"The file is larger than the {limit} MB limit. Split it and import each part.", "danger")
            return redirect(url_for("ImportView.upload"))
        if not upload or not upload.filename:
            flash("Choose a CSV or Excel (.xlsx) file to import.", "warning")
            return redirect(url_for("ImportView.upload"))
        try:
            imp = imports.create_import(upload.stream, upload.filename, fmt=request.form.get("format", "auto"),
                                        list_name=request.form.get("new_list", "").strip() or None,
                                        list_id=request.form.get("list_id", type=int), user_id=g.user.id,
                                        confirm_mapping=True)
        except BadFile as exc:
            flash(str(exc), "danger")
            return redirect(url_for("ImportView.upload"))
        if imp.status == "mapping":
            return redirect(url_for("ImportView.mapping", pk=imp.id))
        if imp.status == "queued":
            imports.start_import(imp.id)
        return redirect(url_for("ImportView.show", pk=imp.id))

    @expose("/mapping/<int:pk>", methods=["GET", "POST"])
    @has_access
    def mapping(self, pk):
        imp = self._load(pk)
        if imp.status != "mapping":
            return redirect(url_for("ImportView.show", pk=pk))
        info = inspect_file(imp.stored_path)
        if request.method == "POST":
            chosen = {column: request.form.get(f"map_{i}") or None for i, column in enumerate(info["header"])}
            try:
                imports.confirm_mapping(imp, chosen, request.form.getlist("overwrite"))
            except BadFile as exc:
                flash(str(exc), "danger")
                imp.mapping = chosen
            else:
                imports.start_import(imp.id)
                return redirect(url_for("ImportView.show", pk=pk))
        return self.render_template("import_mapping.html", imp=imp, info=info, fields=imports.MAPPABLE)

    @expose("/show/<pk>")
    @has_access
    def show(self, pk):
        progress = _progress(pk)
        return self.render_template(self.show_template, pk=progress["id"], progress=progress,
                                    title=f"Import {progress['filename']}")

    @expose("/progress/<int:pk>")
    @has_access
    def progress(self, pk):
        return jsonify(_progress(pk))

    @expose("/cancel/<int:pk>", methods=["POST"])
    @has_access
    def cancel(self, pk):
        imports.cancel_import(self._load(pk).id)
        flash("Cancel requested: the import stops after the batch in progress.", "info")
        return redirect(url_for("ImportView.show", pk=pk))

    @expose("/rejected/<int:pk>")
    @has_access
    def rejected(self, pk):
        imp = self._load(pk)
        return Response(stream_with_context(imports.rejected_rows_csv(imp)), mimetype="text/csv", headers={
            "Content-Disposition": f'attachment; filename="rejected-{imp.id}.csv"'})


def _progress(pk):
    """The import page's one read, with times as every screen prints them (company zone, to the minute)."""
    progress = imports.progress_of(int(pk)) if str(pk).isdigit() else None
    if progress is None:
        abort(404)
    for field in ("created_at", "started_at", "finished_at"):
        progress[field] = display.when(progress[field], zone())
    return progress


def register(appbuilder):
    appbuilder.add_view(ImportView, "Imports", icon="fa-upload", category="Imports")
    # "Import a list" (CSV or Excel) from the Contacts and Lists menus (the Imports menu permission covers both links)
    for category in ("Contacts", "Lists"):
        appbuilder.add_link("Imports", href="/importview/upload", icon="fa-upload", label="Import a list",
                            category=category)
