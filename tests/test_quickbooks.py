"""The QuickBooks client against the fake QuickBooks over loopback HTTP: OAuth and token rotation,
expiry, invalid_grant, limits, paging, CDC, webhook signatures, and never a write."""
import threading
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import func, select

from app import quickbooks
from app.fake_quickbooks import FakeQuickBooks
from app.fake_quickbooks_data import seed_volume
from app.models import AuditLog, Contact, IntegrationSecret
from app.quickbooks import (
    CONNECTED,
    NEEDS_RECONNECT,
    NOT_CONNECTED,
    CdcTooOld,
    CdcTruncated,
    OAuthStateMismatch,
    QuickBooks,
    QuickBooksDisconnected,
    sign_webhook,
)
from tests.conftest import quickbooks_app


class Clock:
    """A clock the test owns; sleeping through it moves it."""

    def __init__(self, start=1_790_000_000.0):
        self.now, self.sleeps = start, []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds


def stored(db):
    return quickbooks._load()


def audit_actions(db):
    return [a for (a,) in db.session.execute(select(AuditLog.action).where(AuditLog.action.like("quickbooks%")).order_by(AuditLog.id))]


def refresh_grants(fake):
    return [r for r in fake.requests if r[0] == "POST" and r[1].endswith("/tokens/bearer")]


def test_connect_rotates_the_given_refresh_token_and_stores_the_new_one_encrypted(db, fake_quickbooks):
    given = fake_quickbooks.issue_refresh_token()
    quickbooks.connect(fake_quickbooks.realm_id, given)
    data = stored(db)
    assert data["realm_id"] == fake_quickbooks.realm_id and data["refresh_token"] != given
    ciphertext = db.session.get(IntegrationSecret, quickbooks.SECRET_NAME).ciphertext
    assert data["refresh_token"] not in ciphertext and data["access_token"] not in ciphertext
    assert quickbooks.connection_status() == CONNECTED and quickbooks.realm_id() == fake_quickbooks.realm_id
    refused = httpx.post(fake_quickbooks.url + "/oauth2/v1/tokens/bearer", auth=("test-client", "test-secret"),
                         data={"grant_type": "refresh_token", "refresh_token": given})
    assert refused.json() == {"error": "invalid_grant"}
    assert audit_actions(db) == ["quickbooks_connected"]


def test_each_refresh_stores_the_newest_refresh_token_and_the_old_one_is_refused(db, fake_quickbooks):
    quickbooks.connect(fake_quickbooks.realm_id, fake_quickbooks.issue_refresh_token())
    before = stored(db)
    fake_quickbooks.expire_access_tokens()
    assert len(list(quickbooks.query_all("Estimate"))) == 12
    after = stored(db)
    assert after["refresh_token"] != before["refresh_token"] and after["access_token"] != before["access_token"]
    assert before["refresh_token"] not in fake_quickbooks.refresh_tokens
    assert after["refresh_token"] in fake_quickbooks.refresh_tokens


def test_expired_access_token_401_3200_refreshes_once_and_retries(db, fake_quickbooks):
    quickbooks.connect(fake_quickbooks.realm_id, fake_quickbooks.issue_refresh_token())
    fake_quickbooks.expire_access_tokens()
    estimate = quickbooks.get_entity("Estimate", "13")
    assert estimate["DocNumber"] == "1001"
    assert fake_quickbooks.stats["unauthorized"] == 1 and fake_quickbooks.stats["refreshes"] == 2
    assert [r[1] for r in fake_quickbooks.requests if r[0] == "GET"] == [
        f"/v3/company/{fake_quickbooks.realm_id}/estimate/13"] * 2


def test_access_token_near_its_expiry_is_refreshed_before_the_request(db, fake_quickbooks, redis):
    clock = Clock(start=fake_quickbooks.clock())
    qb = QuickBooks(fake_quickbooks_config(db), redis, sleep=clock.sleep, clock=clock)
    quickbooks.connect(fake_quickbooks.realm_id, fake_quickbooks.issue_refresh_token())
    clock.now += 3590
    assert qb.get_entity("Customer", "1")["DisplayName"] == "Maria Santos"
    assert fake_quickbooks.stats["unauthorized"] == 0 and fake_quickbooks.stats["refreshes"] == 2


def fake_quickbooks_config(db):
    from flask import current_app

    return dict(current_app.config)


