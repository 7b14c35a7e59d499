"""GET /media/<id>: a downloaded photo or voicemail, only for users who may see its contact."""
from flask import abort, send_file
from flask_appbuilder import BaseView, expose, has_access

from app.extensions import db
from app.history_models import Media
from app.media import stored_path
from app.security import visible_contact


class MediaView(BaseView):
    route_base = "/media"

    @expose("/<int:pk>")
    @has_access
    def get(self, pk):
        media = db.session.get(Media, pk)
        if media is None or media.contact_id is None:
            abort(404)
        visible_contact(media.contact_id)  # 404 for a contact this user may not see
        path = stored_path(media)
        if path is None:
            abort(404)
        return send_file(path, mimetype=media.content_type, max_age=3600)


def register(appbuilder):
    appbuilder.add_view_no_menu(MediaView)
