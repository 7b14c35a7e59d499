"""The one CSV importer: PropertyRadar exports, contact files and do-not-contact lists.

The upload screen, the RQ job, the CLI and the tests all call create_import() then
run_import(). The Import row holds the whole state: a checkpoint (rows_done, byte_offset)
committed with every batch, a heartbeat that doubles as the claim token, and one
ImportRow outcome per data row and per person, from which every count is read.
"""
import gc
import logging
import queue
import re
import sys
import threading
from datetime import timedelta
from itertools import islice

from flask import current_app
from flask_appbuilder.security.sqla.models import User
from sqlalchemy import and_, case, exists, func, or_, select, true, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import aliased

from app import audit, bulk, import_report
from app.contacts import normalize_phone
from app.exports import csv_lines
from app.extensions import db
from app.import_batch import FORMATS, PHONE_HEADER, PROPERTYRADAR_REQUIRED, Batch, ImportSettings, is_footer
from app.import_files import BadFile, check_encoding, count_records, inspect_file, records, store_upload
from app.models import ContactList, Import, ImportRow, utcnow
from app.queue import enqueue

log = logging.getLogger(__name__)
FIELD_GUESSES = [
    ("first_name", r"^first[ _]?name$|^first$|^given"), ("last_name", r"^last[ _]?name$|^last$|^surname|^family"),
    ("name", r"^(full[ _]?)?name$|^contact$|^owner$"), ("phone", r"phone|mobile|cell|^tel"),
    ("email", r"e-?mail"), ("mail_address", r"address|street"), ("mail_city", r"city|town"),
    ("mail_state", r"^state$|^st$"), ("mail_zip", r"zip|postal"),
]
MAPPABLE = [field for field, _pattern in FIELD_GUESSES]


class Superseded(Exception):
    """Another worker took this import over (our heartbeat went stale)."""


def detect_format(header):
    return "propertyradar" if PROPERTYRADAR_REQUIRED <= set(header) else "contacts"


def guess_mapping(header):
    """The mapping used last time for this exact header, else a guess from the column names."""
    for (mapping,) in db.session.execute(select(Import.mapping).where(
            Import.format == "contacts", Import.mapping.is_not(None)).order_by(Import.id.desc()).limit(200)):
        if mapping and list(mapping) == list(header):
            return mapping
    mapping, used = {}, set()
    for column in header:
        name = column.strip().lower()
        field = next((f for f, pattern in FIELD_GUESSES if f not in used and re.search(pattern, name)), None)
        mapping[column] = field
        used.add(field)
    return mapping


def check_mapping(mapping):
    fields = set((mapping or {}).values())
    if not fields & {"phone", "email"}:
        raise BadFile("Map a Phone or an Email column: without either, no row can become a contact.")
    unknown = fields - set(MAPPABLE) - {None}
    if unknown:
        raise BadFile(f"Unknown field(s) in the mapping: {', '.join(sorted(unknown))}.")


def get_or_create_list(name):
    contact_list = db.session.scalar(select(ContactList).filter_by(name=name))
    if contact_list is None:
        contact_list = ContactList(name=name)
        db.session.add(contact_list)
        db.session.flush()
    return contact_list


def create_import(stream, filename, fmt="auto", list_name=None, list_id=None, mapping=None, overwrite=None,
                  user_id=None, confirm_mapping=False):
    """Store the file and record an Import: queued, 'mapping' (waiting for the user) or failed.

    Raises BadFile only for a file above the size limit (it is never stored)."""
    path, size, sha256 = store_upload(stream, filename)
    imp = Import(filename=filename[:255], size=size, sha256=sha256, stored_path=path, format=fmt,
                 overwrite=sorted(overwrite or []), created_by_id=user_id, status="queued")
    if list_name:
        imp.list_id = get_or_create_list(list_name).id
    elif list_id:
        imp.list_id = list_id
    try:
        info = inspect_file(path)
        imp.encoding, imp.delimiter = info["encoding"], info["delimiter"]
        if fmt == "auto":
            imp.format = detect_format(info["header"])
        if imp.format == "contacts":
            imp.mapping = mapping or guess_mapping(info["header"])
            if confirm_mapping:
                imp.status = "mapping"
            else:
                check_mapping(imp.mapping)
    except BadFile as exc:
        imp.status, imp.error, imp.finished_at = "failed", str(exc), utcnow()
    db.session.add(imp)
    db.session.commit()
    return imp


