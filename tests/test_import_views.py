"""Through the web: upload, mapping, progress JSON, result counts, rejected rows; CLI and export."""
import csv
import io
import re
import signal
import time

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from app.models import Contact, Import, ImportRow
from tests.conftest import start_worker
from tests.test_imports import assert_matches_truth, business_state, import_file, make_sample


def test_upload_mapping_progress_and_rejected_download(app, db, client_for, post_form, run_jobs):
    marketer = client_for("marketer")
    assert "Import a list" in marketer.get("/contactview/list/").get_data(as_text=True)
    assert marketer.get("/importview/upload").status_code == 200
    data = b"Full Name,Cell,Mail\nAnn Lee,617-253-1000,ann@example.com\nNo Contact,,\n"
    response = post_form(marketer, "/importview/upload", {"file": (io.BytesIO(data), "people.csv"),
                                                          "new_list": "Web list"},
                         content_type="multipart/form-data")
    imp = db.session.scalars(select(Import)).one()
    assert response.headers["Location"].endswith(f"/importview/mapping/{imp.id}")
    page = marketer.get(f"/importview/mapping/{imp.id}").get_data(as_text=True)
    assert "Ann Lee" in page and 'value="phone" selected' in page
    response = post_form(marketer, f"/importview/mapping/{imp.id}", {"map_0": "name", "map_1": "", "map_2": ""})
    assert "Map a Phone or an Email column" in response.get_data(as_text=True)
    post_form(marketer, f"/importview/mapping/{imp.id}", {"map_0": "name", "map_1": "phone", "map_2": "email"})
    run_jobs()
    db.session.expire_all()  # the test client shares this test's session
    progress = marketer.get(f"/importview/progress/{imp.id}").get_json()
    assert progress["status"] == "succeeded" and progress["rows_done"] == progress["total_rows"] == 2
    assert progress["counts"]["rows"] == {"created": 1, "skipped": 1}
    assert [(line["label"], line["count"]) for line in progress["report"]] == [
        ("Rows in the file", 2), ("Contacts created", 1), ("Contacts updated", 0), ("Contacts already there", 0),
        ("People skipped (no phone or email)", 1), ("Rows with errors", 0)]
    page = marketer.get(f"/importview/show/{imp.id}").get_data(as_text=True)
    assert "import-progress" in page and "<td>Contacts file</td>" in page
    rejected = marketer.get(f"/importview/rejected/{imp.id}").get_data(as_text=True).splitlines()
    assert rejected == ["Full Name,Cell,Mail,reason", "No Contact,,,no phone or email"]
    ann = db.session.scalars(select(Contact)).one()
    assert (ann.first_name, ann.last_name, ann.phone) == ("Ann", "Lee", "+16172531000")


def test_the_import_page_shows_one_state_and_leaves_the_licence_line_out(app, db, client_for, post_form,
                                                                       run_jobs, tmp_path):
    path, truth = make_sample(tmp_path, 30, 14)  # 30 data rows, then PropertyRadar's licence line
    assert truth["data_rows"] == 30
    marketer = client_for("marketer")
    post_form(marketer, "/importview/upload", {"file": (io.BytesIO(path.read_bytes()), "radar.csv"),
                                               "new_list": "Radar"}, content_type="multipart/form-data")
    imp = db.session.scalars(select(Import)).one()
    queued = marketer.get(f"/importview/show/{imp.id}").get_data(as_text=True)
    assert shown(queued, "import-status") == shown(queued, "details-status") == "queued"
    fields = set(re.findall(r'data-field="(\w+)"', queued))
    assert {"status", "rows_done", "total_rows", "finished_at"} <= fields
    run_jobs()
    db.session.expire_all()
    data_rows = db.session.scalar(select(func.count()).select_from(ImportRow).where(
        ImportRow.import_id == imp.id, ImportRow.person == 0, ImportRow.outcome != "footer"))
    created = db.session.scalar(select(func.count()).select_from(ImportRow).where(
        ImportRow.import_id == imp.id, ImportRow.person == 0, ImportRow.outcome == "created"))
    assert data_rows == created == 30
    progress = marketer.get(f"/importview/progress/{imp.id}").get_json()
    assert fields <= set(progress)  # the poll refreshes every field of the page
    assert (progress["status"], progress["rows_done"], progress["total_rows"]) == ("succeeded", 30, 30)
    assert progress["finished_at"] and progress["counts"]["rows"] == {"created": 30}
    page = marketer.get(f"/importview/show/{imp.id}").get_data(as_text=True)
    assert shown(page, "import-status") == shown(page, "details-status") == "succeeded"
    assert shown(page, "import-done") == shown(page, "details-rows_done") == "30"
    assert shown(page, "import-total") == shown(page, "details-total_rows") == "30"
    assert shown(page, "details-finished_at") == progress["finished_at"]
    assert "<th>Properties created</th><td>30</td>" in page and "licence line" in page
    assert "<td>PropertyRadar export</td>" in page and progress["format_name"] == "PropertyRadar export"
    assert re.fullmatch(r"[A-Z][a-z]{2} \d{1,2}, \d{4} \d{1,2}:\d\d [AP]M E[SD]T", progress["finished_at"])
    assert 'class="col-xs-12" id="import-report"' in page  # inside the page's margins on a phone


