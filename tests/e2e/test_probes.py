"""Security probes over real HTTP against `crm run`: each asserts the refusal and that nothing changed."""
import re
import time

import httpx
import pytest

from tests.e2e.conftest import ADMIN_PASSWORD

SQL_PROBES = ["' OR '1'='1", "1; DROP TABLE contacts; --", "\" OR 1=1 --", "%' UNION SELECT password FROM ab_user --"]
SCRIPT = "<script>alert('x')</script>"


def session(base, username, password):
    client = httpx.Client(base_url=base, follow_redirects=False, timeout=15)
    page = client.get("/login/").text
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)
    response = client.post("/login/", data={"username": username, "password": password, "csrf_token": token})
    assert response.status_code == 302 and "/login" not in response.headers["location"], "login failed"
    return client


def jwt(base, username, password):
    response = httpx.post(base + "/api/v1/security/login", json={
        "username": username, "password": password, "provider": "db"}, timeout=15)
    assert response.status_code == 200, response.text
    return {"Authorization": "Bearer " + response.json()["access_token"]}


@pytest.fixture(scope="module")
def admin(live):
    return jwt(live["url"], "admin", ADMIN_PASSWORD)


def contact_count(base, headers):
    return httpx.get(base + "/api/v1/contact/", headers=headers, params={"q": "(page_size:1)"}).json()["count"]


def test_post_without_csrf_token_is_refused_and_changes_nothing(live, admin):
    base = live["url"]
    client = session(base, "admin", ADMIN_PASSWORD)
    before = contact_count(base, admin)
    response = client.post("/contactview/add", data={"first_name": "NoToken", "phone": "+16175550177"})
    assert response.status_code == 400 or "CSRF token is missing" in response.text
    assert contact_count(base, admin) == before


def test_sql_injection_strings_in_search_filters_and_api_are_harmless(live, admin):
    base = live["url"]
    client = session(base, "admin", ADMIN_PASSWORD)
    before = contact_count(base, admin)
    for probe in SQL_PROBES:
        for column in ("first_name", "last_name", "phone", "email"):
            response = client.get("/contactview/list/", params={f"_flt_0_{column}": probe})
            assert response.status_code == 200, (probe, column)
        response = httpx.get(base + "/api/v1/contact/", headers=admin, params={
            "q": f"(filters:!((col:first_name,opr:ct,value:'{probe.replace(chr(39), '')}')))"})
        assert response.status_code in (200, 400), probe
        response = httpx.get(base + "/api/v1/contact/", headers=admin, params={"q": probe})
        assert response.status_code == 400, probe
    assert contact_count(base, admin) == before


def test_script_in_a_contact_name_is_shown_escaped(live, admin):
    base = live["url"]
    created = httpx.post(base + "/api/v1/contact/", headers=admin, json={
        "first_name": SCRIPT, "last_name": "Probe\x07", "phone": "+16175550178", "notes": SCRIPT})
    assert created.status_code == 201, created.text
    contact_id = created.json()["id"]
    client = session(base, "admin", ADMIN_PASSWORD)
    for path in ("/contactview/list/", f"/contactview/show/{contact_id}", f"/contactview/edit/{contact_id}"):
        html = client.get(path).text
        assert SCRIPT not in html, path
        assert "&lt;script&gt;" in html, path


def test_staff_cannot_reach_other_users_contacts_by_id(live, admin):
    base = live["url"]
    created = httpx.post(base + "/api/v1/contact/", headers=admin, json={
        "first_name": "Unassigned", "phone": "+16175550179"})
    contact_id = created.json()["id"]
    httpx.post(base + "/api/v1/security/login", json={})  # harmless noise
    users = httpx.get(base + "/users/api/read", headers=admin)  # FAB JSON read, admin only
    assert users.status_code in (200, 302, 401, 404)
    staff_password = "Probe-staff-1"
    admin_client = session(base, "admin", ADMIN_PASSWORD)
    page = admin_client.get("/users/add").text
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)
    role_id = re.search(r'<option value="(\d+)">Staff</option>', page).group(1)
    admin_client.post("/users/add", data={
        "first_name": "Probe", "last_name": "Staff", "username": "probe_staff", "email": "probe@example.com",
        "active": "y", "roles": role_id, "password": staff_password, "conf_password": staff_password,
        "csrf_token": token})
    staff = session(base, "probe_staff", staff_password)
    for path in (f"/contactview/show/{contact_id}", f"/contactview/edit/{contact_id}"):
        assert staff.get(path).status_code in (302, 403, 404), path
    assert "Unassigned" not in staff.get("/contactview/list/").text
    token = jwt(base, "probe_staff", staff_password)
    assert httpx.get(base + f"/api/v1/contact/{contact_id}", headers=token).status_code == 404
    assert httpx.put(base + f"/api/v1/contact/{contact_id}", headers=token,
                     json={"first_name": "Hijacked"}).status_code in (403, 404)
    assert httpx.delete(base + f"/api/v1/contact/{contact_id}", headers=token).status_code in (401, 403, 404, 405)
    shown = httpx.get(base + f"/api/v1/contact/{contact_id}", headers=admin).json()["result"]
    assert shown["first_name"] == "Unassigned"


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/", "/\\evil.example/", "http:evil.example"])
def test_login_next_cannot_leave_the_site(live, target):
    client = httpx.Client(base_url=live["url"], timeout=15)
    page = client.get("/login/", params={"next": target}).text
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)
    response = client.post("/login/", params={"next": target},
                           data={"username": "admin", "password": ADMIN_PASSWORD, "csrf_token": token})
    location = response.headers.get("location", "")
    assert response.status_code == 302
    assert "evil.example" not in location