def confirm_mapping(imp, mapping, overwrite=()):
    """The user's mapping for a contacts file; BadFile if it cannot work."""
    check_mapping(mapping)
    imp.mapping, imp.overwrite, imp.status = mapping, sorted(overwrite), "queued"
    db.session.commit()


def start_import(import_id):
    """Put the import on the queue (workers claim it; duplicates are harmless)."""
    enqueue("jobs.imports.run_import_job", import_id, job_timeout=24 * 3600)


def cancel_import(import_id):
    """Queued imports stop now; running ones at the next batch boundary."""
    db.session.execute(update(Import).where(Import.id == import_id, Import.status.in_(("queued", "mapping")))
                       .values(status="cancelled", cancel_requested=True, finished_at=utcnow()))
    db.session.execute(update(Import).where(Import.id == import_id, Import.status == "running")
                       .values(cancel_requested=True))
    db.session.commit()


def _stale_before():
    return utcnow() - timedelta(seconds=current_app.config["IMPORT_STALE_SECONDS"])


def claim_import(import_id):
    """Take a queued import with a conditional UPDATE: a Claim, or None when another worker has it."""
    token = utcnow()
    result = db.session.execute(
        update(Import).where(Import.id == import_id, Import.status == "queued", Import.cancel_requested.is_(False))
        .values(status="running", heartbeat_at=token, started_at=func.coalesce(Import.started_at, token)))
    db.session.commit()
    return Claim(import_id, token) if result.rowcount == 1 else None


class Claim:
    """Our hold on a running import: the heartbeat we committed last. A checkpoint moves it on,
    in the caller's transaction, only while no other worker has taken the import over; commit()
    makes the new heartbeat ours. A rolled-back checkpoint leaves the committed one standing,
    so the error path can still finish the import."""

    def __init__(self, import_id, token):
        self.import_id, self.token, self.pending = import_id, token, token

    def checkpoint(self, **values):
        """Returns (whether a cancel was requested, data rows done); Superseded if the import is not ours."""
        now = max(utcnow(), self.pending + timedelta(microseconds=1))
        # pending: written earlier in this transaction; token: the last one committed
        rows = db.session.execute(
            update(Import).where(Import.id == self.import_id, Import.heartbeat_at.in_({self.token, self.pending}),
                                 Import.status == "running").values(heartbeat_at=now, **values)
            .returning(Import.cancel_requested, Import.rows_done)).all()
        if len(rows) != 1:
            db.session.rollback()
            raise Superseded(self.import_id)
        self.pending = now
        return rows[0][0], rows[0][1]

    def commit(self):
        db.session.commit()
        self.token = self.pending


def recover_imports():
    """Re-enqueue imports whose worker died (stale heartbeat) or whose job Redis lost."""
    cutoff = _stale_before()
    stale = or_(Import.status == "running", Import.status == "queued") & (
        func.coalesce(Import.heartbeat_at, Import.created_at) < cutoff)
    count = 0
    for import_id in db.session.scalars(select(Import.id).where(stale)).all():
        result = db.session.execute(update(Import).where(Import.id == import_id, stale)
                                    .values(status="queued", heartbeat_at=utcnow()))
        db.session.commit()
        if result.rowcount == 1:
            start_import(import_id)
            count += 1
    return count


def run_import(import_id, progress=None):
    """Claim the import and run it from its checkpoint to the end. Returns the final status.

    Any error ends the import as failed at once, with its reason, except a lost database
    connection: the import stays running and recovery resumes it from its checkpoint."""
    claim = claim_import(import_id)
    if claim is None:
        return None
    # Batches allocate millions of short-lived containers; while frozen, the full collections
    # they trigger skip the app's and libraries' long-lived objects (~90 ms a collection).
    gc.freeze()
    # The reader thread holds the GIL while it parses; a short switch interval hands it back to
    # the writer within 0.5 ms of each database reply instead of 5 ms.
    interval = sys.getswitchinterval()
    sys.setswitchinterval(0.0005)
    try:
        return _run(claim, progress)
    except Superseded:
        log.warning("import %s was taken over by another worker", import_id)
        return None
    except BadFile as exc:
        db.session.rollback()
        return _finish(claim, "failed", str(exc))
    except DBAPIError as exc:
        db.session.rollback()
        if exc.connection_invalidated:
            raise  # left running: recovery resumes it from the checkpoint
        log.exception("import %s failed", import_id)
        return _finish(claim, "failed", _stopped_by(f"a database error: {str(exc.orig).strip()[:300]}"))
    except Exception as exc:
        db.session.rollback()
        log.exception("import %s failed", import_id)
        return _finish(claim, "failed", _stopped_by(f"an unexpected error: {type(exc).__name__}: {str(exc)[:300]}"))
    finally:
        sys.setswitchinterval(interval)
        gc.unfreeze()


