"""Probes over real HTTP against `crm run` for accounts and sessions: a copied cookie after logout,
sessions and tokens after a password change, weak passwords, a flood of failed logins, the API
without a CSRF token, and the Content-Security-Policy. Each asserts the refusal and that nothing
changed."""
import re

import httpx
import pytest

from tests.e2e.conftest import ADMIN_PASSWORD
from tests.e2e.test_probes import csrf_from, jwt, session

PASSWORD = "Probe-account-pass-1"
NEW_PASSWORD = "Granite-harbour-lamp-7"


def create_user(base, username, role="Staff", password=PASSWORD):
    admin = session(base, "admin", ADMIN_PASSWORD)
    page = admin.get("/users/add").text
    role_id = re.search(rf'<option value="(\d+)">{role}</option>', page).group(1)
    response = admin.post("/users/add", data={
        "first_name": username.title(), "last_name": role, "username": username, "email": f"{username}@example.com",
        "active": "y", "roles": role_id, "password": password, "conf_password": password,
        "csrf_token": csrf_from(admin, "/users/add")})
    assert response.status_code == 302, response.text[-500:]


def signed_in(client):
    response = client.get("/contactview/list/")
    return response.status_code == 200


def copy_of(base, client):
    return httpx.Client(base_url=base, follow_redirects=False, timeout=15, cookies=dict(client.cookies))


def test_a_cookie_copied_before_logout_is_refused_after_it(live):
    base = live["url"]
    create_user(base, "probe_logout")
    browser = session(base, "probe_logout", PASSWORD)
    stolen = copy_of(base, browser)
    token = jwt(base, "probe_logout", PASSWORD)
    assert signed_in(stolen)
    browser.get("/logout/")
    response = stolen.get("/contactview/list/")
    assert response.status_code == 302 and "/login" in response.headers["location"]
    assert httpx.get(base + "/api/v1/contact/", headers=token).status_code == 401


def test_a_password_change_needs_the_current_one_and_ends_other_sessions(live):
    base = live["url"]
    create_user(base, "probe_password")
    laptop, phone = session(base, "probe_password", PASSWORD), session(base, "probe_password", PASSWORD)
    token = jwt(base, "probe_password", PASSWORD)
    for data, refusal in (({"password": NEW_PASSWORD, "conf_password": NEW_PASSWORD}, "This field is required"),
                          ({"current_password": "Wrong-password-99", "password": NEW_PASSWORD,
                            "conf_password": NEW_PASSWORD}, "not your current password"),
                          ({"current_password": PASSWORD, "password": "x", "conf_password": "x"}, "at least 12"),
                          ({"current_password": PASSWORD, "password": "Password2024!",
                            "conf_password": "Password2024!"}, "common passwords")):
        response = laptop.post("/resetmypassword/form", data={**data, "csrf_token": csrf_from(laptop,
                                                                                              "/resetmypassword/form")})
        assert response.status_code == 200 and refusal in response.text, refusal
    assert signed_in(phone) and httpx.get(base + "/api/v1/contact/", headers=token).status_code == 200
    response = laptop.post("/resetmypassword/form", data={
        "current_password": PASSWORD, "password": NEW_PASSWORD, "conf_password": NEW_PASSWORD,
        "csrf_token": csrf_from(laptop, "/resetmypassword/form")})
    assert response.status_code == 302
    assert signed_in(laptop) and not signed_in(phone)
    assert httpx.get(base + "/api/v1/contact/", headers=token).status_code == 401
    assert httpx.get(base + "/api/v1/contact/", headers=jwt(base, "probe_password", NEW_PASSWORD)).status_code == 200


def audit_rows(client, action):
    page = client.get("/auditlogview/list/", params={"_flt_0_action": action, "psize_AuditLogView": 100}).text
    match = re.search(r"Record Count:</strong>\s*([\d,]+)", page)
    return int(match.group(1).replace(",", "")) if match else 0  # no rows: no count shown


def test_a_flood_of_failed_logins_is_counted_not_written_row_by_row(live):
    base = live["url"]
    admin = session(base, "admin", ADMIN_PASSWORD)
    rows_before = audit_rows(admin, "login_failed")
    counted_before = httpx.get(base + "/health").json()["rejected_last_hour"].get("login_failed", 0)
    for attempt in range(50):
        response = httpx.post(base + "/api/v1/security/login", json={
            "username": f"nobody-{attempt}", "password": "guess", "provider": "db"}, timeout=15)
        assert response.status_code == 401
    assert httpx.get(base + "/health").json()["rejected_last_hour"]["login_failed"] == counted_before + 50
    assert audit_rows(admin, "login_failed") <= rows_before + 2  # one row per address and minute, at most


def test_the_api_refuses_a_signed_in_browser_without_a_csrf_token(live):
    base = live["url"]
    admin_token = jwt(base, "admin", ADMIN_PASSWORD)
    created = httpx.post(base + "/api/v1/contact/", headers=admin_token, json={
        "first_name": "Csrf", "last_name": "Probe", "phone": "+16175550187"})
    assert created.status_code == 201, created.text
    browser = session(base, "admin", ADMIN_PASSWORD)

    def texts():
        return httpx.get(base + "/api/v1/message/", headers=admin_token, params={"q": "(page_size:1)"}).json()["count"]

    before = texts()
    response = browser.post("/api/v1/conversation/send_text", json={"contact_id": created.json()["id"],
                                                                    "body": "forged cross-site"})
    assert response.status_code == 400 and "CSRF" in response.json()["message"]
    assert texts() == before


@pytest.mark.parametrize("path", ["/login/", "/contactview/list/", "/inbox/", "/users/list/", "/resetmypassword/form"])
def test_pages_carry_a_content_security_policy_their_scripts_satisfy(live, path):
    base = live["url"]
    browser = session(base, "admin", ADMIN_PASSWORD) if path != "/login/" else httpx.Client(base_url=base)
    response = browser.get(path)
    assert response.status_code == 200
    policy = response.headers["content-security-policy"]
    nonce = re.search(r"'nonce-([^']+)'", policy).group(1)
    assert "frame-ancestors 'none'" in policy and "object-src 'none'" in policy
    assert response.headers["referrer-policy"] == "same-origin" and "camera=()" in response.headers["permissions-policy"]
    for attributes in re.findall(r"<script\b([^>]*)>", response.text):
        assert 'src="/' in attributes or f'nonce="{nonce}"' in attributes, attributes
