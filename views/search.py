"""Global search (the box in the navigation bar): /search/?q= and GET /api/v1/search/?q=."""
from flask import g, request
from flask_appbuilder import BaseView, expose, has_access
from flask_appbuilder.api import BaseApi, protect
from flask_appbuilder.api import expose as api_expose

from app import search


class SearchView(BaseView):
    route_base = "/search"
    default_view = "index"

    @expose("/")
    @has_access
    def index(self):
        results = search.search(request.args.get("q", ""), user_id=g.user.id)
        return self.render_template("search.html", results=results, title="Search")


class SearchApi(BaseApi):
    resource_name = "search"

    @api_expose("/", methods=["GET"])
    @protect()
    def get(self):
        """Contacts and properties matching ?q= (name, phone in any format, email, street address, town, ZIP).
        ---
        get:
          responses:
            200:
              description: contacts (id, name, phone, email) and properties (id, address, city, zip), the first
                20 of each; more_contacts / more_properties say whether there are more
        """
        results = search.search(request.args.get("q", ""), user_id=g.user.id)
        contacts = [{"id": c.id, "name": str(c), "phone": c.phone, "email": c.email} for c in results["contacts"]]
        properties = [{"id": p.id, "address": p.address, "city": p.city, "zip": p.zip} for p in results["properties"]]
        return self.response(200, q=results["q"], contacts=contacts, properties=properties,
                             more_contacts=results["more_contacts"], more_properties=results["more_properties"])


def register(appbuilder):
    appbuilder.add_view_no_menu(SearchView)
    appbuilder.add_api(SearchApi)
