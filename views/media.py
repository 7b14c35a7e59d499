"""GET /media/<id>: a downloaded photo or voicemail, only for users who may see its contact."""
from flask import abort, send_file
from flask_appbuilder import BaseView, expose, has_access

from app.media import visible_media


class MediaView(BaseView):
    route_base = "/media"

    @expose("/<int:pk>")
    @has_access
    def get(self, pk):
        found = visible_media(pk)
        if found is None:
            abort(404)
        media, path = found
        return send_file(path, mimetype=media.content_type, max_age=3600)


def register(appbuilder):
    appbuilder.add_view_no_menu(MediaView)
