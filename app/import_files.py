"""Reading import files: storage (an Excel workbook becomes CSV), encoding and delimiter detection,
streaming records with byte offsets."""
import codecs
import csv
import hashlib
import os
import shutil
import tempfile
import zipfile
from datetime import date, datetime, time
from pathlib import Path

from flask import current_app
from openpyxl import load_workbook
from openpyxl.utils.exceptions import InvalidFileException

from app.import_batch import is_footer

CELL_LIMIT_MB = 16
csv.field_size_limit(CELL_LIMIT_MB * 1024 * 1024)  # long cells become a row error, not a reader crash
SAMPLE_BYTES = 64 * 1024
DELIMITERS = [",", ";", "\t", "|"]
ZIP_MAGIC = b"PK\x03\x04"  # .xlsx (a zip of XML parts)
OLE_MAGIC = b"\xd0\xcf\x11\xe0"  # .xls (Excel 97-2003), or an .xlsx encrypted with a password
ENCRYPTED_PACKAGE = "EncryptedPackage".encode("utf-16-le")  # the stream name a password-protected .xlsx holds


class BadFile(ValueError):
    """A file the user gave us that cannot be imported; the message says what to do."""


def store_upload(stream, filename):
    """Copy an uploaded or local file into UPLOAD_FOLDER. Returns (path, size, sha256).

    A file whose lines end in a bare CR (Excel's "CSV (Macintosh)") is stored with LF endings."""
    limit = current_app.config["MAX_UPLOAD_MB"] * 1024 * 1024
    folder = Path(current_app.config["UPLOAD_FOLDER"])
    folder.mkdir(parents=True, exist_ok=True)
    digest, size, bare_cr = hashlib.sha256(), 0, None
    with tempfile.NamedTemporaryFile(dir=folder, delete=False, suffix=".part") as out:
        try:
            while chunk := stream.read(1024 * 1024):
                if bare_cr is None:
                    bare_cr = b"\r" in chunk and b"\n" not in chunk
                if bare_cr:
                    chunk = chunk.replace(b"\r", b"\n")
                size += len(chunk)
                if size > limit:
                    raise BadFile(f"{filename} is larger than the {current_app.config['MAX_UPLOAD_MB']} MB limit. "
                                  "Split it into smaller files and import each one.")
                digest.update(chunk)
                out.write(chunk)
        except BaseException:
            out.close()
            os.unlink(out.name)
            raise
    path = folder / f"{digest.hexdigest()}.csv"
    try:
        _store_as_csv(out.name, path, filename)
    finally:
        if os.path.exists(out.name):
            os.unlink(out.name)
    return str(path), size, digest.hexdigest()


def _store_as_csv(part, path, filename):
    """Move a stored upload to path; an Excel workbook is written there as CSV (BadFile when it cannot be)."""
    with open(part, "rb") as f:
        head = f.read(4)
    if head == OLE_MAGIC:
        if _contains(part, ENCRYPTED_PACKAGE):
            raise BadFile(f"{filename} is protected by a password, which the CRM cannot open. In Excel choose "
                          "File > Info > Protect Workbook > Encrypt with Password, clear the password, save, and "
                          "upload the file again.")
        raise BadFile(f"{filename} is an old-format Excel workbook (.xls), which the CRM does not read. In Excel "
                      "choose File > Save As > 'Excel Workbook (.xlsx)' or 'CSV UTF-8' and upload that file.")
    if head == ZIP_MAGIC:
        converted = f"{part}.csv"
        try:
            xlsx_to_csv(part, converted, filename)
            shutil.move(converted, path)
        finally:
            if os.path.exists(converted):
                os.unlink(converted)
        return
    shutil.move(part, path)  # same content, same name: storing a file twice is harmless


def _contains(path, needle):
    """Whether the file holds these bytes, read a megabyte at a time."""
    tail = b""
    with open(path, "rb") as f:
        while chunk := f.read(1024 * 1024):
            if needle in tail + chunk:
                return True
            tail = chunk[-len(needle):]
    return False


