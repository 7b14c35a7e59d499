"""The audit trail: what leaves a row, who can read it, and that nobody can change it."""
import time

import pytest
from flask_jwt_extended import create_access_token
from sqlalchemy import func, select

from app import audit
from app.models import AuditLog, Contact
from tests.conftest import user_id


def rows(db, **where):
    query = select(AuditLog).filter_by(**where).order_by(AuditLog.id)
    return db.session.scalars(query).all()


@pytest.fixture
def audit_row(db):
    audit.record_now("login_failed", object_type="ab_user", detail="username='mallory'")
    return rows(db, action="login_failed")[0]


def test_audit_rows_cannot_be_edited_or_deleted_through_the_screens(app, db, client_for, post_form, audit_row):
    admin = client_for("admin")
    assert admin.get(f"/auditlogview/show/{audit_row.id}").status_code == 200
    assert admin.get(f"/auditlogview/edit/{audit_row.id}").status_code == 403
    assert post_form(admin, f"/auditlogview/edit/{audit_row.id}", {"detail": "tampered"}).status_code == 403
    assert post_form(admin, f"/auditlogview/delete/{audit_row.id}").status_code == 403
    assert post_form(admin, "/auditlogview/action_post", {"action": "muldelete", "rowid": audit_row.id}).status_code == 404
    assert post_form(admin, "/auditlogview/add", {"action": "forged"}).status_code == 403
    db.session.expire_all()
    assert db.session.get(AuditLog, audit_row.id).detail == "username='mallory'"
    assert db.session.scalar(select(func.count(AuditLog.id)).where(AuditLog.action == "forged")) == 0


def test_the_audit_log_names_each_record_in_words(db, client_for, audit_row):
    audit.record_now("erasure", object_type="contact_properties", object_id="7")
    page = " ".join(client_for("admin").get("/auditlogview/list/").get_data(as_text=True).split())
    assert "<td>User</td>" in page and "<td>Property owner</td>" in page
    assert "<td>ab_user</td>" not in page and "<td>contact_properties</td>" not in page
    assert "<td>None</td>" not in page  # a row without a detail shows a blank


def test_audit_log_has_no_api_to_change_it(app, db, client_for, audit_row):
    headers = {"Authorization": "Bearer " + create_access_token(identity=str(user_id("admin")), fresh=True)}
    client = app.test_client()
    for url in ("/api/v1/auditlog/", "/api/v1/audit_log/", f"/api/v1/auditlog/{audit_row.id}"):
        assert client.get(url, headers=headers).status_code == 404
        assert client.delete(url, headers=headers).status_code in (404, 405)
        assert client.put(url, json={"detail": "x"}, headers=headers).status_code in (404, 405)
    db.session.expire_all()
    assert db.session.get(AuditLog, audit_row.id).detail == "username='mallory'"


def test_only_admins_read_the_audit_log(client_for, audit_row):
    assert client_for("admin").get("/auditlogview/list/").status_code == 200
    for username in ("marketer", "staff"):
        assert client_for(username).get("/auditlogview/list/").status_code == 403
        assert client_for(username).get(f"/auditlogview/show/{audit_row.id}").status_code == 403


def test_the_orm_refuses_to_change_or_delete_audit_rows(db, audit_row):
    audit_row.detail = "tampered"
    with pytest.raises(audit.AuditLogIsReadOnly):
        db.session.commit()
    db.session.rollback()
    db.session.delete(db.session.get(AuditLog, audit_row.id))
    with pytest.raises(audit.AuditLogIsReadOnly):
        db.session.commit()
    db.session.rollback()
    assert db.session.get(AuditLog, audit_row.id).detail == "username='mallory'"


def test_login_and_logout_are_audited(app, db, client_for):
    client = client_for("marketer")
    client.get("/logout/")
    entries = rows(db, object_type="ab_user", object_id=str(user_id("marketer")))
    assert [(r.action, r.username) for r in entries] == [("login", "marketer"), ("logout", "marketer")]