def count_rows(db, import_id, *where):
    return db.session.scalar(select(func.count()).select_from(ImportRow).where(ImportRow.import_id == import_id,
                                                                                 *where))


def test_the_import_report_says_what_the_file_made_in_the_owners_words(app, db, client_for, tmp_path):
    path, truth = make_sample(tmp_path, 400, 11, "--messy")
    imp = import_file(path)
    rows = {o: count_rows(db, imp.id, ImportRow.person == 0, ImportRow.outcome == o)
            for o in ("created", "updated", "unchanged", "skipped", "error")}
    people = {o: count_rows(db, imp.id, ImportRow.person > 0, ImportRow.outcome == o)
              for o in ("created", "updated", "unchanged", "skipped")}
    sharing = dict(db.session.execute(select(ImportRow.outcome, func.count()).where(
        ImportRow.import_id == imp.id, ImportRow.person == 2,
        ImportRow.reason.like("same % as the primary owner: one contact for both")).group_by(ImportRow.outcome)).all())
    assert sum(sharing.values()) > 0
    progress = client_for("marketer").get(f"/importview/progress/{imp.id}").get_json()
    report = {line["key"]: line["count"] for line in progress["report"]}
    assert report["rows"] == truth["data_rows"] == 400
    assert (report["properties_created"], report["properties_updated"], report["properties_unchanged"],
            report["rows_error"]) == (rows["created"], rows["updated"], rows["unchanged"], rows["error"])
    assert report["contacts_created"] == people["created"] == db.session.scalar(select(func.count(Contact.id)))
    assert report["co_owners_sharing"] == sum(sharing.values())
    assert report["contacts_unchanged"] == people["unchanged"] - sharing.get("unchanged", 0)
    assert report["contacts_updated"] == people["updated"] - sharing.get("updated", 0)
    assert report["people_skipped"] == people["skipped"] == truth["people_without_contact"]
    assert report["properties_created"] + report["properties_updated"] + report["properties_unchanged"] \
        + report["rows_error"] + report.get("rows_skipped", 0) == report["rows"]
    assert report["contacts_created"] + report["contacts_updated"] + report["contacts_unchanged"] \
        + report["co_owners_sharing"] + report["people_skipped"] == report["people"] == sum(people.values())
    assert progress["counts"]["people"]["unchanged"] == people["unchanged"]  # the API's fields stay
    page = client_for("marketer").get(f"/importview/show/{imp.id}").get_data(as_text=True)
    for label in ("Rows in the file", "Properties created", "Contacts created", "Contacts already there",
                  "Co-owners sharing the primary owner&#39;s contact", "People skipped (no phone or email)",
                  "Rows with errors"):
        assert f"<th>{label}</th>" in page
    assert "people unchanged" not in page and "rows created" not in page


def shown(page, element):
    """The text of the element with this id, or of the details cell for "details-<field>"."""
    if element.startswith("details-"):
        match = re.search(rf'data-field="{element[8:]}">([^<]*)<', page)
    else:
        match = re.search(rf'id="{element}">([^<]*)<', page)
    return match.group(1).strip()


def test_upload_above_the_size_limit_says_so(app, db, client_for, post_form, monkeypatch):
    monkeypatch.setitem(app.config, "MAX_UPLOAD_MB", 1)
    marketer = client_for("marketer")
    data = b"Name,Phone\n" + b"Ann,617-253-1000\n" * 70000
    response = post_form(marketer, "/importview/upload", {"file": (io.BytesIO(data), "big.csv")},
                         content_type="multipart/form-data", follow_redirects=True)
    assert "larger than the 1 MB limit" in response.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(Import)) == 0


def test_an_excel_macintosh_file_with_bare_cr_line_endings_imports(app, db, client_for, post_form, run_jobs,
                                                                     tmp_path):
    path, truth = make_sample(tmp_path, 120, 17)
    mac = path.read_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r")
    assert b"\n" not in mac
    marketer = client_for("marketer")
    response = post_form(marketer, "/importview/upload", {"file": (io.BytesIO(mac), "mac.csv"), "new_list": "Mac"},
                         content_type="multipart/form-data", follow_redirects=True)
    assert response.status_code == 200
    run_jobs()
    db.session.expire_all()
    imp = db.session.scalars(select(Import)).one()
    assert_matches_truth(db, imp, truth)


@pytest.mark.parametrize("name,data,words", [
    ("undefined-cp1252.csv", b"Name,Phone\nAnn \x81\x8d Lee,617-253-1000\n",
     "byte 0x81 at position 15 is neither"),
    ("huge-cell.csv", b'Name,Phone\n"' + b"x" * (16 * 1024 * 1024 + 10) + b'",617-253-1000\n',
     "larger than 16 MB"),
])
def test_an_unreadable_upload_gets_a_clear_message(app, db, client_for, post_form, name, data, words):
    marketer = client_for("marketer")
    response = post_form(marketer, "/importview/upload", {"file": (io.BytesIO(data), name), "new_list": "Bad"},
                         content_type="multipart/form-data", follow_redirects=True)
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert words in page and shown(page, "import-status") == "failed"
    assert "Save it again as" in page or "upload the file again" in page
    assert db.session.scalar(select(func.count()).select_from(Contact)) == 0


