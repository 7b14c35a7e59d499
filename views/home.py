"""The home page."""
from flask_appbuilder import IndexView, expose


class HomeView(IndexView):
    index_template = "home.html"

    @expose("/")
    def index(self):
        from flask import g

        if not getattr(g.user, "is_authenticated", False):
            return self.render_template("appbuilder/index.html")
        return self.render_template(self.index_template, appbuilder=self.appbuilder)
