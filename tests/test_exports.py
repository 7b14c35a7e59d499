"""Every CSV that leaves the CRM: formula-safe cells and one audit row per file."""
import csv
import io

import pytest
from sqlalchemy import select

from app import audit
from app.exports import csv_cell, csv_lines, neutralise
from app.models import AuditLog
from tests.conftest import user_id


@pytest.mark.parametrize("value,safe", [
    ("=1+1", "'=1+1"), ("+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"), ("-1+1", "'-1+1"), ("@SUM(A1)", "'@SUM(A1)"),
    ("\t=1+1", "'\t=1+1"), (" =1+1", "' =1+1"), ("\r=1+1", "'\r=1+1"), ("  \t+1", "'  \t+1"), ("\n-2", "'\n-2"),
    ("\tplain", "'\tplain"), ("-12000", "-12000"), ("-3.5", "-3.5"), ("02184", "02184"), ("Ann Lee", "Ann Lee"),
    ("a=b", "a=b"), ("", ""), (None, ""), (42, "42"), (-7, "-7"),
])
def test_formula_cells_get_an_apostrophe_and_plain_values_do_not(value, safe):
    assert neutralise(value) == safe


@pytest.mark.parametrize("value,safe", [("+16175550123", "+16175550123"), ("+1=1+1", "'+1=1+1"),
                                        ("+16175550123 ", "'+16175550123 ")])
def test_only_a_real_e164_phone_keeps_its_plus(value, safe):
    assert csv_cell(value, phone=True) == safe


def test_csv_lines_neutralises_every_cell_and_audits_the_rows_sent(app, db):
    rows = [["=HYPERLINK(\"x\")", "+16175550123"], [" =1+1", "+1+1"]]
    with audit.acting_as(user_id("marketer"), "marketer"):
        text = "".join(csv_lines("things", ["@name", "phone"], rows, phone_columns=["phone"], detail="two things"))
    assert list(csv.reader(io.StringIO(text))) == [
        ["'@name", "phone"], ["'=HYPERLINK(\"x\")", "+16175550123"], ["' =1+1", "'+1+1"]]
    row = db.session.scalars(select(AuditLog).filter_by(action="export")).one()
    assert (row.username, row.object_type, row.changes, row.detail) == ("marketer", "things", {"count": 2}, "two things")


def test_a_download_stopped_early_is_audited_with_the_rows_it_sent(app, db):
    lines = csv_lines("things", ["a"], ([str(i)] for i in range(100)))
    assert [next(lines) for _ in range(4)] == ["a\r\n", "0\r\n", "1\r\n", "2\r\n"]
    lines.close()
    assert db.session.scalars(select(AuditLog.changes).filter_by(action="export")).one() == {"count": 3}


def _read_all_pages(client, token, page_size):
    ids, page = [], 0
    while True:
        body = client.get(f"/api/v1/contact/?q=(page:{page},page_size:{page_size},order_column:id,order_direction:asc)",
                          headers={"Authorization": f"Bearer {token}"}).get_json()
        if not body["result"]:
            return ids
        ids += body["ids"]
        page += 1


def test_paging_through_the_contact_api_past_the_threshold_is_audited(app, db, monkeypatch):
    from flask_jwt_extended import create_access_token

    from app.models import Contact

    monkeypatch.setitem(app.config, "API_EXPORT_AUDIT_ROWS", 25)
    db.session.add_all([Contact(first_name=f"P{i}", phone=f"+161755520{i:02d}") for i in range(60)])
    db.session.commit()
    client = app.test_client()
    marketer = create_access_token(identity=str(user_id("marketer")), fresh=True)
    assert len(_read_all_pages(client, marketer, 10)) == 60
    exports = db.session.scalars(select(AuditLog).filter_by(action="export").order_by(AuditLog.id)).all()
    # pages 1-2 (20 rows) stay under 25; page 3 reports the 30 read so far; pages 4-6 their own 10
    assert [row.changes["count"] for row in exports] == [30, 10, 10, 10]
    assert {(row.username, row.object_type) for row in exports} == {("marketer", "contacts")}
    assert "/api/v1/contact/" in exports[0].detail
    admin = create_access_token(identity=str(user_id("admin")), fresh=True)
    client.get("/api/v1/contact/?q=(page_size:20)", headers={"Authorization": f"Bearer {admin}"})
    assert db.session.query(AuditLog).filter_by(action="export").count() == 4  # another user, under the threshold
