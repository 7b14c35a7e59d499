"""Contact export to CSV, safe to open in a spreadsheet."""
import csv
import re

from sqlalchemy import select

from app import audit
from app.extensions import db
from app.models import Contact, ListMember

COLUMNS = ["id", "first_name", "last_name", "phone", "email", "mail_address", "mail_city", "mail_state", "mail_zip",
           "source", "assigned_user_id", "created_at"]
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
E164 = re.compile(r"\+[1-9]\d{7,14}")  # digits only: no formula can hide in it


def neutralise(value):
    """A cell a spreadsheet would run as a formula gets a leading apostrophe ('=1+1 -> '=1+1)."""
    if value is None:
        return ""
    text = str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


def csv_cell(value, phone=False):
    """neutralise(value), except that a phone number in E.164 keeps its leading "+"."""
    if phone and isinstance(value, str) and E164.fullmatch(value):
        return value
    return neutralise(value)


def export_contacts(out, contact_ids=None, list_ids=None):
    """Write contacts (all, the given ids, or the members of the given lists) as CSV to a text stream."""
    query = select(*(getattr(Contact, c) for c in COLUMNS)).order_by(Contact.id)
    if contact_ids is not None:
        query = query.where(Contact.id.in_(list(contact_ids)))
    if list_ids is not None:
        query = query.where(Contact.id.in_(select(ListMember.contact_id).where(ListMember.list_id.in_(list_ids))))
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    phone, count = COLUMNS.index("phone"), 0
    for row in db.session.execute(query.execution_options(yield_per=2000)):
        writer.writerow([csv_cell(v, phone=i == phone) for i, v in enumerate(row)])
        count += 1
    scope = "selected" if contact_ids is not None else "lists" if list_ids is not None else "all"
    audit.record_export("contacts", count, detail=f"{scope} contacts")
    return count
