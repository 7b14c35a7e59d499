"""Every file that leaves the CRM as CSV: cells safe to open in a spreadsheet, and one audit row
per file saying who exported what and how many rows."""
import csv
import io
import os
import re
from datetime import timedelta
from pathlib import Path

from flask import current_app
from flask_appbuilder.security.sqla.models import User
from sqlalchemy import func, select, update

from app import audit
from app.extensions import db
from app.models import Contact, Export, ListMember, utcnow
from app.queue import enqueue, get_redis
from app.search import matching_contacts, scoped

COLUMNS = ["id", "first_name", "last_name", "phone", "email", "mail_address", "mail_city", "mail_state", "mail_zip",
           "source", "assigned_user_id", "created_at"]
EXPORT_PROGRESS_ROWS = 1000
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


def contacts_query(contact_ids=None, list_ids=None, search=None, user_id=None):
    """The export's columns for every contact chosen (the given ids, the members of the given lists, those
    matching the contact list's filter arguments, or all), among those user_id (None: the system) may see."""
    query = select(*(getattr(Contact, c) for c in COLUMNS)).order_by(Contact.id)
    if contact_ids is not None:
        query = query.where(Contact.id.in_(list(contact_ids)))
    if list_ids is not None:
        query = query.where(Contact.id.in_(select(ListMember.contact_id).where(ListMember.list_id.in_(list_ids))))
    if search is not None:
        query = query.where(Contact.id.in_(matching_contacts(search, user_id)))
    return scoped(query, Contact, user_id)


def export_contacts(out, contact_ids=None, list_ids=None, search=None, user_id=None, detail=None, object_id=None,
                    progress=None):
    """Write the chosen contacts (see contacts_query) as CSV to a text stream; returns the number of rows.
    progress(rows) is called every EXPORT_PROGRESS_ROWS rows."""
    query = contacts_query(contact_ids, list_ids, search, user_id)
    if detail is None:
        scope = "selected" if contact_ids is not None else "lists" if list_ids is not None else "all"
        detail = f"{scope} contacts"
    count = -1  # the header line
    rows = db.session.execute(query.execution_options(yield_per=2000))
    for text in csv_lines("contacts", COLUMNS, rows, phone_columns=["phone"], detail=detail, object_id=object_id):
        out.write(text)
        count += 1
        if progress and count and count % EXPORT_PROGRESS_ROWS == 0:
            progress(count)
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


# --- exports too big for one request: a job writes the file, the row holds its state --------------

def selection_args(selection):
    """contacts_query's arguments for an export's stored selection ({"list_id": 3} or {"search": {...}})."""
    if "list_id" in selection:
        return {"list_ids": [int(selection["list_id"])]}
    return {"search": selection.get("search") or {}}


def count_selection(selection, user_id):
    """How many contacts the selection holds for this user, from the rows."""
    query = contacts_query(user_id=user_id, **selection_args(selection))
    return db.session.scalar(select(func.count()).select_from(query.order_by(None).subquery()))


def selection_csv(selection, user_id, description):
    """The selection as CSV lines, for a download in the request (small selections). The query runs
    when the first line is read: a server-side cursor opened in the view would not outlive the commit
    that ends the request before the response streams."""
    rows = db.session.execute(contacts_query(user_id=user_id, **selection_args(selection))
                              .execution_options(yield_per=2000))
    yield from csv_lines("contacts", COLUMNS, rows, phone_columns=["phone"], detail=description)


def start_export(selection, description, user_id):
    """Record an export of the selection for this user and queue the job that writes it."""
    export = Export(created_by_id=user_id, description=description[:255], selection=selection, status="queued",
                    total_rows=count_selection(selection, user_id))
    db.session.add(export)
    db.session.commit()
    enqueue("jobs.exports.run_export_job", export.id)
    return export


def run_export(export_id):
    """Claim a queued export and write its file (the one exporter: formula cells neutralised, one audit
    row), with its progress committed every EXPORT_PROGRESS_ROWS rows. Returns the final status."""
    claimed = db.session.execute(update(Export).where(Export.id == export_id, Export.status == "queued")
                                 .values(status="running", started_at=utcnow(), heartbeat_at=utcnow(), rows_done=0))
    db.session.commit()
    if claimed.rowcount != 1:
        return None
    export = db.session.get(Export, export_id)
    user = db.session.get(User, export.created_by_id) if export.created_by_id else None
    folder = Path(current_app.config["UPLOAD_FOLDER"]) / "exports"
    folder.mkdir(parents=True, exist_ok=True)
    path, part = folder / f"export-{export_id}.csv", folder / f"export-{export_id}.csv.part"

    def progress(rows):
        with db.engine.begin() as connection:  # the export's own session is reading rows
            connection.execute(update(Export).where(Export.id == export_id)
                               .values(rows_done=rows, heartbeat_at=utcnow()))

    try:
        with audit.acting_as(export.created_by_id, user.username if user else "system"), \
                open(part, "w", encoding="utf-8", newline="") as out:
            rows = export_contacts(out, user_id=export.created_by_id, detail=export.description, object_id=export_id,
                                   progress=progress, **selection_args(export.selection))
        os.replace(part, path)
        values = {"status": "succeeded", "rows_done": rows, "total_rows": rows, "stored_path": str(path)}
    except Exception as exc:  # noqa: BLE001 - the export's page shows why it failed
        db.session.rollback()
        current_app.logger.exception("export %s failed", export_id)
        values = {"status": "failed", "error": f"The export stopped: {exc}. Start it again."}
    db.session.execute(update(Export).where(Export.id == export_id).values(finished_at=utcnow(), **values))
    db.session.commit()
    return values["status"]


def recover_exports():
    """Re-enqueue exports whose worker died (stale heartbeat) or whose job Redis lost; they start over."""
    cutoff = utcnow() - timedelta(seconds=current_app.config["EXPORT_STALE_SECONDS"])
    stale = Export.status.in_(("queued", "running")) & (func.coalesce(Export.heartbeat_at, Export.created_at) < cutoff)
    restarted = db.session.scalars(update(Export).where(stale).values(status="queued", heartbeat_at=utcnow())
                                   .returning(Export.id)).all()
    db.session.commit()
    for export_id in restarted:
        enqueue("jobs.exports.run_export_job", export_id)
    return len(restarted)


def visible_export(export_id, user_id):
    """The export if this user asked for it, else None (an export holds the contacts its user may see)."""
    return db.session.scalar(select(Export).where(Export.id == export_id, Export.created_by_id == user_id))