def _stopped_by(what):
    return (f"The import stopped on {what}. The rows before it are imported (see the counts); the log "
            "has details. Upload the file again to import the rest: rows already imported stay unchanged.")


def _settings(imp, header):
    phone_column = next((i for i, c in enumerate(header or []) if PHONE_HEADER.search(c)), 0)
    return ImportSettings(import_id=imp.id, format=imp.format, header=header, path=imp.stored_path,
                          encoding=imp.encoding, delimiter=imp.delimiter,
                          region=current_app.config["DEFAULT_REGION"], mapping=imp.mapping or {},
                          overwrite=frozenset(imp.overwrite or []), list_id=imp.list_id, user_id=imp.created_by_id,
                          filename=imp.filename, phone_column=phone_column if imp.format == "dnc" else 0)


def _header(f, imp):
    """(header cells or None, byte offset of the first data row)."""
    first = next(records(f, imp.encoding, imp.delimiter, 0), None)
    if first is None:
        raise BadFile("The file is empty. Export the list again and upload the new file.")
    cells, end = first
    if imp.format == "dnc" and len(cells) <= 3:
        if any(normalize_phone(c.strip()) for c in cells):
            return None, 0  # a bare list of numbers, no header
    if imp.format == "propertyradar" and not PROPERTYRADAR_REQUIRED <= set(cells):
        raise BadFile("This file does not have a PropertyRadar header. Choose the 'contacts' format to map it.")
    return cells, end


def _run(claim, progress):
    import_id = claim.import_id
    imp = db.session.get(Import, import_id)
    batch_size = current_app.config["IMPORT_BATCH_SIZE"]
    first_run = imp.total_rows is None
    if first_run:
        imp.encoding = check_encoding(imp.stored_path, imp.encoding)
    with open(imp.stored_path, "rb") as f:
        header, start = _header(f, imp)
        if first_run:
            footer = is_footer if imp.format == "propertyradar" else None
            total = count_records(imp.stored_path, imp.encoding, imp.delimiter, skip=footer) - (1 if header else 0)
            if total <= 0:
                raise BadFile("The file has a header but no data rows.")
            claim.checkpoint(encoding=imp.encoding, total_rows=total)
            claim.commit()
        total = imp.total_rows
        settings = _settings(imp, header)
        ahead = ParseAhead(_parsed(f, settings, max(start, imp.byte_offset),
                                   _last_line(import_id), batch_size))
        cancel = False
        try:
            for number, (batch, _line, end) in enumerate(ahead, 1):
                if cancel:  # requested while the previous batch was written: stop at this boundary
                    return _finish(claim, "cancelled", None)
                cancel, done = _save_batch(settings, batch, end, claim)
                if number == 1:
                    _analyze()
                if progress:
                    progress(done, total)
        finally:
            ahead.close()
    return _finish(claim, "succeeded", None)


def _last_line(import_id):
    """The file line the committed outcomes reach (every line has one): where a resumed run goes on."""
    return db.session.scalar(select(func.coalesce(func.max(ImportRow.line), 0))
                             .where(ImportRow.import_id == import_id))


def _parsed(f, settings, offset, line, batch_size):
    """(parsed batch, its last line, byte offset after it) from the file, batch by batch."""
    rows, start = [], offset
    for cells, end in records(f, settings.encoding, settings.delimiter, offset):
        line += 1
        rows.append((line, cells))
        if len(rows) >= batch_size:
            yield _parse(settings, rows, start), line, end
            rows, start = [], end
    if rows:
        yield _parse(settings, rows, start), line, end


NUL_REASON = "a cell holds a NUL byte (\\x00), which no text field can store; remove it and import the row again"


def _parse(settings, rows, start=None):
    """A parsed Batch; start (the byte offset of its first row) lets it be read again."""
    # PostgreSQL text cannot hold a NUL byte: such a row is an error on every database.
    nul = {line: cells for line, cells in rows if "\x00" in "".join(cells)}
    batch = Batch(settings, [row for row in rows if row[0] not in nul] if nul else rows)
    FORMATS[settings.format].parse(batch)
    for line, cells in nul.items():
        batch.row(line, "error", NUL_REASON, [c.replace("\x00", "") for c in cells])
    batch.rows = None  # parsed: the cells of rejected rows stay in batch.rejected, the rest can go
    batch.start, batch.first_line, batch.size = start, rows[0][0], len(rows)
    return batch


