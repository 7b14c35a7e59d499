"""GET /media/<id>: a downloaded photo or voicemail, only for users who may see its contact,
streamed from wherever app/media.py keeps it (so no link to the storage ever leaves the site)."""
from flask import Response, abort
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
        media, chunks, size = found
        return Response(chunks, mimetype=media.content_type, direct_passthrough=True,
                        headers={"Content-Length": str(size), "Cache-Control": "private, max-age=3600"})


def register(appbuilder):
    appbuilder.add_view_no_menu(MediaView)
