"""Probes over real HTTP against `crm run` (gunicorn) for the data a person or a flood can take out
or push in: webhook floods, formula cells and audited exports, secrets at rest, a contact's data."""
import csv
import io
import json
import re
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from tests.e2e.conftest import ADMIN_PASSWORD
from tests.e2e.test_probes import csrf_from, jwt, session, upload

MB = 1024 * 1024


def gunicorn_pids(port):
    """The gunicorn master and workers serving this port (workers share the master's command line)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\x00", b" ").decode()
        except OSError:
            continue
        if "gunicorn" in command and f"127.0.0.1:{port} " in command:
            pids.append(int(entry.name))
    return pids


def memory_kb(pid, field):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"{field} missing for {pid}")


def reset_peak(pid):
    """Make VmHWM (the peak resident memory) start again from the current resident size."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        pass  # older kernels: the peak then includes start-up, which only hides growth we measure below


def forged_headers():
    return {"webhook-id": "msg_probe", "webhook-timestamp": str(int(time.time())),
            "webhook-signature": "v1,Zm9yZ2VkLXNpZ25hdHVyZQ==", "Content-Type": "application/json"}


def thirty_mb_in_chunks():
    chunk = b"x" * MB
    for _ in range(30):
        yield chunk


def test_thirty_mb_webhook_floods_are_refused_and_no_worker_grows(live):
    base, port = live["url"], int(live["url"].rsplit(":", 1)[1])
    url = base + "/webhooks/openphone"
    assert httpx.post(url, content=b"{}").status_code == 401  # warm up every lazily loaded piece
    pids = gunicorn_pids(port)
    assert len(pids) >= 2, pids  # the master and its workers
    before = {pid: memory_kb(pid, "VmRSS") for pid in pids}
    for pid in pids:
        reset_peak(pid)
    body = b"{" + b" " * (30 * MB) + b"}"
    codes = []
    for _ in range(3):  # unsigned, with a Content-Length; sequential requests reach both workers
        codes.append(httpx.post(url, content=body, timeout=60).status_code)
    codes.append(httpx.post(url, content=body, headers=forged_headers(), timeout=60).status_code)
    codes.append(httpx.post(url, content=thirty_mb_in_chunks(), headers=forged_headers(), timeout=60).status_code)
    assert codes == [401, 401, 401, 413, 413]
    grown = {pid: memory_kb(pid, "VmHWM") - before[pid] for pid in pids}
    assert all(kb < 8 * 1024 for kb in grown.values()), f"peak resident memory grew (kB): {grown}"
    health = httpx.get(base + "/health").json()
    assert health["rejected_last_hour"]["webhook_rejected"] >= 6


def test_two_hundred_unsigned_webhooks_are_counted_not_audited_one_by_one(live, database):
    url = live["url"] + "/webhooks/openphone"
    before = httpx.get(live["url"] + "/health").json()["rejected_last_hour"].get("webhook_rejected", 0)
    with httpx.Client(timeout=15) as client:
        codes = {client.post(url, content=b'{"id": "EVforged", "type": "message.received"}').status_code
                 for _ in range(200)}
    assert codes == {401}
    health = httpx.get(live["url"] + "/health").json()
    assert health["rejected_last_hour"]["webhook_rejected"] - before == 200
    rows = audit_rows(database, action="webhook_rejected")
    minutes = [(row["changes"]["minute"], row["detail"].rsplit(" ", 1)[-1]) for row in rows]
    assert len(minutes) == len(set(minutes)) < 20  # one row per source and closed minute, not one per request


# --- exports: formula-safe and audited; secrets at rest; a contact's data on request -----------

MARKETER_PASSWORD = "Probe-marketer-password-2026"


@pytest.fixture(scope="module")
def database(live):
    engine = create_engine(live["env"]["DATABASE_URL"])
    yield engine
    engine.dispose()


