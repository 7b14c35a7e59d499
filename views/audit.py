"""The audit log: read-only, Admin only."""
from flask_appbuilder import ModelView
from flask_appbuilder.models.sqla.interface import SQLAInterface

from app.models import AuditLog


class AuditLogView(ModelView):
    datamodel = SQLAInterface(AuditLog)
    base_permissions = ["can_list", "can_show"]
    base_order = ("at", "desc")
    list_columns = ["at", "username", "action", "object_type", "object_id", "detail"]
    show_columns = ["at", "user_id", "username", "action", "object_type", "object_id", "changes", "detail", "ip"]
    search_columns = ["username", "action", "object_type", "object_id", "at"]


def register(appbuilder):
    appbuilder.add_view(AuditLogView, "Audit log", icon="fa-history", category="Audit log")