def test_user_and_role_changes_are_audited_with_passwords_redacted(app, db, client_for, post_form):
    from flask_appbuilder.security.sqla.models import Role, User

    admin = client_for("admin")
    staff_role = db.session.scalar(select(Role.id).where(Role.name == "Staff"))
    marketer_role = db.session.scalar(select(Role.id).where(Role.name == "Marketer"))
    form = {"first_name": "Nora", "last_name": "New", "username": "nora", "email": "nora@example.com",
            "active": "y", "roles": staff_role, "password": "Nora-secret-1", "conf_password": "Nora-secret-1"}
    assert post_form(admin, "/users/add", form).status_code == 302
    nora = db.session.scalar(select(User).where(User.username == "nora"))
    edit = {k: v for k, v in form.items() if k not in ("password", "conf_password")} | {"roles": marketer_role}
    assert post_form(admin, f"/users/edit/{nora.id}", edit).status_code == 302
    assert post_form(admin, "/roles/add", {"name": "Auditor"}).status_code == 302

    created, updated = rows(db, object_type="ab_user", object_id=str(nora.id))[:2]
    assert created.action == "create" and created.username == "admin"
    assert created.changes["password"] == "***" and "Nora-secret-1" not in str(created.changes)
    assert updated.action == "update"
    assert updated.changes["roles"] == {"added": ["Marketer"], "removed": ["Staff"]}
    assert [r.changes["name"] for r in rows(db, object_type="ab_role", action="create")] == ["Auditor"]


def test_bulk_actions_are_audited_once_with_their_rows(app, db, client_for, post_form):
    from flask_appbuilder.security.sqla.models import Role

    marketer_role = db.session.scalar(select(Role.id).where(Role.name == "Marketer"))
    admin = client_for("admin")
    post_form(admin, "/roles/action_post", {"action": "copyrole", "rowid": marketer_role})
    row = rows(db, action="action")[0]
    assert row.object_type == "ab_role" and row.username == "admin"
    assert row.changes == {"action": "copyrole", "count": 1, "ids": [str(marketer_role)]}


def test_bulk_and_export_helpers_leave_one_row_each(app, db):
    with app.test_request_context(), audit.acting_as(user_id("marketer"), "marketer"):
        audit.record_bulk("add_to_list", "contacts", range(1, 1501), detail="list=Spring")
        db.session.commit()
        audit.record_export("contacts", 1500, detail="filters: city=Boston")
    bulk, export = rows(db, action="add_to_list")[0], rows(db, action="export")[0]
    assert bulk.changes["count"] == 1500 and len(bulk.changes["ids"]) == 1000 and bulk.username == "marketer"
    assert export.changes == {"count": 1500} and export.detail == "filters: city=Boston"


def test_exports_and_bulk_actions_record_what_they_touched(app, db):
    import io

    from app import contact_actions
    from app.exports import export_contacts
    from app.models import ContactList

    ann = Contact(first_name="Ann", phone="+16175550150")
    spring = ContactList(name="Spring")
    db.session.add_all([ann, spring])
    db.session.commit()
    with audit.acting_as(user_id("marketer"), "marketer"):
        assert export_contacts(io.StringIO()) == 1  # the path `crm export` and the Export CSV action share
        contact_actions.apply("add_to_list", [ann.id], spring.id, user_id("marketer"))
        db.session.commit()
    export = rows(db, action="export")[0]
    assert export.changes == {"count": 1} and export.username == "marketer"
    bulk = rows(db, action="bulk_add_to_list")[0]
    assert bulk.changes == {"count": 1, "ids": [str(ann.id)]}


def test_jobs_and_cli_changes_are_attributed_to_their_actor(app, db):
    with audit.acting_as(None, "import-job"):
        db.session.add(Contact(first_name="Cli", phone="+16175550123"))
        db.session.commit()
    assert rows(db, object_type="contacts", action="create")[0].username == "import-job"


def test_contact_page_shows_its_history_to_admins_only(app, db, client_for, post_form):
    admin = client_for("admin")
    post_form(admin, "/contactview/add", {"first_name": "Ann", "last_name": "Lee", "phone": "+16175550199"})
    contact = db.session.scalars(select(Contact)).one()
    post_form(admin, f"/contactview/edit/{contact.id}", {"first_name": "Anne<b>", "last_name": "Lee",
                                                         "phone": "+16175550199"})
    html = admin.get(f"/contactview/show/{contact.id}").get_data(as_text=True)
    assert 'id="audit-history"' in html
    history = html.split('id="audit-history"')[1].split("</table>")[0]
    assert "Ann &rarr; Anne&lt;b&gt;" in history and "<b>" not in history
    marketer_page = client_for("marketer").get(f"/contactview/show/{contact.id}")
    assert marketer_page.status_code == 200 and 'id="audit-history"' not in marketer_page.get_data(as_text=True)


