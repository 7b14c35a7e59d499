"""The fake QuickBooks behaves as Intuit documents QuickBooks Online: OAuth with rotating refresh
tokens, the query language, CDC, limits, signed webhooks, and no writes. Raw HTTP, no CRM code."""
import json
from datetime import timedelta

import httpx
import pytest

from app.fake_quickbooks import FakeQuickBooks
from app.fake_quickbooks_data import CUSTOMERS, seed_company
from app.quickbooks import sign_webhook

HTTP = httpx.Client()  # one connection pool: a new client per request costs more than the request


class Clock:
    def __init__(self, start=1_790_000_000.0):
        self.now = start

    def __call__(self):
        return self.now


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def fake(clock):
    server = FakeQuickBooks(client_id="cid", client_secret="csecret", verifier="vt", clock=clock).start()
    seed_company(server)
    yield server
    server.stop()


def token(fake, **form):
    return httpx.post(fake.url + "/oauth2/v1/tokens/bearer", data=form, auth=("cid", "csecret"))


def connect(fake):
    return token(fake, grant_type="refresh_token", refresh_token=fake.issue_refresh_token()).json()


def api(fake, access, path, **params):
    return HTTP.get(f"{fake.url}/v3/company/{fake.realm_id}/{path}", params=dict(params, minorversion=75),
                     headers={"Authorization": f"Bearer {access}", "Accept": "application/json"})


def query(fake, access, text):
    return api(fake, access, "query", query=text)


def test_refresh_token_rotates_and_the_old_one_is_invalid_grant(fake):
    first = fake.issue_refresh_token()
    answer = token(fake, grant_type="refresh_token", refresh_token=first)
    assert answer.status_code == 200
    body = answer.json()
    assert body["token_type"] == "bearer" and body["expires_in"] == 3600 and body["x_refresh_token_expires_in"] > 0
    assert body["refresh_token"] != first
    again = token(fake, grant_type="refresh_token", refresh_token=first)
    assert (again.status_code, again.json()) == (400, {"error": "invalid_grant"})
    assert token(fake, grant_type="refresh_token", refresh_token=body["refresh_token"]).status_code == 200


def test_token_endpoint_needs_http_basic_client_auth(fake):
    answer = httpx.post(fake.url + "/oauth2/v1/tokens/bearer",
                        data={"grant_type": "refresh_token", "refresh_token": fake.issue_refresh_token()},
                        auth=("cid", "wrong"))
    assert (answer.status_code, answer.json()["error"]) == (401, "invalid_client")


def test_authorization_code_flow_redirects_with_code_state_and_realm(fake):
    page = httpx.get(fake.url + "/connect/oauth2", params={
        "client_id": "cid", "response_type": "code", "scope": "com.intuit.quickbooks.accounting",
        "redirect_uri": "http://crm.example/quickbooks/callback", "state": "s-1"})
    assert page.status_code == 200 and "Connect" in page.text
    link = page.text.split("href='")[1].split("'")[0].replace("&amp;", "&")
    redirect = httpx.get(fake.url + link)
    assert redirect.status_code == 302
    callback = httpx.URL(redirect.headers["Location"])
    assert callback.params["state"] == "s-1" and callback.params["realmId"] == fake.realm_id
    code = callback.params["code"]
    wrong_uri = token(fake, grant_type="authorization_code", code=code, redirect_uri="http://elsewhere/")
    assert wrong_uri.status_code == 400  # and the code is spent
    redirect = httpx.get(fake.url + link)
    code = httpx.URL(redirect.headers["Location"]).params["code"]
    ok = token(fake, grant_type="authorization_code", code=code, redirect_uri="http://crm.example/quickbooks/callback")
    assert ok.status_code == 200 and ok.json()["access_token"]
    assert token(fake, grant_type="authorization_code", code=code,
                 redirect_uri="http://crm.example/quickbooks/callback").json() == {"error": "invalid_grant"}


def test_expired_access_token_is_401_with_fault_code_3200(fake, clock):
    access = connect(fake)["access_token"]
    assert query(fake, access, "SELECT COUNT(*) FROM Customer").status_code == 200
    clock.now += 3601
    answer = query(fake, access, "SELECT COUNT(*) FROM Customer")
    assert answer.status_code == 401
    assert answer.json()["Fault"]["Error"][0]["code"] == "3200"


def test_revoked_refresh_token_and_its_access_tokens_stop_working(fake):
    tokens = connect(fake)
    answer = httpx.post(fake.url + "/v2/oauth2/tokens/revoke", json={"token": tokens["refresh_token"]},
                        auth=("cid", "csecret"))
    assert answer.status_code == 200
    assert token(fake, grant_type="refresh_token", refresh_token=tokens["refresh_token"]).status_code == 400
    assert query(fake, tokens["access_token"], "SELECT * FROM Customer").status_code == 401