class ParseAhead:
    """Iterate over a generator that runs in a thread one or two items ahead: the next batch is
    read and parsed while the database writes this one (the driver releases the GIL while it
    waits). Exceptions reach the consumer in order; close() stops the thread."""
    _END = object()

    def __init__(self, source, depth=2):
        self.queue, self.stop = queue.Queue(maxsize=depth), threading.Event()
        self.thread = threading.Thread(target=self._fill, args=(source,), name="import-parse", daemon=True)
        self.thread.start()

    def _put(self, item):
        while not self.stop.is_set():
            try:
                self.queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _fill(self, source):
        try:
            for item in source:
                if not self._put(item):
                    return
            self._put(self._END)
        except BaseException as exc:  # handed to the consumer, which raises it
            self._put(exc)

    def __iter__(self):
        while (item := self.queue.get()) is not self._END:
            if isinstance(item, BaseException):
                raise item
            yield item

    def close(self):
        self.stop.set()
        self.thread.join()


def _save_batch(settings, batch, end, claim):
    """One transaction: the rows' effects, their outcomes and the checkpoint. A batch the database
    refuses is written again apart, so that only the rows it refuses fail.

    Returns (whether a cancel was requested, data rows done)."""
    with audit.bulk():
        try:
            _begin_batch()
            FORMATS[settings.format].save(db.session, batch)
            batch.save_outcomes(db.session)
            data_rows = batch.data_rows()
        except Exception as exc:
            if not bulk.refused(db.session, exc):
                raise
            db.session.rollback()
            log.warning("import %s: lines %s-%s refused (%s); writing them apart", settings.import_id,
                        batch.first_line, batch.first_line + batch.size - 1, exc)
            _begin_batch()
            claim.checkpoint()  # still ours? (and on SQLite the write that opens the transaction)
            data_rows = _save_apart(settings, _read_again(settings, batch))
        checkpoint = claim.checkpoint(rows_done=Import.rows_done + data_rows, byte_offset=end)
        claim.commit()
    return checkpoint


def _begin_batch():
    bulk.tune_batch(db.session)


def _read_again(settings, batch):
    """The (line, cells) of a batch, read from the file again (a parsed batch keeps no cells)."""
    with open(settings.path, "rb") as f:
        found = islice(records(f, settings.encoding, settings.delimiter, batch.start), batch.size)
        return [(batch.first_line + i, cells) for i, (cells, _end) in enumerate(found)]


def _save_apart(settings, rows):
    """Write rows in halves, each under a savepoint, down to single rows: a row the database
    refuses becomes that row's error and the others are written. Returns the data rows done."""
    try:
        with db.session.begin_nested():
            batch = _parse(settings, rows)
            FORMATS[settings.format].save(db.session, batch)
            batch.save_outcomes(db.session)
        return batch.data_rows()
    except Exception as exc:
        if not bulk.refused(db.session, exc):
            raise
        refusal = exc
    if len(rows) > 1:
        half = len(rows) // 2
        return _save_apart(settings, rows[:half]) + _save_apart(settings, rows[half:])
    (line, cells), = rows
    reason = str(getattr(refusal, "orig", refusal)).strip().splitlines()[0][:300]
    refused = Batch(settings, [])
    refused.row(line, "error", f"the database refused this row: {reason}", [c.replace("\x00", "") for c in cells])
    refused.save_outcomes(db.session)
    return 1


def _analyze():
    """Fresh planner statistics while tables grow from empty (else PostgreSQL keeps seq-scanning)."""
    bulk.analyze(db.session, "contacts", "properties", "contact_properties", "list_members", "opt_outs")


def _finish(claim, status, error):
    import_id = claim.import_id
    try:
        claim.checkpoint(status=status, error=error, finished_at=utcnow())
    except Superseded:
        return None
    imp = db.session.get(Import, import_id)
    user = db.session.get(User, imp.created_by_id) if imp.created_by_id else None
    with audit.acting_as(imp.created_by_id, user.username if user else "system"):
        audit.record("import", "imports", import_id, changes=import_counts(import_id),
                     detail=f"{imp.filename}: {status}" + (f" ({error})" if error else ""))
    claim.commit()
    return status