def xlsx_to_csv(source, target, filename="The workbook"):
    """The first sheet of an .xlsx workbook as a UTF-8 CSV file, read row by row (read-only mode never
    holds the sheet in memory). Cells read as a CSV export would show them: whole numbers without
    ".0", dates as YYYY-MM-DD, empty cells empty; blank rows are left out, every row is as wide as the
    header, and PropertyRadar's licence line stays one cell, as in the CSV export."""
    with open(source, "rb") as f:  # a file object: openpyxl judges a path by its extension
        try:
            workbook = load_workbook(f, read_only=True, data_only=True)
        except (zipfile.BadZipFile, InvalidFileException, KeyError, OSError, ValueError) as exc:
            raise BadFile(f"{filename} cannot be read as an Excel workbook ({exc}). Open it in Excel, save it "
                          "again as .xlsx or 'CSV UTF-8', and upload the new file.") from exc
        try:
            with open(target, "w", encoding="utf-8", newline="") as out:
                writer, width = csv.writer(out), None
                for values in workbook.worksheets[0].iter_rows(values_only=True):
                    cells = _trimmed([excel_cell(value) for value in values])
                    if not cells:
                        continue
                    width = width or len(cells)  # the header's
                    writer.writerow(cells if is_footer(cells) else cells + [""] * (width - len(cells)))
        except (zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
            raise BadFile(f"{filename} is damaged: its first sheet cannot be read ({exc}). Open it in Excel, save "
                          "it again as .xlsx or 'CSV UTF-8', and upload the new file.") from exc
        finally:
            workbook.close()


def _trimmed(cells):
    """Cells without the empty ones at the end (a sheet pads every row to its widest)."""
    while cells and not cells[-1]:
        cells.pop()
    return cells


def excel_cell(value):
    """One cell's text as the CSV path would read it."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == time() else value.isoformat(sep=" ")
    if isinstance(value, date | time):
        return value.isoformat()
    return str(value)


def _decode_sample(sample):
    for encoding in ("utf-8-sig" if sample.startswith(codecs.BOM_UTF8) else "utf-8", "cp1252"):
        try:
            return encoding, codecs.getincrementaldecoder(encoding)().decode(sample)
        except UnicodeDecodeError as exc:
            bad = exc.start
    raise BadFile(_unreadable(sample[bad], bad))


def _unreadable(byte, position):
    return (f"The file is not UTF-8 or Windows-1252 text (byte 0x{byte:02X} at position {position} is neither). "
            "Save it again as 'CSV UTF-8' and upload the new file.")


def inspect_file(path, rows=5):
    """Header, delimiter, likely encoding and the first rows, from the start of the file."""
    with open(path, "rb") as f:
        sample = f.read(SAMPLE_BYTES)
    if not sample.strip():
        raise BadFile("The file is empty. Export the list again and upload the new file.")
    if sample.startswith((ZIP_MAGIC, OLE_MAGIC)):
        raise BadFile("This is an Excel workbook, not a CSV file. In Excel choose File > Save As > "
                      "'CSV UTF-8 (Comma delimited)' and upload that file.")
    if b"\x00" in sample:
        raise BadFile("This is not a text file (it contains binary data). Upload a CSV file.")
    encoding, text = _decode_sample(sample)
    first_line = text.lstrip("\ufeff").splitlines()[0] if text.strip() else ""
    delimiter = max(DELIMITERS, key=first_line.count)
    if not first_line.count(delimiter):
        delimiter = ","
    with open(path, "rb") as f:
        head = []
        for cells, _offset in records(f, encoding, delimiter, 0):
            head.append(cells)
            if len(head) > rows:
                break
    return {"encoding": encoding, "delimiter": delimiter, "header": head[0] if head else [], "rows": head[1:]}


def check_encoding(path, encoding):
    """The encoding the whole file decodes with: the guess, else cp1252. BadFile if neither."""
    candidates = [encoding] if encoding == "cp1252" else [encoding, "cp1252"]
    for candidate in candidates:
        decoder, position = codecs.getincrementaldecoder(candidate)(), 0
        try:
            with open(path, "rb") as f:
                while chunk := f.read(1024 * 1024):
                    decoder.decode(chunk)
                    position += len(chunk)
                decoder.decode(b"", final=True)
            return candidate
        except UnicodeDecodeError as exc:
            bad, byte = position + exc.start, exc.object[exc.start]
    raise BadFile(_unreadable(byte, bad))


def records(f, encoding, delimiter, offset):
    """Yield (cells, byte offset just after the record) from a binary file, skipping blank lines.

    BadFile when a record cannot be read (a cell over CELL_LIMIT_MB)."""
    f.seek(offset)
    position = [offset]

    def lines():
        for raw in f:
            position[0] += len(raw)
            yield raw.decode(encoding)

    reader = csv.reader(lines(), delimiter=delimiter, strict=False)
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise BadFile(_unreadable_record(offset, reader.line_num, exc)) from exc
        if not cells or (len(cells) == 1 and not cells[0].strip()):
            continue
        yield cells, position[0]


def _unreadable_record(offset, line, exc):
    where = f"line {line}" if offset == 0 else f"line {line} after byte {offset}"
    if "field larger than field limit" in str(exc):
        return (f"A cell ending on {where} of the file is larger than {CELL_LIMIT_MB} MB, the most one cell can "
                "hold. Remove or shorten it and upload the file again.")
    return f"The file cannot be read as CSV at {where} ({exc}). Fix that line and upload the file again."


def count_records(path, encoding, delimiter, skip=None):
    """Records in the file, leaving out those skip(cells) is true for."""
    with open(path, "rb") as f:
        return sum(1 for cells, _end in records(f, encoding, delimiter, 0) if not (skip and skip(cells)))