def test_query_pages_with_one_based_startposition_and_maxresults(fake):
    access = connect(fake)["access_token"]
    first = query(fake, access, "SELECT * FROM Estimate STARTPOSITION 1 MAXRESULTS 5").json()["QueryResponse"]
    second = query(fake, access, "SELECT * FROM Estimate STARTPOSITION 6 MAXRESULTS 5").json()["QueryResponse"]
    third = query(fake, access, "SELECT * FROM Estimate STARTPOSITION 11 MAXRESULTS 5").json()["QueryResponse"]
    ids = [e["Id"] for page in (first, second, third) for e in page["Estimate"]]
    assert (first["startPosition"], first["maxResults"], len(third["Estimate"])) == (1, 5, 2)
    assert len(ids) == len(set(ids)) == 12
    assert query(fake, access, "SELECT * FROM Estimate MAXRESULTS 1001").status_code == 400
    default = query(fake, access, "SELECT * FROM Estimate").json()["QueryResponse"]
    assert len(default["Estimate"]) == 12  # default page is 100


def test_empty_result_is_an_empty_query_response_and_missing_fields_are_omitted(fake):
    access = connect(fake)["access_token"]
    assert query(fake, access, "SELECT * FROM Estimate WHERE Id = '999999'").json()["QueryResponse"] == {}
    karen = query(fake, access, "SELECT * FROM Customer WHERE DisplayName = 'Karen Doyle'").json()
    (customer,) = karen["QueryResponse"]["Customer"]
    assert "PrimaryPhone" not in customer and "Mobile" not in customer
    assert customer["PrimaryEmailAddr"]["Address"] == "karen.doyle@example.com"


def test_customers_are_active_only_unless_the_query_names_active(fake):
    access = connect(fake)["access_token"]
    count = query(fake, access, "SELECT COUNT(*) FROM Customer").json()["QueryResponse"]["totalCount"]
    every = query(fake, access, "SELECT COUNT(*) FROM Customer WHERE Active IN (true, false)").json()
    assert (count, every["QueryResponse"]["totalCount"]) == (len(CUSTOMERS) - 1, len(CUSTOMERS))


def test_where_last_updated_time_and_orderby(fake, clock):
    access = connect(fake)["access_token"]
    cutoff = fake.now().isoformat()
    clock.now += 60
    fake.change("Estimate", "Update", "14", {"TxnStatus": "Accepted"})
    changed = query(fake, access, f"SELECT * FROM Estimate WHERE MetaData.LastUpdatedTime > '{cutoff}'").json()
    assert [(e["Id"], e["SyncToken"]) for e in changed["QueryResponse"]["Estimate"]] == [("14", "1")]
    ordered = query(fake, access, "SELECT * FROM Estimate ORDERBY TotalAmt DESC MAXRESULTS 2").json()
    assert [e["TotalAmt"] for e in ordered["QueryResponse"]["Estimate"]] == [12400.0, 9800.0]
    assert query(fake, access, "SELECT * FROM Estimate WHERE TxnStatus = 'x' OR Id = '1'").status_code == 400


def test_read_by_id_and_object_not_found(fake):
    access = connect(fake)["access_token"]
    answer = api(fake, access, "customer/1")
    assert answer.json()["Customer"]["DisplayName"] == "Maria Santos"
    missing = api(fake, access, "invoice/999999")
    assert missing.status_code == 400 and missing.json()["Fault"]["Error"][0]["code"] == "610"


def test_cdc_returns_changes_and_deletions_and_refuses_more_than_30_days(fake, clock):
    access = connect(fake)["access_token"]
    since = fake.now()
    clock.now += 60
    fake.change("Customer", "Update", "4", {"Mobile": {"FreeFormNumber": "617-555-0999"}})
    fake.change("Invoice", "Delete", "30")
    answer = api(fake, access, "cdc", entities="Customer,Invoice,Payment", changedSince=since.isoformat()).json()
    blocks = answer["CDCResponse"][0]["QueryResponse"]
    assert [c["Id"] for c in blocks[0]["Customer"]] == ["4"]
    assert blocks[1]["Invoice"] == [{"domain": "QBO", "status": "Deleted", "Id": "30",
                                     "MetaData": {"LastUpdatedTime": fake.now().isoformat(timespec="seconds")}}]
    assert "Payment" not in blocks[2]
    too_old = api(fake, access, "cdc", entities="Customer", changedSince=(since - timedelta(days=31)).isoformat())
    assert too_old.status_code == 400 and "30 days" in too_old.json()["Fault"]["Error"][0]["Detail"]


def test_cdc_answers_at_most_1000_objects(clock):
    fake = FakeQuickBooks(client_id="cid", client_secret="csecret", clock=clock).start()
    try:
        since = fake.now() - timedelta(seconds=1)
        for i in range(700):
            fake.add("Customer", {"DisplayName": f"Customer {i}"})
        for i in range(600):
            fake.add("Estimate", {"DocNumber": str(i), "TotalAmt": 100.0})
        access = connect(fake)["access_token"]
        blocks = api(fake, access, "cdc", entities="Customer,Estimate",
                     changedSince=since.isoformat()).json()["CDCResponse"][0]["QueryResponse"]
        assert (len(blocks[0]["Customer"]), len(blocks[1]["Estimate"])) == (700, 300)
    finally:
        fake.stop()