def test_staff_cannot_import(db, client_for):
    assert client_for("staff").get("/importview/upload").status_code in (302, 403)


def test_cli_import_and_export_neutralise_formulas(app, db, tmp_path):
    from run import cli

    source = tmp_path / "people.csv"
    source.write_text("First Name,Last Name,Phone,Email\n=HYPERLINK(\"x\"),@SUM(1),617-253-1000,a@example.com\n"
                      "-2+3,Ray,+1 617 253 1001,\n")
    runner = CliRunner()
    result = runner.invoke(cli, ["import", str(source), "--list", "CLI list"])
    assert result.exit_code == 0, result.output
    assert "succeeded" in result.output and "'created': 2" in result.output
    out = tmp_path / "export.csv"
    result = runner.invoke(cli, ["export", "contacts", str(out), "--list", "CLI list"])
    assert result.exit_code == 0 and "2 contacts" in result.output
    header, ann, ray = csv.reader(io.StringIO(out.read_text()))
    assert header[:6] == ["id", "first_name", "last_name", "phone", "email", "mail_address"]
    assert ann[1:5] == ["'=HYPERLINK(\"x\")", "'@SUM(1)", "+16172531000", "a@example.com"]
    assert ray[1:4] == ["'-2+3", "Ray", "+16172531001"]
    bad = tmp_path / "empty.csv"
    bad.write_bytes(b"")
    result = runner.invoke(cli, ["import", str(bad)])
    assert result.exit_code != 0 and "empty" in result.output


def _start_worker(app, tmp_path, name):
    return start_worker(app, tmp_path / f"{name}.log", IMPORT_BATCH_SIZE="100", IMPORT_STALE_SECONDS="2")


def _wait(predicate, seconds):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError("timed out")


def test_worker_killed_mid_import_resumes_to_the_same_end_state(app, db, tmp_path):
    from app.extensions import db as _db
    from app.imports import create_import, run_import, start_import

    path, _truth = make_sample(tmp_path, 6000, 21, "--messy")
    with open(path, "rb") as f:
        imp = create_import(f, path.name, list_name="Killed")
    start_import(imp.id)
    worker = _start_worker(app, tmp_path, "first")
    try:
        def mid_import():
            _db.session.expire_all()
            done = _db.session.get(Import, imp.id).rows_done
            return 0 < done < 5000 and done

        killed_at = _wait(mid_import, 120)
        worker.send_signal(signal.SIGKILL)
        worker.wait()
        _db.session.expire_all()
        assert _db.session.get(Import, imp.id).status == "running"
        worker = _start_worker(app, tmp_path, "second")  # recovery finds the stale heartbeat and resumes
        _wait(lambda: _db.session.expire_all() or _db.session.get(Import, imp.id).status == "succeeded", 180)
    finally:
        worker.kill()
        worker.wait()
    resumed = _db.session.get(Import, imp.id)
    assert killed_at < resumed.total_rows == resumed.rows_done
    after_kill = business_state(db)
    # the same file imported without interruption into a clean database
    with _db.engine.begin() as conn:
        from tests.conftest import business_tables

        for table in business_tables():
            conn.exec_driver_sql(f"DELETE FROM {table}")
    _db.session.expunge_all()
    with open(path, "rb") as f:
        again = create_import(f, path.name, list_name="Killed")
    assert run_import(again.id) == "succeeded"
    assert business_state(db) == after_kill


def test_rejected_rows_download_is_formula_safe_and_audited(app, db, client_for, post_form, run_jobs):
    from app.models import AuditLog

    marketer = client_for("marketer")
    attacks = ["+cmd|' /C calc'!A0", "-1+1", "\t=1+1", " =1+1", "@SUM(1)"]
    data = "First Name,Phone\n" + "".join(f'"{cell}",\n' for cell in attacks) + "Ann,617-253-1000\n"
    post_form(marketer, "/importview/upload", {"file": (io.BytesIO(data.encode()), "attack.csv"), "new_list": "X"},
              content_type="multipart/form-data")
    imp = db.session.scalars(select(Import)).one()
    post_form(marketer, f"/importview/mapping/{imp.id}", {"map_0": "first_name", "map_1": "phone"})
    run_jobs()
    body = marketer.get(f"/importview/rejected/{imp.id}").get_data(as_text=True)
    rows = list(csv.reader(io.StringIO(body)))
    assert [row[0] for row in rows[1:]] == ["'" + cell for cell in attacks]
    assert all(row[2] == "no phone or email" for row in rows[1:])
    export = db.session.scalars(select(AuditLog).filter_by(action="export")).one()
    assert (export.username, export.object_type, export.object_id) == ("marketer", "import_rows", str(imp.id))
    assert export.changes == {"count": 5}
