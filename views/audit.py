"""The audit log: read-only, Admin only; and the history block of a record's page."""
import json

from flask import current_app
from flask_appbuilder.models.sqla.interface import SQLAInterface

from app import audit, display
from app.extensions import appbuilder as _appbuilder
from app.models import AuditLog
from views.display import ModelView


class AuditLogView(ModelView):
    datamodel = SQLAInterface(AuditLog)
    list_title, show_title = "Audit log", "Audit log entry"
    label_columns = {"at": "When", "username": "Who", "user_id": "User id", "action": "What", "object_type": "Record",
                     "object_id": "Record id", "ip": "IP address"}
    base_permissions = ["can_list", "can_show"]
    base_order = ("at", "desc")
    list_columns = ["at", "username", "action", "object_type", "object_id", "detail"]
    show_columns = ["at", "user_id", "username", "action", "object_type", "object_id", "changes", "detail", "ip"]
    search_columns = ["username", "action", "object_type", "object_id", "at"]
    formatters_columns = {"object_type": display.record_name, "detail": audit.readable_detail,
                          "changes": lambda changes: "" if changes is None else json.dumps(changes, ensure_ascii=False)}


def audit_history(object_type, object_id):
    """Audit rows for a record's page; empty for roles that may not read the audit log."""
    if not _appbuilder.sm.has_access("can_list", "AuditLogView"):
        return []
    return audit.history(object_type, object_id)


def register(appbuilder):
    appbuilder.add_view(AuditLogView, "Audit log", icon="fa-history", category="Audit log")
    current_app.jinja_env.globals["audit_history"] = audit_history
    current_app.jinja_env.filters["audit_detail"] = audit.readable_detail