def audit_rows(database, **where):
    query = "SELECT action, username, object_type, object_id, changes, detail FROM audit_log"
    if where:
        query += " WHERE " + " AND ".join(f"{column} = :{column}" for column in where)
    with database.connect() as conn:
        rows = conn.execute(text(query + " ORDER BY id"), where).mappings().all()
    return [{**row, "changes": json.loads(row["changes"]) if isinstance(row["changes"], str) else row["changes"]}
            for row in rows]


@pytest.fixture(scope="module")
def marketer(live):
    """A Marketer account made on the Users screen, so its reads count on their own."""
    admin = session(live["url"], "admin", ADMIN_PASSWORD)
    page = admin.get("/users/add").text
    role_id = re.search(r'<option value="(\d+)">Marketer</option>', page).group(1)
    admin.post("/users/add", data={
        "first_name": "Probe", "last_name": "Marketer", "username": "probe_marketer", "email": "pm@example.com",
        "active": "y", "roles": role_id, "password": MARKETER_PASSWORD, "conf_password": MARKETER_PASSWORD,
        "csrf_token": csrf_from(admin, "/users/add")})
    return "probe_marketer"


def wait_for_import(client, import_id):
    for _ in range(120):
        progress = client.get(f"/importview/progress/{import_id}").json()
        if progress["status"] in ("succeeded", "failed", "cancelled"):
            return progress
        time.sleep(0.5)
    raise AssertionError(f"import {import_id} never finished: {progress}")


def import_contacts(client, name, data):
    """Upload a contacts file through the screens, map first name and phone, wait for the worker."""
    upload(client, name, data, fmt="contacts")
    import_id = max(int(i) for i in re.findall(r"/importview/(?:mapping|show)/(\d+)", client.get("/importview/list/").text))
    client.post(f"/importview/mapping/{import_id}", data={
        "csrf_token": csrf_from(client, f"/importview/mapping/{import_id}"), "map_0": "first_name", "map_1": "phone"})
    return import_id, wait_for_import(client, import_id)


def test_rejected_rows_come_back_formula_safe_and_audited(live, database):
    client = session(live["url"], "admin", ADMIN_PASSWORD)
    attacks = ["+cmd|' /C calc'!A0", "-1+1", "\t=1+1", " =1+1"]
    data = "First Name,Phone\n" + "".join(f'"{cell}",\n' for cell in attacks) + "Formula Probe,617-555-0161\n"
    import_id, progress = import_contacts(client, "formulas.csv", data.encode())
    assert progress["status"] == "succeeded", progress
    response = client.get(f"/importview/rejected/{import_id}")
    rows = list(csv.reader(io.StringIO(response.text)))
    assert [row[0] for row in rows[1:]] == ["'" + cell for cell in attacks]
    export = audit_rows(database, action="export", object_type="import_rows", object_id=str(import_id))
    assert [(row["username"], row["changes"]["count"]) for row in export] == [("admin", 4)]


def test_paging_the_whole_contact_list_over_the_api_is_audited(live, database, marketer):
    base = live["url"]
    headers = jwt(base, marketer, MARKETER_PASSWORD)
    admin = jwt(base, "admin", ADMIN_PASSWORD)
    for i in range(60):  # at least 60 contacts, past the probe server's threshold of 50
        httpx.post(base + "/api/v1/contact/", headers=admin, json={"first_name": f"Paged{i}", "phone": f"+1617555{7000 + i}"})
    read, page = 0, 0
    while True:
        body = httpx.get(base + "/api/v1/contact/", headers=headers,
                         params={"q": f"(page:{page},page_size:25,order_column:id,order_direction:asc)"}).json()
        if not body["result"]:
            break
        read, page = read + len(body["result"]), page + 1
    assert read >= 60
    exports = audit_rows(database, action="export", username=marketer, object_type="contacts")
    assert exports and sum(row["changes"]["count"] for row in exports) == read
    assert all("/api/v1/contact/" in row["detail"] for row in exports)