def import_counts(import_id):
    """{'rows': {outcome: n}, 'people': {outcome: n}, 'sharing': {outcome: n}, 'footer': n}, read from
    the outcome rows.

    'rows' counts data rows only: PropertyRadar's licence footer is recorded but is no data row.
    'sharing' counts the co-owners among 'people' who are the primary owner's contact (same phone
    or email): one contact for both."""
    groups = _outcome_groups(import_id)
    return _counts(db.session.execute(select(groups.c.person, groups.c.outcome, groups.c.shared, groups.c.n)))


def _outcome_groups(import_id):
    """Outcome rows of one import counted per person slot, outcome and "shares the primary's contact"."""
    primary = aliased(ImportRow)
    same_contact = exists().where(primary.import_id == ImportRow.import_id, primary.line == ImportRow.line,
                                  primary.person == 1, primary.contact_id == ImportRow.contact_id)
    shared = case((and_(ImportRow.person == 2, same_contact), 1), else_=0)
    inner = (select(ImportRow.person, ImportRow.outcome, shared.label("shared"))
             .where(ImportRow.import_id == import_id).subquery())
    return (select(inner.c.person, inner.c.outcome, inner.c.shared, func.count().label("n"))
            .group_by(inner.c.person, inner.c.outcome, inner.c.shared).subquery())


def _counts(groups):
    counts = {"rows": {}, "people": {}, "sharing": {}, "footer": 0}
    for person, outcome, shared, n in groups:
        if outcome == "footer":
            counts["footer"] += n
        elif outcome is not None:
            group = counts["people" if person else "rows"]
            group[outcome] = group.get(outcome, 0) + n
            if shared:
                counts["sharing"][outcome] = counts["sharing"].get(outcome, 0) + n
    return counts


PROGRESS_FIELDS = ("id", "filename", "format", "status", "rows_done", "total_rows", "error", "created_at",
                   "started_at", "finished_at")


def progress_of(import_id):
    """Everything the import page shows, from one statement (one snapshot of the database): the
    import's state and checkpoint with its outcome counts, rows per second and time left.
    None when there is no such import."""
    groups = _outcome_groups(import_id)
    found = db.session.execute(
        select(*(getattr(Import, field) for field in PROGRESS_FIELDS), ContactList.name,
               groups.c.person, groups.c.outcome, groups.c.shared, groups.c.n)
        .outerjoin(ContactList, ContactList.id == Import.list_id).outerjoin(groups, true())
        .where(Import.id == import_id)).all()
    if not found:
        return None
    imp = dict(zip(PROGRESS_FIELDS, found[0], strict=False))
    imp["list"] = found[0][len(PROGRESS_FIELDS)]
    imp["counts"] = _counts(row[-4:] for row in found)
    imp["format_name"] = import_report.FORMAT_NAMES.get(imp["format"], imp["format"] or "")
    imp["report"] = import_report.report_lines(imp["format"], imp["counts"])
    elapsed = ((imp["finished_at"] or utcnow()) - imp["started_at"]).total_seconds() if imp["started_at"] else 0
    rate = imp["rows_done"] / elapsed if elapsed > 0 else 0
    left = (imp["total_rows"] - imp["rows_done"]) / rate if rate and imp["total_rows"] else None
    imp.update(rows_per_second=round(rate, 1), seconds_left=None if left is None else round(left))
    return imp


def rejected_rows_csv(imp):
    """The skipped and failed rows as CSV lines: the original columns plus a reason column, formula-safe
    and audited as an export of the import's rows."""
    reasons, raws = {}, {}
    query = (select(ImportRow.line, ImportRow.reason, ImportRow.raw).where(
        ImportRow.import_id == imp.id, or_(ImportRow.outcome.in_(("skipped", "error")), ImportRow.raw.is_not(None)))
        .order_by(ImportRow.line, ImportRow.person))
    for line, reason, raw in db.session.execute(query):
        if reason:
            reasons.setdefault(line, []).append(reason)
        if raw is not None:
            raws[line] = raw
    with open(imp.stored_path, "rb") as f:
        first = next(records(f, imp.encoding or "utf-8", imp.delimiter or ",", 0), ([], 0))[0]
    rows = ([*raws[line], "; ".join(reasons.get(line, []))] for line in sorted(raws))
    return csv_lines("import_rows", [*first, "reason"], rows, object_id=imp.id,
                     detail=f"rejected rows of import {imp.id} ({imp.filename})")
