"""A contact's data on request, from the contact page: "Export this contact" (one JSON file of
everything held about them) and "Erase this contact" (Admin, after a confirmation page)."""
import json

from flask import Response, abort, flash, g, redirect, request, url_for
from flask_appbuilder import expose, has_access

from app import contact_data
from app.extensions import db
from app.media import StorageError


class ContactDataMixin:
    """export_data and erase routes for ContactView; the <pk> guard limits both to visible contacts."""

    @expose("/export_data/<int:pk>")
    @has_access
    def export_data(self, pk):
        data = contact_data.export_contact(pk)
        return Response(json.dumps(data, indent=2, ensure_ascii=False, default=str), mimetype="application/json",
                        headers={"Content-Disposition": f'attachment; filename="contact-{pk}.json"'})

    @expose("/erase/<int:pk>", methods=["GET", "POST"])
    @has_access
    def erase(self, pk):
        contact = self.datamodel.get(pk, self._base_filters) or abort(404)
        if request.method == "GET":
            return self.render_template("contact_erase.html", contact=contact, pk=pk,
                                        messages=len(contact_data.messages_of(contact)) + len(contact_data.calls_of(contact)),
                                        title=f"Erase {contact}")
        if request.form.get("confirm") != "erase":
            flash("Tick the box to confirm the erasure.", "warning")
            return redirect(url_for(".erase", pk=pk))
        try:
            counts = contact_data.erase_contact(pk, user_id=g.user.id)
        except StorageError as exc:
            db.session.rollback()
            flash(f"Nothing was erased: the stored photos and recordings could not be deleted ({exc}). "
                  "Try again once media storage answers.", "danger")
            return redirect(url_for(".erase", pk=pk))
        db.session.commit()
        flash(f"Contact {pk} erased: {counts['messages']} messages blanked, {counts['media_files_deleted']} photos "
              "and recordings deleted, the phone is kept only as a hash so it is never texted again.", "success")
        return redirect(url_for(".list"))