def test_an_openphone_key_set_on_screen_is_stored_encrypted_and_never_shown(live, database, marketer):
    base, key = live["url"], "op_probe_secret_value_wxyz"
    admin = session(base, "admin", ADMIN_PASSWORD)
    assert session(base, marketer, MARKETER_PASSWORD).get("/settings/integrations/").status_code in (302, 403)
    def save(name, **fields):
        return admin.post("/settings/integrations/save", follow_redirects=True, data={
            "csrf_token": csrf_from(admin, "/settings/integrations/"), "name": name, **fields}).text

    try:
        save("openphone_webhook_secret", value="whsec_cHJvYmUtc2lnbmluZy1zZWNyZXQ=")  # a key needs one
        page = save("openphone_api_key", value=key)
        assert "set, ends in ...wxyz" in page and key not in page
        assert key not in admin.get("/settings/integrations/").text
        with database.connect() as conn:
            stored = conn.execute(text("SELECT ciphertext FROM integration_secrets WHERE name = 'openphone_api_key'"))
            assert key not in stored.scalar_one()
    finally:  # back to sandbox mode for the journeys that share this server
        save("openphone_api_key", remove="1")
        save("openphone_webhook_secret", remove="1")
    changes = audit_rows(database, object_type="integration_secrets")
    assert [(row["action"], row["object_id"]) for row in changes] == [
        ("secret_changed", "openphone_webhook_secret"), ("secret_changed", "openphone_api_key"),
        ("secret_cleared", "openphone_api_key"), ("secret_cleared", "openphone_webhook_secret")]
    assert {row["username"] for row in changes} == {"admin"}
    assert key not in json.dumps(changes) and "not set" in admin.get("/settings/integrations/").text


def test_a_contact_exported_then_erased_is_never_texted_again(live, database):
    base, fake, phone = live["url"], f"http://127.0.0.1:{live['sandbox_port']}", "+16175550191"
    admin_token = jwt(base, "admin", ADMIN_PASSWORD)
    contact_id = httpx.post(base + "/api/v1/contact/", headers=admin_token, json={
        "first_name": "Erasmus", "last_name": "Probe", "phone": phone, "email": "erasmus@example.com"}).json()["id"]
    httpx.post(fake + "/_fake/reply", json={"from": phone, "text": "Please send a quote for my stairs"})
    client = session(base, "admin", ADMIN_PASSWORD)
    for _ in range(60):  # the reply arrives through the signed webhook and the worker
        exported = client.get(f"/contactview/export_data/{contact_id}").json()
        if exported["messages"]:
            break
        time.sleep(0.5)
    assert exported["contact"]["email"] == "erasmus@example.com"
    assert [m["body"] for m in exported["messages"]] == ["Please send a quote for my stairs"]
    assert "cannot be undone" in client.get(f"/contactview/erase/{contact_id}").text
    client.post(f"/contactview/erase/{contact_id}", data={
        "csrf_token": csrf_from(client, f"/contactview/erase/{contact_id}"), "confirm": "erase"})
    assert client.get(f"/contactview/show/{contact_id}").status_code == 404
    everything = json.dumps(audit_rows(database), default=str)
    assert "Erasmus" not in everything and "erasmus@example.com" not in everything and "stairs" not in everything
    assert [row["action"] for row in audit_rows(database, object_type="contacts", object_id=str(contact_id))][-2:] \
        == ["export", "erasure"]
    _, progress = import_contacts(client, "again.csv", f"First Name,Phone\nErasmus,{phone}\n".encode())
    assert progress["status"] == "succeeded", progress
    again = httpx.get(base + "/api/v1/contact/", headers=admin_token,
                      params={"q": f"(filters:!((col:phone,opr:eq,value:'{phone}')))"}).json()["ids"][0]
    refused = client.post("/api/v1/conversation/send_text", json={"contact_id": again, "body": "Hi again"},
                          headers={"X-CSRFToken": csrf_from(client, f"/contactview/show/{again}")})
    assert refused.status_code == 409
    assert not [m for m in httpx.get(fake + "/_fake/sent").json()["data"] if phone in m["to"]]
