"""Every file that leaves the CRM as CSV: cells safe to open in a spreadsheet, and one audit row
per file saying who exported what and how many rows."""
import csv
import io
import re

from flask import current_app
from sqlalchemy import select

from app import audit
from app.extensions import db
from app.models import Contact, ListMember
from app.queue import get_redis

COLUMNS = ["id", "first_name", "last_name", "phone", "email", "mail_address", "mail_city", "mail_state", "mail_zip",
           "source", "assigned_user_id", "created_at"]
FORMULA_START = ("=", "+", "-", "@")
# Spreadsheets skip leading blanks before a formula (" =1+1"), and a leading tab or CR is a
# known way to smuggle one in ("\t=1+1").
LEADING_BLANKS = " \t\r\n\x0b\x0c"
E164 = re.compile(r"\+[1-9]\d{7,14}")  # digits only: no formula can hide in it
PLAIN_NUMBER = re.compile(r"-?\d+(\.\d+)?")  # negative equity, a plain number, not a formula


def neutralise(value):
    """A cell a spreadsheet would run as a formula gets a leading apostrophe ('=1+1 -> '=1+1):
    one starting with = + - @, also after blanks, or with a tab or CR. Plain numbers stay numbers."""
    if value is None:
        return ""
    text = str(value)
    if PLAIN_NUMBER.fullmatch(text):
        return text
    if text.startswith(("\t", "\r")) or text.lstrip(LEADING_BLANKS).startswith(FORMULA_START):
        return "'" + text
    return text


def csv_cell(value, phone=False):
    """neutralise(value), except that a phone number in E.164 keeps its leading "+"."""
    if phone and isinstance(value, str) and E164.fullmatch(value):
        return value
    return neutralise(value)


def csv_lines(what, header, rows, phone_columns=(), detail=None, object_id=None):
    """The one way a CSV leaves the CRM: yields the header line, then one line per row with every cell
    through csv_cell, and records one export audit row with the number of rows sent (also when the
    download stops early)."""
    out = io.StringIO()
    writer = csv.writer(out)
    phones = {header.index(column) for column in phone_columns if column in header}
    count = 0

    def line(cells):
        out.seek(0)
        out.truncate()
        writer.writerow(cells)
        return out.getvalue()

    try:
        yield line([csv_cell(cell) for cell in header])
        for row in rows:
            text = line([csv_cell(value, phone=i in phones) for i, value in enumerate(row)])
            count += 1
            yield text
    finally:
        audit.record_export(what, count, detail=detail, object_id=object_id)


def export_contacts(out, contact_ids=None, list_ids=None):
    """Write contacts (all, the given ids, or the members of the given lists) as CSV to a text stream."""
    query = select(*(getattr(Contact, c) for c in COLUMNS)).order_by(Contact.id)
    if contact_ids is not None:
        query = query.where(Contact.id.in_(list(contact_ids)))
    if list_ids is not None:
        query = query.where(Contact.id.in_(select(ListMember.contact_id).where(ListMember.list_id.in_(list_ids))))
    scope = "selected" if contact_ids is not None else "lists" if list_ids is not None else "all"
    count = -1  # the header line
    rows = db.session.execute(query.execution_options(yield_per=2000))
    for text in csv_lines("contacts", COLUMNS, rows, phone_columns=["phone"], detail=f"{scope} contacts"):
        out.write(text)
        count += 1
    return count


API_READS_KEY = "crm:api_reads:"


def record_api_read(what, rows, detail=None):
    """Rows of `what` one user read through a list API. Past API_EXPORT_AUDIT_ROWS rows within
    API_EXPORT_AUDIT_WINDOW_SECONDS the reading is an export: the page that crosses the threshold is
    audited with every row read so far in the window, each later page with its own rows, so the audit
    rows add up to everything that left. The running total lives in Redis, shared by every worker."""
    if not rows:
        return
    user_id, username = audit.current_actor()
    threshold = current_app.config["API_EXPORT_AUDIT_ROWS"]
    key = f"{API_READS_KEY}{what}:{user_id or username}"
    try:
        pipe = get_redis().pipeline()  # MULTI: the first read of a window starts its clock
        pipe.set(key, 0, ex=current_app.config["API_EXPORT_AUDIT_WINDOW_SECONDS"], nx=True)
        pipe.incrby(key, rows)
        total = pipe.execute()[1]
    except Exception as exc:  # noqa: BLE001 - without the running total, audit every page
        current_app.logger.warning("api read counter unavailable, auditing the page: %s", exc)
        total = threshold + rows + 1
    if total <= threshold:
        return
    count = total if total - rows <= threshold else rows
    audit.record_export(what, count, detail=f"read over the API ({total} rows in this window); {detail or ''}".strip())
