"""The foundation: login, menus, health, audit, roles and staff scoping."""
import time

from sqlalchemy import select

from app.models import AuditLog, Contact
from tests.conftest import PASSWORD, login, user_id


def test_login_page_renders(app):
    response = app.test_client().get("/login/")
    assert response.status_code == 200
    assert b"csrf_token" in response.data


def test_admin_sees_every_menu(client_for):
    html = client_for("admin").get("/").get_data(as_text=True)
    for menu in ["Contacts", "Properties", "Lists", "Opt-outs", "Audit log", "Settings", "Users", "Roles"]:
        assert menu in html, menu


def test_health_reports_database_and_redis(app, db):
    body = app.test_client().get("/health").get_json()
    assert body["database"] == "ok" and body["redis"] == "ok"


def test_create_update_delete_leave_audit_rows(db, client_for, post_form):
    admin = client_for("admin")
    post_form(admin, "/contactview/add", {"first_name": "Ann", "last_name": "Lee", "phone": "+16175550199"})
    contact = db.session.scalars(select(Contact)).one()
    post_form(admin, f"/contactview/edit/{contact.id}", {"first_name": "Anne", "last_name": "Lee",
                                                         "phone": "+16175550199"})
    admin.get(f"/contactview/delete/{contact.id}")  # FAB deletes on GET only with a CSRF-free link: refused
    post_form(admin, f"/contactview/delete/{contact.id}")
    rows = db.session.scalars(select(AuditLog).where(AuditLog.object_type == "contacts").order_by(AuditLog.id)).all()
    actions = [r.action for r in rows]
    assert actions[:2] == ["create", "update"]
    assert rows[1].changes["first_name"] == ["Ann", "Anne"]
    assert rows[0].username == "admin"
    assert "delete" in actions


def test_failed_login_is_audited(app, db):
    from app.audit import flush_rejections

    client = app.test_client()
    login(app, client, "admin", "wrong-password")
    flush_rejections(now=time.time() + 120)
    row = db.session.scalars(select(AuditLog).where(AuditLog.action == "login_failed")).one()
    assert row.changes["count"] == 1 and row.changes["names"] == {"admin": 1}


def test_eleventh_wrong_password_is_refused_even_if_twelfth_is_right(app, db):
    client = app.test_client()
    codes = [login(app, client, "marketer", "nope").status_code for _ in range(11)]
    assert codes[-1] == 429
    assert login(app, client, "marketer", PASSWORD).status_code == 429


def test_staff_cannot_open_another_users_contact(db, client_for):
    mine = Contact(first_name="Mine", phone="+16175550101", assigned_user_id=user_id("staff"))
    theirs = Contact(first_name="Theirs", phone="+16175550102", assigned_user_id=user_id("staff2"))
    db.session.add_all([mine, theirs])
    db.session.commit()
    staff = client_for("staff")
    listing = staff.get("/contactview/list/").get_data(as_text=True)
    assert "Mine" in listing and "Theirs" not in listing
    assert staff.get(f"/contactview/show/{mine.id}").status_code == 200
    assert staff.get(f"/contactview/show/{theirs.id}").status_code in (302, 403, 404)
    assert staff.get(f"/contactview/edit/{theirs.id}").status_code in (302, 403, 404)
    assert staff.get(f"/api/v1/contact/{theirs.id}").status_code in (401, 403, 404)


def test_demo_loads_a_populated_crm_once(db, client_for):
    from app.demo import load_demo

    assert "5 new contacts" in load_demo()
    assert "0 new contacts" in load_demo()
    listing = client_for("admin").get("/contactview/list/").get_data(as_text=True)
    assert "Santos" in listing and "Nguyen" in listing
