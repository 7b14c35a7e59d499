"""The password policy at every door that sets a password: the self-service form (which also
asks for the current password), the admin's add-user and reset screens, and the CLI."""
import os
import subprocess
import sys

import pytest
from flask_appbuilder.security.sqla.models import User
from sqlalchemy import func, select
from werkzeug.security import check_password_hash

from app.users import password_problem
from tests.conftest import PASSWORD, login, user_id
from tests.test_sessions import NEW_PASSWORD, pat  # noqa: F401 - the fixture


@pytest.mark.parametrize("password, username, refused", [
    ("x", "pat", "at least 12"),
    ("Short-pw-1", "pat", "at least 12"),
    ("qwertyuiop123", "pat", "common"),  # a common one with digits after it
    ("Password2024!", "pat", "common"),
    ("!!Sunshine!!2024", "pat", "common"),
    ("1q2w3e4r5t6y", "pat", "common"),
    ("patricia.lopez", "patricia.lopez", "user name"),
    ("Patricia.Lopez99", "patricia.lopez", "user name"),
    ("admin2024admin", "admin", "user name"),
    ("pat-pat-pat-pat", "pat", "user name"),
    ("badminton-court-9", "admin", None),
    (NEW_PASSWORD, "pat", None),
    (PASSWORD, "admin", None),
    ("correct horse battery staple", "pat", None),
])
def test_password_policy(password, username, refused):
    problem = password_problem(password, username)
    if refused is None:
        assert problem is None
    else:
        assert refused in problem


def password_of(db, user_id_):
    db.session.expire_all()
    return db.session.get(User, user_id_).password


def test_changing_your_password_asks_for_the_current_one(app, db, client_for, post_form, pat):  # noqa: F811
    browser = client_for("pat")
    before = password_of(db, pat)
    form = browser.get("/resetmypassword/form").get_data(as_text=True)
    assert 'name="current_password"' in form
    for data, message in (
        ({"password": NEW_PASSWORD, "conf_password": NEW_PASSWORD}, "This field is required"),
        ({"current_password": "Wrong-password-9", "password": NEW_PASSWORD, "conf_password": NEW_PASSWORD},
         "not your current password"),
        ({"current_password": PASSWORD, "password": "x", "conf_password": "x"}, "at least 12"),
        ({"current_password": PASSWORD, "password": "Password2024!", "conf_password": "Password2024!"}, "common"),
        ({"current_password": PASSWORD, "password": "pat-1234567890", "conf_password": "pat-1234567890"},
         "user name"),
    ):
        response = post_form(browser, "/resetmypassword/form", data)
        assert response.status_code == 200 and message in response.get_data(as_text=True), message
    assert password_of(db, pat) == before
    response = post_form(browser, "/resetmypassword/form", {"current_password": PASSWORD, "password": NEW_PASSWORD,
                                                            "conf_password": NEW_PASSWORD})
    assert response.status_code == 302
    assert check_password_hash(password_of(db, pat), NEW_PASSWORD)


def test_an_admin_cannot_set_a_weak_password_on_add_or_reset(app, db, client_for, post_form, pat):  # noqa: F811
    from flask_appbuilder.security.sqla.models import Role

    admin = client_for("admin")
    staff_role = db.session.scalar(select(Role.id).where(Role.name == "Staff"))
    form = {"first_name": "Weak", "last_name": "Pw", "username": "weakling", "email": "weak@example.com",
            "active": "y", "roles": staff_role, "password": "letmein", "conf_password": "letmein"}
    response = post_form(admin, "/users/add", form)
    assert response.status_code == 200 and "at least 12" in response.get_data(as_text=True)
    response = post_form(admin, "/users/add", form | {"password": "weakling-2024", "conf_password": "weakling-2024"})
    assert "user name" in response.get_data(as_text=True)
    assert db.session.scalar(select(func.count(User.id)).where(User.username == "weakling")) == 0

    before = password_of(db, pat)
    response = post_form(admin, f"/resetpassword/form?pk={pat}", {"password": "password1234",
                                                                  "conf_password": "password1234"})
    assert response.status_code == 200 and "common" in response.get_data(as_text=True)
    assert password_of(db, pat) == before
    assert post_form(admin, "/resetpassword/form?pk=999999", {"password": NEW_PASSWORD,
                                                              "conf_password": NEW_PASSWORD}).status_code == 404


def test_only_admins_reset_other_users_passwords(app, db, client_for, post_form, pat):  # noqa: F811
    before = password_of(db, pat)
    for username in ("marketer", "staff"):
        response = post_form(client_for(username), f"/resetpassword/form?pk={pat}",
                             {"password": NEW_PASSWORD, "conf_password": NEW_PASSWORD})
        assert response.status_code == 403
    assert password_of(db, pat) == before


@pytest.mark.parametrize("command, args", [
    ("create_user_command", ["--username", "cli_user", "--role", "Staff", "--password", "abc123"]),
    ("create_user_command", ["--username", "cli_admin", "--role", "Admin", "--password", "Qwerty123456!"]),
    ("set_password_command", ["pat", "--password", "Pat.123456789"]),
])
def test_the_cli_refuses_weak_passwords(app, db, pat, command, args):  # noqa: F811
    import run

    before = password_of(db, pat)
    result = app.test_cli_runner().invoke(getattr(run, command), args)
    assert result.exit_code != 0 and "Password refused" in result.output
    assert db.session.scalar(select(func.count(User.id)).where(User.username.in_(("cli_user", "cli_admin")))) == 0
    assert password_of(db, pat) == before


def test_init_refuses_a_weak_admin_password_and_says_which_setting(app, db, monkeypatch):
    import run

    monkeypatch.setitem(app.config, "ADMIN_USERNAME", "boss")
    monkeypatch.setitem(app.config, "ADMIN_PASSWORD", "password")
    result = app.test_cli_runner().invoke(run.init_command)
    assert result.exit_code != 0 and "ADMIN_PASSWORD" in result.output and "at least 12" in result.output
    assert user_id("boss") is None


def test_the_cli_has_one_way_to_create_a_user(tmp_path):
    env = dict(os.environ, INSTANCE_DIR=str(tmp_path), DATABASE_URL=f"sqlite:///{tmp_path / 'cli.db'}")
    listed = subprocess.run([sys.executable, "-m", "run", "--help"], env=env, capture_output=True, text=True,
                            check=True).stdout
    commands = {line.split()[0] for line in listed.split("Commands:")[1].splitlines() if line.strip()}
    assert "create-user" in commands and "worker" in commands
    assert not commands & {"create-admin", "fab"}  # FAB's group would also create tables outside Alembic


def test_a_strong_password_from_the_cli_signs_in(app, db):
    import run

    result = app.test_cli_runner().invoke(run.create_user_command, ["--username", "cli_ok", "--role", "Staff",
                                                                    "--password", NEW_PASSWORD])
    try:
        assert result.exit_code == 0, result.output
        assert login(app, app.test_client(), "cli_ok", NEW_PASSWORD).headers["Location"] == "/"
    finally:
        db.session.delete(db.session.get(User, user_id("cli_ok")))
        db.session.commit()