def test_invalid_grant_marks_reconnect_needed_and_deletes_nothing(db, fake_quickbooks):
    db.session.add(Contact(first_name="Maria", last_name="Santos", phone="+16175550111"))
    db.session.commit()
    quickbooks.connect(fake_quickbooks.realm_id, fake_quickbooks.issue_refresh_token())
    fake_quickbooks.refresh_tokens.clear()  # revoked at Intuit, or over its maximum life
    fake_quickbooks.expire_access_tokens()
    with pytest.raises(QuickBooksDisconnected, match="invalid_grant"):
        list(quickbooks.query_all("Customer"))
    assert quickbooks.connection_status() == NEEDS_RECONNECT
    assert quickbooks.realm_id() == fake_quickbooks.realm_id  # the connection is kept, only paused
    assert quickbooks.connection_details()["reason"] == "QuickBooks refused the stored refresh token (invalid_grant)"
    assert db.session.scalar(select(func.count()).select_from(Contact)) == 1
    assert audit_actions(db) == ["quickbooks_connected", "quickbooks_needs_reconnect"]
    asked = len(fake_quickbooks.requests)
    with pytest.raises(QuickBooksDisconnected):
        quickbooks.get_entity("Customer", "1")
    assert len(fake_quickbooks.requests) == asked  # paused: QuickBooks is not asked again
    quickbooks.connect(fake_quickbooks.realm_id, fake_quickbooks.issue_refresh_token())
    assert quickbooks.connection_status() == CONNECTED


def test_not_connected_is_a_clear_error(db, fake_quickbooks):
    assert quickbooks.connection_status() == NOT_CONNECTED and not quickbooks.is_configured()
    with pytest.raises(QuickBooksDisconnected, match="not connected"):
        quickbooks.get_entity("Customer", "1")
    assert fake_quickbooks.requests == []


def test_a_wrong_refresh_token_at_connect_is_refused_and_nothing_is_stored(db, fake_quickbooks):
    with pytest.raises(QuickBooksDisconnected):
        quickbooks.connect(fake_quickbooks.realm_id, "RT1-not-a-real-token")
    assert quickbooks.connection_status() == NOT_CONNECTED


def test_429_is_waited_out_through_the_injected_sleep(db, fake_quickbooks, redis):
    clock = Clock(start=fake_quickbooks.clock())
    fake_quickbooks.clock, fake_quickbooks.rate = clock, 3
    config = dict(fake_quickbooks_config(db), QUICKBOOKS_RATE_PER_MINUTE=0, QUICKBOOKS_RATE_PER_SECOND=0)
    qb = QuickBooks(config, redis, sleep=clock.sleep, clock=clock)
    quickbooks.connect(fake_quickbooks.realm_id, fake_quickbooks.issue_refresh_token())
    names = [qb.get_entity("Customer", str(i))["DisplayName"] for i in range(1, 6)]
    assert names[0] == "Maria Santos" and len(names) == 5
    assert fake_quickbooks.stats["limited"] == 1
    assert clock.sleeps == [60.0]  # no Retry-After: Intuit says wait 60 seconds


def test_shared_limiter_keeps_every_worker_within_the_per_minute_rate(db, fake_quickbooks, redis):
    clock = Clock(start=fake_quickbooks.clock())
    fake_quickbooks.clock, fake_quickbooks.rate = clock, 5
    config = dict(fake_quickbooks_config(db), QUICKBOOKS_RATE_PER_MINUTE=5, QUICKBOOKS_RATE_PER_SECOND=0)
    workers = [QuickBooks(config, redis, sleep=clock.sleep, clock=clock) for _ in range(2)]
    quickbooks.connect(fake_quickbooks.realm_id, fake_quickbooks.issue_refresh_token())
    for i in range(12):
        assert workers[i % 2].get_entity("Customer", "1")
    assert fake_quickbooks.stats["limited"] == 0  # never a 429: the workers waited instead
    assert sum(clock.sleeps) >= 2 * 60


def test_at_most_ten_requests_in_flight_per_company(db, fake_quickbooks, redis):
    clock = Clock()
    qb = QuickBooks(fake_quickbooks_config(db), redis, sleep=clock.sleep, clock=clock)
    held = [qb.slot("realm-1") for _ in range(10)]
    for slot in held:
        slot.__enter__()
    clock.now += 2  # the per-second window has room again; only the in-flight limit holds

    blocked = QuickBooks(fake_quickbooks_config(db), redis, sleep=lambda s: held.pop().__exit__(None, None, None),
                         clock=clock)
    with blocked.slot("realm-1"):
        assert len(held) == 9  # it waited until one of the ten finished
    for slot in held:
        slot.__exit__(None, None, None)