def test_500_requests_a_minute_then_429_until_the_window_moves(fake, clock):
    access = connect(fake)["access_token"]
    statuses = [query(fake, access, "SELECT COUNT(*) FROM Payment").status_code for _ in range(501)]
    assert statuses[:500] == [200] * 500 and statuses[500] == 429
    clock.now += 30
    assert query(fake, access, "SELECT COUNT(*) FROM Payment").status_code == 429
    clock.now += 31
    assert query(fake, access, "SELECT COUNT(*) FROM Payment").status_code == 200


def test_every_write_is_refused_and_counted(fake):
    access = connect(fake)["access_token"]
    headers = {"Authorization": f"Bearer {access}", "Accept": "application/json"}
    base = f"{fake.url}/v3/company/{fake.realm_id}"
    answers = [httpx.post(base + "/customer", json={"DisplayName": "New"}, headers=headers),
               httpx.post(base + "/invoice?operation=delete", json={"Id": "20"}, headers=headers),
               httpx.put(base + "/estimate", json={}, headers=headers),
               httpx.delete(base + "/payment/25", headers=headers)]
    assert all(a.status_code == 405 for a in answers)
    assert fake.stats["writes"] == 4
    assert query(fake, access, "SELECT COUNT(*) FROM Customer WHERE Active IN (true, false)").json()[
        "QueryResponse"]["totalCount"] == len(CUSTOMERS)


def test_without_accept_json_the_answer_is_xml(fake):
    access = connect(fake)["access_token"]
    answer = httpx.get(f"{fake.url}/v3/company/{fake.realm_id}/query", params={"query": "SELECT * FROM Customer"},
                       headers={"Authorization": f"Bearer {access}"})
    assert answer.headers["Content-Type"].startswith("application/xml")


@pytest.mark.parametrize("shape", ["cloudevents", "legacy"])
def test_webhooks_are_signed_with_the_verifier_token_in_both_shapes(fake, shape):
    body, headers = fake.signed_webhook([("Estimate", "14", "Update", "2026-11-30T10:00:00+00:00")], shape)
    assert headers["intuit-signature"] == sign_webhook("vt", body)
    payload = json.loads(body)
    if shape == "legacy":
        notice = payload["eventNotifications"][0]
        assert notice["realmId"] == fake.realm_id
        assert notice["dataChangeEvent"]["entities"] == [
            {"name": "Estimate", "id": "14", "operation": "Update", "lastUpdated": "2026-11-30T10:00:00+00:00"}]
    else:
        (event,) = payload
        assert (event["specversion"], event["type"], event["intuitentityid"], event["intuitaccountid"]) == (
            "1.0", "qbo.estimate.updated.v1", "14", fake.realm_id)
        assert event["id"]


def test_a_change_sends_a_signed_webhook_to_the_url():
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    received = []
    arrived = threading.Event()

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            received.append((self.rfile.read(int(self.headers["Content-Length"])), self.headers["intuit-signature"]))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()
            arrived.set()

        def log_message(self, *args):
            pass

    receiver = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    fake = FakeQuickBooks(verifier="vt", webhook_url=f"http://127.0.0.1:{receiver.server_address[1]}/hook").start()
    try:
        seed_company(fake)
        fake.change("Estimate", "Update", "14", {"TxnStatus": "Accepted"})
        assert arrived.wait(10)
        body, signature = received[0]
        assert signature == sign_webhook("vt", body)
        assert json.loads(body)[0]["intuitentityid"] == "14"
    finally:
        fake.stop()
        receiver.shutdown()


def test_seeded_company_has_money_in_every_state(fake):
    access = connect(fake)["access_token"]

    def rows(text, entity):
        return query(fake, access, text).json()["QueryResponse"].get(entity, [])

    estimates = rows("SELECT * FROM Estimate", "Estimate")
    assert {e["TxnStatus"] for e in estimates} == {"Pending", "Accepted", "Closed", "Rejected"}
    assert all(e.get("AcceptedDate") for e in estimates if e["TxnStatus"] == "Accepted")
    today = fake.now().date().isoformat()
    past_due = [i for i in rows("SELECT * FROM Invoice", "Invoice") if i["Balance"] > 0 and i["DueDate"] < today]
    assert past_due
    payments = rows("SELECT * FROM Payment", "Payment")
    this_month = today[:7]
    assert any(p["TxnDate"].startswith(this_month) for p in payments)
    assert any(p["TxnDate"] < this_month for p in payments)
    phones = [c.get("PrimaryPhone", c.get("Mobile", {})).get("FreeFormNumber")
              for c in rows("SELECT * FROM Customer", "Customer")]
    assert "(617) 555-0111" in phones and "617.555.0112 x12" in phones
