"""Sessions that end: a copied cookie, another browser and an API token stop working after a
logout, a password change (own, by an admin, by the CLI), a deactivation or a role change."""
import os
import subprocess
import sys

import jwt
import pytest
from sqlalchemy import select

from tests.conftest import PASSWORD, login

NEW_PASSWORD = "Granite-harbour-lamp-7"


@pytest.fixture
def pat(app, db):
    """A Staff user of this test only (the shared users keep their passwords and roles)."""
    from flask_appbuilder.security.sqla.models import User

    from app.users import ensure_user

    user, _ = ensure_user("pat", PASSWORD, "Staff")
    db.session.commit()
    yield user.id
    db.session.rollback()
    db.session.delete(db.session.get(User, user.id))
    db.session.commit()


def signed_in(client):
    response = client.get("/contactview/list/")
    assert response.status_code in (200, 302)
    return response.status_code == 200


def copy_of(app, client):
    """Another browser holding a copy of this client's session cookie."""
    other = app.test_client()
    other.set_cookie("session", client.get_cookie("session").value)
    return other


def tokens(app, username, password=PASSWORD):
    response = app.test_client().post("/api/v1/security/login", json={
        "username": username, "password": password, "provider": "db", "refresh": True})
    assert response.status_code == 200, response.get_json()
    return response.get_json()["access_token"], response.get_json()["refresh_token"]


def api_works(app, access):
    response = app.test_client().get("/api/v1/contact/", headers={"Authorization": f"Bearer {access}"})
    assert response.status_code in (200, 401), response.status_code
    return response.status_code == 200


def refresh_works(app, refresh):
    response = app.test_client().post("/api/v1/security/refresh", headers={"Authorization": f"Bearer {refresh}"})
    assert response.status_code in (200, 401), response.status_code
    return response.status_code == 200


def test_a_cookie_copied_before_logout_fails_after_logout(app, db, client_for, pat):
    browser = client_for("pat")
    stolen = copy_of(app, browser)
    access, refresh = tokens(app, "pat")
    assert signed_in(stolen) and api_works(app, access)
    browser.get("/logout/")
    response = stolen.get("/contactview/list/")
    assert response.status_code == 302 and "/login/" in response.headers["Location"]
    assert not signed_in(stolen)
    assert not api_works(app, access) and not refresh_works(app, refresh)
    assert signed_in(client_for("pat"))  # signing in again works


def test_a_password_change_ends_the_users_other_sessions_and_tokens(app, db, client_for, post_form, pat):
    laptop, phone = client_for("pat"), client_for("pat")
    access, refresh = tokens(app, "pat")
    response = post_form(laptop, "/resetmypassword/form", {
        "current_password": PASSWORD, "password": NEW_PASSWORD, "conf_password": NEW_PASSWORD})
    assert response.status_code == 302
    assert signed_in(laptop)  # the browser that changed it stays signed in
    assert not signed_in(phone)
    assert not api_works(app, access) and not refresh_works(app, refresh)
    assert login(app, app.test_client(), "pat", PASSWORD).headers["Location"].startswith("/login")
    new_access, _ = tokens(app, "pat", NEW_PASSWORD)
    assert api_works(app, new_access)


def test_an_admin_resetting_a_password_ends_that_users_sessions(app, db, client_for, post_form, pat):
    browser = client_for("pat")
    access, _ = tokens(app, "pat")
    admin = client_for("admin")
    response = post_form(admin, f"/resetpassword/form?pk={pat}", {"password": NEW_PASSWORD,
                                                                  "conf_password": NEW_PASSWORD})
    assert response.status_code == 302
    assert signed_in(admin) and not signed_in(browser) and not api_works(app, access)
    assert api_works(app, tokens(app, "pat", NEW_PASSWORD)[0])


def user_form(db, user_id, **changes):
    from flask_appbuilder.security.sqla.models import Role, User

    user = db.session.get(User, user_id)
    form = {"first_name": user.first_name, "last_name": user.last_name, "username": user.username,
            "email": user.email, "active": "y", "roles": [role.id for role in user.roles]}
    if "role" in changes:
        form["roles"] = [db.session.scalar(select(Role.id).where(Role.name == changes.pop("role")))]
    form.update(changes)
    return {k: v for k, v in form.items() if v is not None}


@pytest.mark.parametrize("change", [{"active": None}, {"role": "Marketer"}], ids=["deactivated", "role changed"])
def test_deactivation_or_a_role_change_on_the_users_screen_ends_sessions(app, db, client_for, post_form, pat,
                                                                         change):
    browser = client_for("pat")
    access, _ = tokens(app, "pat")
    response = post_form(client_for("admin"), f"/users/edit/{pat}", user_form(db, pat, **change))
    assert response.status_code == 302
    assert not signed_in(browser) and not api_works(app, access)


def test_an_edit_that_changes_nothing_that_matters_keeps_sessions(app, db, client_for, post_form, pat):
    browser = client_for("pat")
    access, _ = tokens(app, "pat")
    post_form(client_for("admin"), f"/users/edit/{pat}", user_form(db, pat, last_name="Renamed"))
    assert signed_in(browser) and api_works(app, access)


def test_a_password_set_from_the_cli_ends_sessions(app, db, client_for, pat):
    from run import set_password_command

    browser = client_for("pat")
    access, _ = tokens(app, "pat")
    result = app.test_cli_runner().invoke(set_password_command, ["pat", "--password", NEW_PASSWORD])
    assert result.exit_code == 0, result.output
    assert not signed_in(browser) and not api_works(app, access)


def test_a_change_made_through_the_orm_ends_sessions_too(app, db, client_for, pat):
    from flask_appbuilder.security.sqla.models import User

    browser = client_for("pat")
    db.session.get(User, pat).active = False  # what a script or a job would do
    db.session.commit()
    db.session.get(User, pat).active = True
    db.session.commit()
    assert not signed_in(browser)
    assert signed_in(client_for("pat"))


def test_refresh_tokens_live_seven_days_unless_configured(app, db, pat, tmp_path):
    _, refresh = tokens(app, "pat")
    claims = jwt.decode(refresh, options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 7 * 86400
    code = "import config; print(config.JWT_REFRESH_TOKEN_EXPIRES)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env={**os.environ, "JWT_REFRESH_TOKEN_EXPIRES": "86400", "INSTANCE_DIR": str(tmp_path)},
                            cwd=os.path.dirname(os.path.dirname(__file__)))
    assert result.stdout.strip() == "86400"