def test_two_workers_refreshing_at_once_refresh_once(app, db, fake_quickbooks):
    quickbooks.connect(fake_quickbooks.realm_id, fake_quickbooks.issue_refresh_token())
    stale = stored(db)["access_token"]
    fake_quickbooks.expire_access_tokens()
    fake_quickbooks.token_latency = 0.5
    barrier, results, errors = threading.Barrier(2), [], []

    def worker():
        with app.app_context():
            try:
                barrier.wait()
                results.append(quickbooks.client().refresh(stale)["access_token"])
            except Exception as exc:  # noqa: BLE001 - reported below
                errors.append(exc)
            finally:
                from app.extensions import db as _db

                _db.session.remove()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    assert fake_quickbooks.stats["refreshes"] == 2  # the connect, then exactly one refresh
    assert results[0] == results[1] != stale
    assert quickbooks.connection_status() == CONNECTED


def test_query_all_pages_2500_rows_with_one_based_startposition(app, db, redis):
    fake = FakeQuickBooks(client_id="c", client_secret="s").start()
    try:
        seed_volume(fake, {"Customer": 2500, "Estimate": 0, "Invoice": 0, "Payment": 0})
        with quickbooks_app(app, fake):
            quickbooks.connect(fake.realm_id, fake.issue_refresh_token())
            ids = [c["Id"] for c in quickbooks.query_all("Customer")]
        assert len(ids) == len(set(ids)) == 2500
        queries = [r[2]["query"][0] for r in fake.requests if r[1].endswith("/query")]
        assert [q.split("STARTPOSITION")[1] for q in queries] == [
            " 1 MAXRESULTS 1000", " 1001 MAXRESULTS 1000", " 2001 MAXRESULTS 1000"]
        assert all("Active IN (true, false)" in q for q in queries)  # inactive customers too
    finally:
        fake.stop()


def test_every_request_asks_for_json_with_minorversion_75_and_nothing_is_ever_written(db, fake_quickbooks):
    quickbooks.connect(fake_quickbooks.realm_id, fake_quickbooks.issue_refresh_token())
    since = fake_quickbooks.now() - timedelta(days=1)
    for entity in ("Customer", "Estimate", "Invoice", "Payment"):
        assert list(quickbooks.query_all(entity))
    quickbooks.changes_since(["Customer", "Estimate", "Invoice", "Payment"], since)
    quickbooks.get_entity("Invoice", "25")
    fake_quickbooks.expire_access_tokens()
    quickbooks.get_entity("Invoice", "26")
    quickbooks.disconnect()
    assert fake_quickbooks.stats["writes"] == 0
    gets = [r for r in fake_quickbooks.requests if r[0] == "GET"]
    assert gets and all(r[2]["minorversion"] == ["75"] and r[3] == "application/json" for r in gets)
    assert {r[1] for r in fake_quickbooks.requests if r[0] != "GET"} == {
        "/oauth2/v1/tokens/bearer", "/v2/oauth2/tokens/revoke"}


def test_changes_since_returns_changes_and_deletions(db, fake_quickbooks):
    quickbooks.connect(fake_quickbooks.realm_id, fake_quickbooks.issue_refresh_token())
    since = fake_quickbooks.now()
    fake_quickbooks.clock = Clock(start=fake_quickbooks.clock() + 5)  # the changes happen after `since`
    fake_quickbooks.change("Estimate", "Update", "15", {"TxnStatus": "Accepted", "AcceptedDate": "2026-11-30"})
    fake_quickbooks.change("Invoice", "Delete", "30")
    changes = quickbooks.changes_since(["Customer", "Estimate", "Invoice"], since)
    assert changes["Customer"] == []
    assert [(e["Id"], e["TxnStatus"]) for e in changes["Estimate"]] == [("15", "Accepted")]
    assert [(i["Id"], i["status"]) for i in changes["Invoice"]] == [("30", "Deleted")]
    assert quickbooks.get_entity("Invoice", "30") is None
    assert quickbooks.get_entity("Customer", "424242") is None


def test_changes_since_over_30_days_raises_cdc_too_old_without_asking(db, fake_quickbooks):
    quickbooks.connect(fake_quickbooks.realm_id, fake_quickbooks.issue_refresh_token())
    asked = len(fake_quickbooks.requests)
    with pytest.raises(CdcTooOld):
        quickbooks.changes_since(["Estimate"], fake_quickbooks.now() - timedelta(days=31))
    assert len(fake_quickbooks.requests) == asked


