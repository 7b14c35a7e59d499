"""The site's frame: its style sheet and favicon, and 403 / 404 pages inside the layout with a
way back (the REST API and webhooks keep answering JSON)."""
from pathlib import Path

from flask import Blueprint, current_app, jsonify, render_template, request, send_from_directory
from werkzeug.exceptions import Forbidden, NotFound

STATIC = Path(__file__).resolve().parent / "static"
MACHINE_PATHS = ("/api/", "/webhooks/", "/health")
PAGES = {
    403: ("Not allowed", "Your role does not let you open this page. If you need it, ask an Admin."),
    404: ("Page not found", "There is nothing at this address: the record may have been deleted, or the link "
                            "may be mistyped."),
}


def favicon():
    return send_from_directory(STATIC, "favicon.ico", mimetype="image/vnd.microsoft.icon", max_age=86400)


def error_page(exc):
    """403 and 404 in the site's layout for people; JSON for the API, as FAB answers there."""
    if request.path.startswith(MACHINE_PATHS):
        return jsonify(message=exc.name), exc.code
    heading, text = PAGES[exc.code]
    appbuilder = current_app.appbuilder
    return render_template("error.html", appbuilder=appbuilder, base_template=appbuilder.base_template,
                           title=heading, heading=heading, text=text, code=exc.code, back=_back()), exc.code


def _back():
    """The page the user came from, when it is on this site."""
    referrer = request.referrer or ""
    return referrer if referrer.startswith(request.host_url) and referrer != request.url else None


def register(appbuilder):
    blueprint = Blueprint("crm", __name__, static_folder=str(STATIC), static_url_path="/static/crm")
    blueprint.add_url_rule("/favicon.ico", "favicon", favicon)
    current_app.register_blueprint(blueprint)
    current_app.register_error_handler(Forbidden, error_page)
    current_app.register_error_handler(NotFound, error_page)
