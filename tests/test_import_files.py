"""Excel uploads: an .xlsx goes through the one importer with the same outcomes as its CSV; broken,
password-protected and old-format workbooks get a clear message and create nothing."""
import csv
import io
from datetime import date, datetime

import pytest
from click.testing import CliRunner
from msoffcrypto.format.ooxml import OOXMLFile
from openpyxl import Workbook
from sqlalchemy import select

from app.import_files import BadFile, excel_cell
from app.models import Contact, Import, ImportRow, ListMember, Property
from tests.test_imports import assert_matches_truth, business_state, count, import_file, make_sample

PEOPLE = [["Full Name", "Cell", "Mail", "Joined"],
          ["Ann Lee", 6172531000, "ann@example.com", datetime(2024, 3, 5)],
          ["No Contact", None, None, None],
          ["Bob Ray", "(617) 253-1001", "BOB@example.com", date(2023, 1, 2)]]


def write_xlsx(path, rows, extra_sheet=None):
    """A workbook written by openpyxl, rows on the first sheet."""
    workbook = Workbook()
    sheet = workbook.active
    for row in rows:
        sheet.append(row)
    if extra_sheet:
        other = workbook.create_sheet("Other")
        for row in extra_sheet:
            other.append(row)
    workbook.save(path)
    return path


def csv_as_xlsx(source, target):
    """The same rows as the CSV file, as text cells of a workbook (what Excel makes of an opened CSV)."""
    with open(source, encoding="utf-8-sig", newline="") as f:
        return write_xlsx(target, list(csv.reader(f)))


@pytest.mark.parametrize("value,text", [(None, ""), (6172531000, "6172531000"), (6172531000.0, "6172531000"),
                                        (1.5, "1.5"), (True, "TRUE"), (datetime(2024, 3, 5), "2024-03-05"),
                                        (datetime(2024, 3, 5, 14, 30), "2024-03-05 14:30:00"),
                                        (date(2023, 1, 2), "2023-01-02"), (" Ann ", " Ann ")])
def test_excel_cells_read_as_the_csv_path_reads_them(value, text):
    assert excel_cell(value) == text


def test_a_propertyradar_workbook_imports_exactly_like_its_csv(app, db, tmp_path):
    path, truth = make_sample(tmp_path, 300, 21, "--messy")
    imp = import_file(csv_as_xlsx(path, tmp_path / "radar.xlsx"))
    assert imp.format == "propertyradar" and imp.filename == "radar.xlsx"
    assert_matches_truth(db, imp, truth)
    from_xlsx = business_state(db)
    db.session.execute(ImportRow.__table__.delete())
    for model in (ListMember, Contact, Property):
        db.session.execute(model.__table__.delete())
    db.session.commit()
    assert_matches_truth(db, import_file(path), truth)
    assert business_state(db) == from_xlsx


def test_xlsx_upload_maps_and_records_an_outcome_per_row(app, db, client_for, post_form, run_jobs, tmp_path):
    marketer = client_for("marketer")
    data = write_xlsx(tmp_path / "people.xlsx", PEOPLE, extra_sheet=[["Ignored", "6175550000"]]).read_bytes()
    post_form(marketer, "/importview/upload", {"file": (io.BytesIO(data), "people.xlsx"), "new_list": "From Excel"},
              content_type="multipart/form-data")
    imp = db.session.scalars(select(Import)).one()
    page = marketer.get(f"/importview/mapping/{imp.id}").get_data(as_text=True)
    assert "Ann Lee" in page and "6172531000" in page and "2024-03-05" in page
    post_form(marketer, f"/importview/mapping/{imp.id}", {"map_0": "name", "map_1": "phone", "map_2": "email",
                                                          "map_3": ""})
    run_jobs()
    db.session.expire_all()
    progress = marketer.get(f"/importview/progress/{imp.id}").get_json()
    assert progress["status"] == "succeeded" and progress["total_rows"] == 3
    assert progress["counts"]["rows"] == {"created": 2, "skipped": 1}
    people = db.session.execute(select(Contact.first_name, Contact.phone, Contact.email).order_by(Contact.phone)).all()
    assert people == [("Ann", "+16172531000", "ann@example.com"), ("Bob", "+16172531001", "bob@example.com")]
    assert count(db, ListMember) == 2


def bad_upload(db, client_for, post_form, data, name):
    marketer = client_for("marketer")
    response = post_form(marketer, "/importview/upload", {"file": (io.BytesIO(data), name), "new_list": "Never"},
                         content_type="multipart/form-data", follow_redirects=True)
    assert count(db, Import) == count(db, Contact) == 0
    assert db.session.scalar(select(Import.id)) is None
    return response.get_data(as_text=True)


def test_a_damaged_workbook_gets_a_clear_message_and_creates_nothing(app, db, client_for, post_form, tmp_path):
    data = write_xlsx(tmp_path / "people.xlsx", PEOPLE).read_bytes()
    page = bad_upload(db, client_for, post_form, data[: len(data) // 2], "people.xlsx")
    assert "people.xlsx cannot be read as an Excel workbook" in page and "save it again" in page
    page = bad_upload(db, client_for, post_form, b"PK\x03\x04\x14\x00\x06\x00" + b"\x00" * 100, "renamed.csv")
    assert "renamed.csv cannot be read as an Excel workbook" in page


def test_a_password_protected_workbook_is_refused_with_what_to_do(app, db, client_for, post_form, tmp_path):
    plain = write_xlsx(tmp_path / "people.xlsx", PEOPLE)
    locked = io.BytesIO()
    with open(plain, "rb") as f:
        OOXMLFile(f).encrypt("s3cret-pass", locked)
    page = bad_upload(db, client_for, post_form, locked.getvalue(), "locked.xlsx")
    assert "locked.xlsx is protected by a password" in page and "clear the password" in page


def test_an_old_format_xls_is_refused_with_save_as_xlsx_or_csv(app, db, client_for, post_form):
    ole = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 504 + "Workbook".encode("utf-16-le") + b"\x00" * 1000
    page = bad_upload(db, client_for, post_form, ole, "old.xls")
    assert "old-format Excel workbook (.xls)" in page and "Excel Workbook (.xlsx)" in page and "CSV UTF-8" in page


def test_cli_imports_a_workbook_and_refuses_a_broken_one(app, db, tmp_path):
    from run import cli

    path = write_xlsx(tmp_path / "people.xlsx", [["First Name", "Last Name", "Phone", "Email"],
                                                 ["Ann", "Lee", 6172531000, None]])
    runner = CliRunner()
    result = runner.invoke(cli, ["import", str(path), "--list", "CLI Excel"])
    assert result.exit_code == 0 and "succeeded" in result.output, result.output
    assert db.session.scalar(select(Contact.phone)) == "+16172531000"
    broken = tmp_path / "broken.xlsx"
    broken.write_bytes(path.read_bytes()[:300])
    result = runner.invoke(cli, ["import", str(broken)])
    assert result.exit_code != 0 and "cannot be read as an Excel workbook" in result.output
    assert count(db, Import) == 1


def test_bad_file_is_what_store_upload_raises(app, tmp_path):
    from app.import_files import store_upload

    with app.app_context(), pytest.raises(BadFile, match="old-format"):
        store_upload(io.BytesIO(b"\xd0\xcf\x11\xe0" + b"\x00" * 600), "old.xls")