def test_cdc_over_1000_objects_is_asked_per_entity_and_refused_when_one_entity_overflows(db, fake_quickbooks):
    quickbooks.connect(fake_quickbooks.realm_id, fake_quickbooks.issue_refresh_token())
    # Stamped after `since` by the test, not by the machine's speed: the seeded books stay out.
    since = fake_quickbooks.now() + timedelta(minutes=1)
    stamp = since + timedelta(seconds=1)
    for i in range(600):
        fake_quickbooks.add("Customer", {"DisplayName": f"Bulk {i}"}, when=stamp)
        fake_quickbooks.add("Payment", {"TotalAmt": 10.0}, when=stamp)
    changes = quickbooks.changes_since(["Customer", "Payment"], since)
    assert (len(changes["Customer"]), len(changes["Payment"])) == (600, 600)
    for i in range(401):
        fake_quickbooks.add("Customer", {"DisplayName": f"More {i}"}, when=stamp)
    with pytest.raises(CdcTruncated):
        quickbooks.changes_since(["Customer", "Payment"], since)


def test_webhook_signature_is_checked_against_the_raw_body(app, fake_quickbooks):
    body, headers = fake_quickbooks.signed_webhook([("Estimate", "15", "Update", "2026-11-30T10:00:00Z")])
    with app.app_context():
        assert quickbooks.verify_webhook(body, headers["intuit-signature"]) is True
        assert quickbooks.verify_webhook(body + b" ", headers["intuit-signature"]) is False
        assert quickbooks.verify_webhook(body, sign_webhook("someone-else", body)) is False
        assert quickbooks.verify_webhook(body, None) is False
        assert quickbooks.verify_webhook(body, "") is False


def authorize(app, fake, user_id):
    with app.app_context():
        url = httpx.URL(quickbooks.authorize_url(user_id=user_id, redirect_uri="http://localhost/qb/callback"))
    assert url.params["scope"] == "com.intuit.quickbooks.accounting" and url.params["response_type"] == "code"
    page = httpx.get(str(url))
    link = page.text.split("href='")[1].split("'")[0].replace("&amp;", "&")
    return httpx.URL(httpx.get(fake.url + link).headers["Location"]).params


def test_oauth_callback_with_a_foreign_or_reused_state_is_refused(app, db, fake_quickbooks):
    callback = authorize(app, fake_quickbooks, user_id=1)
    with pytest.raises(OAuthStateMismatch):
        quickbooks.complete_authorization(callback["code"], "forged-state", callback["realmId"], user_id=1)
    with pytest.raises(OAuthStateMismatch):  # another user's state
        quickbooks.complete_authorization(callback["code"], callback["state"], callback["realmId"], user_id=2)
    assert quickbooks.connection_status() == NOT_CONNECTED
    callback = authorize(app, fake_quickbooks, user_id=1)
    quickbooks.complete_authorization(callback["code"], callback["state"], callback["realmId"], user_id=1)
    assert quickbooks.connection_status() == CONNECTED and quickbooks.realm_id() == fake_quickbooks.realm_id
    with pytest.raises(OAuthStateMismatch):  # a state works once
        quickbooks.complete_authorization(callback["code"], callback["state"], callback["realmId"], user_id=1)
    assert audit_actions(db).count("quickbooks_oauth_refused") == 3


def test_disconnect_revokes_at_intuit_and_deletes_the_tokens(db, fake_quickbooks):
    quickbooks.connect(fake_quickbooks.realm_id, fake_quickbooks.issue_refresh_token())
    token = stored(db)["refresh_token"]
    assert quickbooks.disconnect() is True
    assert token not in fake_quickbooks.refresh_tokens
    assert quickbooks.connection_status() == NOT_CONNECTED
    assert db.session.get(IntegrationSecret, quickbooks.SECRET_NAME) is None
    assert audit_actions(db) == ["quickbooks_connected", "quickbooks_disconnected"]