# --- rejected requests: counted, one row per kind, source and minute -----------------------------

def jwt_login(client, username, address):
    return client.post("/api/v1/security/login", json={"username": username, "password": "wrong-password",
                                                       "provider": "db"}, environ_base={"REMOTE_ADDR": address})


def test_failed_logins_leave_one_counted_row_per_source_and_minute(app, db):
    client = app.test_client()
    for attempt in range(24):  # a new user name each time, from two addresses
        address = "203.0.113.7" if attempt < 16 else "198.51.100.9"
        assert jwt_login(client, f"nobody{attempt}", address).status_code == 401
    assert rows(db, action="login_failed") == []  # nothing written per attempt
    assert client.get("/health").get_json()["rejected_last_hour"] == {"login_failed": 24}

    audit.flush_rejections(now=time.time() + 120)
    written = rows(db, action="login_failed")
    per_source_and_minute = [(row.ip, row.at) for row in written]
    assert len(per_source_and_minute) == len(set(per_source_and_minute)) <= 4  # the run may straddle a minute
    totals = {}
    for row in written:
        totals[row.ip] = totals.get(row.ip, 0) + row.changes["count"]
    assert totals == {"203.0.113.7": 16, "198.51.100.9": 8}
    assert {"nobody0", "nobody15"} <= {name for row in written if row.ip == "203.0.113.7" for name in row.changes["names"]}
    assert {row.username for row in written} == {"anonymous"}
    assert audit.flush_rejections(now=time.time() + 180) == 0  # written once
    assert len(rows(db, action="login_failed")) == len(written)


def test_an_open_minute_is_written_only_once_it_closes(app, db):
    minute = (time.time() // 60) * 60
    for second in (1, 30, 59):
        audit.count_rejection("login_failed", "192.0.2.1", "admin", now=minute + second)
    audit.count_rejection("login_failed", "192.0.2.1", "admin", now=minute + 61)  # the next minute
    assert audit.flush_rejections(now=minute + 62) == 1
    assert [r.changes["count"] for r in rows(db, action="login_failed")] == [3]
    audit.count_rejection("login_failed", "192.0.2.1", "admin", now=minute + 30)  # a late one for the first minute
    assert audit.flush_rejections(now=minute + 125) == 2
    written = rows(db, action="login_failed")
    assert [r.changes["count"] for r in written] == [3, 1, 1]
    assert written[0].at == written[1].at < written[2].at


def test_a_flood_of_sources_and_names_is_folded_into_one_other_row(app, db, monkeypatch):
    monkeypatch.setattr(audit, "REJECTION_FIELDS_PER_MINUTE", 5)
    minute = (time.time() // 60) * 60
    for n in range(12):
        audit.count_rejection("webhook_rejected", f"10.0.0.{n}", now=minute + 1)
    assert audit.flush_rejections(now=minute + 60) == 6
    counts = {r.ip: r.changes["count"] for r in rows(db, action="webhook_rejected")}
    assert counts["other"] == 7 and sum(counts.values()) == 12


def test_counts_in_an_audit_detail_read_as_words_and_changes_as_json(db, client_for):
    counts = {("call", "created"): 12, ("conversation", "imported"): 36, ("media", "stored"): 7,
              ("message", "created"): 86}
    audit.record("finish", "history_imports", 1, detail=counts, changes={"by_kind": counts})
    audit.record_now("plan", object_type="campaigns", object_id="2", detail="{'queued': 5, 'opted_out': 2}")
    db.session.commit()
    finish = rows(db, action="finish")[0]
    assert finish.detail == "12 calls created, 36 conversations imported, 7 media stored, 86 texts created"
    assert finish.changes == {"by_kind": {"call created": 12, "conversation imported": 36, "media stored": 7,
                                          "message created": 86}}
    admin = client_for("admin")
    page = admin.get("/auditlogview/list/").get_data(as_text=True)
    assert "2 opted out, 5 queued" in page and "{&#39;queued&#39;" not in page and "(&#39;call&#39;" not in page
    shown = admin.get(f"/auditlogview/show/{finish.id}").get_data(as_text=True)
    assert "{&#34;by_kind&#34;: {&#34;call created&#34;: 12" in shown