def test_eleventh_wrong_password_is_refused_even_when_the_twelfth_is_right(live):
    client = httpx.Client(base_url=live["url"], timeout=15)
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', client.get("/login/").text).group(1)
    codes = [client.post("/login/", data={"username": "throttled", "password": "wrong", "csrf_token": token}).status_code
             for _ in range(11)]
    assert codes[:10].count(429) == 0 and codes[10] == 429
    assert client.post("/login/", data={"username": "throttled", "password": "right",
                                        "csrf_token": token}).status_code == 429


def test_unknown_routes_and_forged_sessions_get_a_clear_refusal(live):
    base = live["url"]
    assert httpx.get(base + "/no/such/page").status_code == 404
    forged = httpx.get(base + "/contactview/list/", cookies={"session": "eyJfdXNlcl9pZCI6IjEifQ.forged.sig"})
    assert forged.status_code == 302 and "/login" in forged.headers["location"]
    assert httpx.get(base + "/api/v1/contact/", headers={"Authorization": "Bearer forged.token.here"}).status_code in (401, 422)


def csrf_from(client, path):
    return re.search(r'name="csrf_token"[^>]*value="([^"]+)"', client.get(path).text).group(1)


def upload(client, name, data, fmt="auto"):
    token = csrf_from(client, "/importview/upload")
    return client.post("/importview/upload", data={"csrf_token": token, "format": fmt, "new_list": "Probe uploads"},
                       files={"file": (name, data, "text/csv")}, follow_redirects=True)


def test_oversized_and_malformed_uploads_are_refused_and_change_nothing(live, admin):
    base = live["url"]
    client = session(base, "admin", ADMIN_PASSWORD)
    before = contact_count(base, admin)
    too_big = upload(client, "huge.csv", b"Phone\n" + b"617-555-0100\n" * 250_000)  # 3.25 MB over a 2 MB limit
    assert too_big.status_code in (200, 413)
    assert "limit" in too_big.text
    for name, data in (("photo.csv", b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8),
                       ("sheet.csv", b"PK\x03\x04" + b"\x00" * 600),
                       ("empty.csv", b"")):
        response = upload(client, name, data)
        assert response.status_code == 200, name
        assert "alert-danger" in response.text or "failed" in response.text, name
    assert contact_count(base, admin) == before


def test_script_in_csv_cells_and_message_bodies_is_shown_escaped(live, admin):
    base, fake = live["url"], f"http://127.0.0.1:{live['sandbox_port']}"
    client = session(base, "admin", ADMIN_PASSWORD)
    upload(client, "xss.csv", f"First Name,Last Name,Phone\n{SCRIPT},Csv,617-555-0166\n".encode(), fmt="contacts")
    mapping = client.get("/importview/list/").text
    import_id = re.search(r"/importview/(?:mapping|show)/(\d+)", mapping).group(1)
    token = csrf_from(client, f"/importview/mapping/{import_id}")
    client.post(f"/importview/mapping/{import_id}", data={
        "csrf_token": token, "map_0": "first_name", "map_1": "last_name", "map_2": "phone"})
    for _ in range(60):  # the import runs in the worker
        found = httpx.get(base + "/api/v1/contact/", headers=admin,
                          params={"q": "(filters:!((col:phone,opr:eq,value:'+16175550166')))"}).json()
        if found["count"]:
            break
        time.sleep(1)
    contact_id = found["ids"][0]
    assert found["result"][0]["first_name"] == SCRIPT  # stored as typed
    token = csrf_from(client, f"/contactview/show/{contact_id}")
    client.post(f"/conversations/send_text/{contact_id}", data={"csrf_token": token, "body": "<img src=x onerror=alert(1)>"})
    httpx.post(fake + "/_fake/reply", json={"from": "+16175550166", "text": "<script>alert('reply')</script>"})
    for _ in range(60):
        page = client.get(f"/contactview/show/{contact_id}").text
        if "alert(&#39;reply&#39;)" in page or "alert(&#x27;reply&#x27;)" in page:
            break
        time.sleep(1)
    else:
        raise AssertionError("the reply with a script in it never showed on the contact page")
    assert "&lt;img src=x onerror=alert(1)&gt;" in page  # the text we sent, shown as text
    for path in (f"/contactview/show/{contact_id}", "/contactview/list/", "/inbox/", "/messageview/list/"):
        html = client.get(path).text
        assert SCRIPT not in html and "<script>alert('reply')" not in html and "<img src=x" not in html, path
    assert "&lt;script&gt;alert(" in client.get(f"/contactview/show/{contact_id}").text