def test_a_full_then_incremental_mirror_sync_over_http_writes_nothing_to_quickbooks(db, fake_quickbooks):
    from app.models import Estimate, Invoice, Payment, QbCustomer
    from app.money import run_sync

    quickbooks.connect(fake_quickbooks.realm_id, fake_quickbooks.issue_refresh_token())
    run_sync(full=True)
    mirrored = {model.__name__: db.session.scalar(select(func.count()).select_from(model))
                for model in (QbCustomer, Estimate, Invoice, Payment)}
    assert mirrored == {"QbCustomer": 12, "Estimate": 12, "Invoice": 6, "Payment": 4}  # the inactive customer too
    fake_quickbooks.clock = Clock(start=fake_quickbooks.clock() + 5)
    fake_quickbooks.change("Estimate", "Update", "15", {"TxnStatus": "Accepted", "AcceptedDate": "2026-11-30"})
    fake_quickbooks.change("Invoice", "Delete", "30")
    fake_quickbooks.expire_access_tokens()
    run_sync()
    assert db.session.scalar(select(Estimate.status).where(Estimate.qb_id == "15")) == "Accepted"
    assert db.session.scalar(select(Invoice.deleted).where(Invoice.qb_id == "30")) is True
    assert any(r[1].endswith("/cdc") for r in fake_quickbooks.requests)
    assert fake_quickbooks.stats["writes"] == 0
    assert {r[1] for r in fake_quickbooks.requests if r[0] != "GET"} == {"/oauth2/v1/tokens/bearer"}


def test_invalid_grant_during_a_sync_pauses_it_and_keeps_the_mirror(db, fake_quickbooks):
    from app.models import Estimate
    from app.money import Disconnected, run_sync

    quickbooks.connect(fake_quickbooks.realm_id, fake_quickbooks.issue_refresh_token())
    run_sync(full=True)
    fake_quickbooks.refresh_tokens.clear()
    fake_quickbooks.expire_access_tokens()
    with pytest.raises(Disconnected):
        run_sync(full=True)
    assert quickbooks.connection_status() == NEEDS_RECONNECT
    assert db.session.scalar(select(func.count()).select_from(Estimate).where(Estimate.deleted.is_(False))) == 12


@pytest.mark.parametrize("base", ["https://quickbooks.api.intuit.com", "https://quickbooks.api.intuit.com/v3",
                                  "https://quickbooks.api.intuit.com/v3/"])
def test_the_api_base_may_be_configured_with_or_without_v3(app, base):
    config = dict(app.config, QUICKBOOKS_CLIENT_ID="id", QUICKBOOKS_BASE_URL=base)
    assert quickbooks.settings(config)["base_url"] == "https://quickbooks.api.intuit.com"


def test_without_a_verifier_token_no_webhook_is_accepted(app):
    body = b'[{"id": "1"}]'
    assert not app.config.get("QUICKBOOKS_CLIENT_ID") and not app.config.get("QUICKBOOKS_WEBHOOK_VERIFIER")
    with app.app_context():
        assert quickbooks.verify_webhook(body, sign_webhook("sandbox-verifier", body)) is False
        assert quickbooks.verify_webhook(body, sign_webhook("", body)) is False


def test_crm_quickbooks_connect_stores_the_rotated_token_and_refuses_a_bad_one(app, db, fake_quickbooks):
    from run import quickbooks_connect_command

    runner = app.test_cli_runner()
    bad = runner.invoke(quickbooks_connect_command, ["--realm-id", fake_quickbooks.realm_id,
                                                     "--refresh-token", "RT1-wrong"])
    assert bad.exit_code != 0 and "invalid_grant" in bad.output
    assert quickbooks.connection_status() == NOT_CONNECTED
    given = fake_quickbooks.issue_refresh_token()
    ok = runner.invoke(quickbooks_connect_command, ["--realm-id", fake_quickbooks.realm_id, "--refresh-token", given])
    assert ok.exit_code == 0 and f"Connected to QuickBooks company {fake_quickbooks.realm_id}" in ok.output
    assert given not in ok.output
    db.session.remove()
    assert quickbooks.connection_status() == CONNECTED and stored(db)["refresh_token"] != given


def test_a_customer_query_names_active_only_where_the_caller_did_not(db, fake_quickbooks):
    quickbooks.connect(fake_quickbooks.realm_id, fake_quickbooks.issue_refresh_token())
    inactive = fake_quickbooks.add("Customer", {"DisplayName": "Inactive Concrete Co", "Active": False})
    names = [c["DisplayName"] for c in quickbooks.query_all("Customer", "DisplayName = 'Inactive Concrete Co'")]
    assert names == ["Inactive Concrete Co"] and inactive["Active"] is False
    assert [c["Id"] for c in quickbooks.query_all("Customer", "Active = true AND Id = '12'")] == []
