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


# --- export from the screen: a whole list or the current filter, a job for big ones ---------------

def _book(db):
    """Five contacts on "Spring" (two of them Staff's), one formula name, one contact on no list."""
    from app.models import Contact, ContactList, ListMember

    spring = ContactList(name="Spring")
    contacts = [Contact(first_name=f"Ann{i}", last_name="Lee", phone=f"+1617555{i:04d}",
                        assigned_user_id=user_id("staff") if i < 2 else None) for i in range(4)]
    contacts.append(Contact(first_name="=HYPERLINK(\"x\")", last_name="Ray", phone="+16175559999"))
    outsider = Contact(first_name="Zed", last_name="Out", phone="+16175558888", assigned_user_id=user_id("staff"))
    db.session.add_all([spring, outsider, *contacts, *(ListMember(list=spring, contact=c) for c in contacts)])
    db.session.commit()
    return spring, contacts, outsider


def _rows(text):
    return list(csv.reader(io.StringIO(text)))[1:]


def _exports(db):
    return db.session.scalars(select(AuditLog).filter_by(action="export").order_by(AuditLog.id)).all()


def test_export_a_whole_list_from_its_page_downloads_every_member_and_is_audited(app, db, client_for, post_form):
    spring, contacts, _outsider = _book(db)
    response = post_form(client_for("marketer"), "/exports/contacts", {"list_id": str(spring.id)})
    assert response.status_code == 200 and response.mimetype == "text/csv"
    rows = _rows(response.get_data(as_text=True))
    assert sorted(r[3] for r in rows) == sorted(c.phone for c in contacts)
    assert ["'=HYPERLINK(\"x\")", "Ray"] in [r[1:3] for r in rows]
    audit_row = _exports(db)[-1]
    assert (audit_row.username, audit_row.changes, audit_row.detail) == ("marketer", {"count": 5}, "list Spring")


def test_export_the_current_filter_from_the_contact_list(app, db, client_for, post_form):
    _spring, contacts, outsider = _book(db)
    marketer = client_for("marketer")
    page = marketer.get("/contactview/list/?_flt_0_last_name=Lee").get_data(as_text=True)
    assert 'name="_flt_0_last_name" value="Lee"' in page and "Export every contact matching the filter" in page
    response = post_form(marketer, "/exports/contacts", {"_flt_0_last_name": "Lee"})
    assert sorted(r[3] for r in _rows(response.get_data(as_text=True))) == sorted(c.phone for c in contacts[:4])
    everything = post_form(marketer, "/exports/contacts", {})
    assert len(_rows(everything.get_data(as_text=True))) == 6
    assert [r.detail for r in _exports(db)] == ["contacts: last_name Lee", "contacts: every contact"]
    assert outsider.id


def test_staff_export_holds_only_their_contacts_on_screen_and_in_the_api(app, db, client_for, post_form):
    spring, contacts, outsider = _book(db)
    staff = client_for("staff")
    screen = post_form(staff, "/exports/contacts", {})
    assert sorted(r[3] for r in _rows(screen.get_data(as_text=True))) == sorted(
        [contacts[0].phone, contacts[1].phone, outsider.phone])
    from tests.test_campaigns import bearer

    api = app.test_client().post("/api/v1/export/", json={"search": {"_flt_0_last_name": "Lee"}},
                                 headers=bearer("staff"))
    assert sorted(r[3] for r in _rows(api.get_data(as_text=True))) == [contacts[0].phone, contacts[1].phone]
    other = app.test_client().post("/api/v1/export/", json={}, headers=bearer("staff2"))
    assert _rows(other.get_data(as_text=True)) == []
    assert [r.changes["count"] for r in _exports(db)] == [3, 2, 0]


def test_a_big_export_runs_as_a_job_with_progress_and_downloads_when_done(app, db, client_for, post_form, run_jobs,
                                                                          monkeypatch):
    spring, contacts, _outsider = _book(db)
    monkeypatch.setitem(app.config, "EXPORT_DIRECT_ROWS", 2)
    monkeypatch.setattr("app.exports.EXPORT_PROGRESS_ROWS", 2)
    marketer = client_for("marketer")
    response = post_form(marketer, "/exports/contacts", {"list_id": str(spring.id)})
    from app.models import Export

    export = db.session.scalars(select(Export)).one()
    assert response.headers["Location"].endswith(f"/exports/show/{export.id}")
    waiting = marketer.get(f"/exports/show/{export.id}").get_data(as_text=True)
    assert 'data-status="queued"' in waiting and "5 contacts" in waiting and 'http-equiv="refresh"' in waiting
    assert marketer.get(f"/exports/download/{export.id}").status_code == 302  # not yet
    run_jobs()
    db.session.expire_all()
    done = marketer.get(f"/exports/show/{export.id}").get_data(as_text=True)
    assert 'data-status="succeeded"' in done and 'id="export-done">5<' in done and "refresh" not in done
    rows = _rows(marketer.get(f"/exports/download/{export.id}").get_data(as_text=True))
    assert sorted(r[3] for r in rows) == sorted(c.phone for c in contacts)
    assert ["'=HYPERLINK(\"x\")", "Ray"] in [r[1:3] for r in rows]
    audit_row = _exports(db)[-1]
    assert (audit_row.username, audit_row.changes, audit_row.object_id) == ("marketer", {"count": 5}, str(export.id))
    assert client_for("staff").get(f"/exports/show/{export.id}").status_code == 404  # another user's file
    from tests.test_campaigns import bearer

    api = app.test_client()
    assert api.get(f"/api/v1/export/{export.id}", headers=bearer("marketer")).get_json()["rows_done"] == 5
    assert api.get(f"/api/v1/export/{export.id}/download", headers=bearer("staff")).status_code == 404
    queued = api.post("/api/v1/export/", json={"list_id": spring.id}, headers=bearer("marketer"))
    assert queued.status_code == 202 and queued.get_json()["total_rows"] == 5


def test_an_export_whose_worker_died_is_started_again_by_recovery(app, db, client_for, post_form, run_jobs,
                                                                 monkeypatch):
    from datetime import timedelta

    from app.exports import recover_exports
    from app.models import Export, utcnow

    spring, _contacts, _outsider = _book(db)
    stuck = Export(created_by_id=user_id("marketer"), description="list Spring", selection={"list_id": spring.id},
                   status="running", total_rows=5, rows_done=2, heartbeat_at=utcnow() - timedelta(minutes=5))
    fresh = Export(created_by_id=user_id("marketer"), description="list Spring", selection={"list_id": spring.id},
                   status="running", total_rows=5, rows_done=2, heartbeat_at=utcnow())
    db.session.add_all([stuck, fresh])
    db.session.commit()
    assert recover_exports() == 1
    run_jobs()
    db.session.expire_all()
    assert (db.session.get(Export, stuck.id).status, db.session.get(Export, stuck.id).rows_done) == ("succeeded", 5)
    assert db.session.get(Export, fresh.id).status == "running"


def test_an_unknown_or_hidden_list_cannot_be_exported(app, db, client_for, post_form):
    from app.models import Campaign, ContactList

    campaign = Campaign(name="Picked", sending_number="+16175550100")
    db.session.add(campaign)
    db.session.flush()
    hidden = ContactList(name="Picked for campaign", campaign_id=campaign.id)
    db.session.add(hidden)
    db.session.commit()
    marketer = client_for("marketer")
    assert post_form(marketer, "/exports/contacts", {"list_id": str(hidden.id)}).status_code == 404
    assert post_form(marketer, "/exports/contacts", {"list_id": "999"}).status_code == 404
    assert _exports(db) == []
