"""The mirror over real HTTP through the fake QuickBooks: a full sync of the seeded company, the
CLI, and POST /webhooks/quickbooks in both shapes, replayed, reordered, forged, for another company."""
import json
import time

from sqlalchemy import func, select

from app import audit, quickbooks
from app.models import AuditLog, Estimate, Invoice, Job, QbCustomer, QuickbooksSync, WebhookEvent
from app.money import run_sync
from run import quickbooks_sync_command


def connect(fake):
    quickbooks.connect(fake.realm_id, fake.issue_refresh_token())


def count(db, model, *where):
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


def test_a_full_sync_mirrors_the_seeded_company_and_a_second_changes_nothing(db, fake_quickbooks):
    connect(fake_quickbooks)
    first = run_sync(full=True)
    assert count(db, QbCustomer) == len(fake_quickbooks.entities["Customer"]) == 12  # the inactive one too
    assert count(db, Estimate) == 12 and count(db, Invoice) == 6
    assert first["Payment"]["created"] == 4
    assert count(db, QbCustomer, QbCustomer.contact_id.is_(None)) == count(
        db, QbCustomer, QbCustomer.match.in_(("no_phone_or_email", "ambiguous", "error")))
    estimates = db.session.execute(select(Estimate.qb_id, Estimate.sync_token, Estimate.synced_at)).all()
    second = run_sync(full=False)
    assert all(second[e]["created"] == second[e]["updated"] == 0 for e in ("Customer", "Estimate", "Invoice"))
    assert db.session.execute(select(Estimate.qb_id, Estimate.sync_token, Estimate.synced_at)).all() == estimates
    assert fake_quickbooks.stats["writes"] == 0


def test_crm_quickbooks_sync_exits_0_when_done_and_explains_a_disconnection(app, db, fake_quickbooks):
    connect(fake_quickbooks)
    runner = app.test_cli_runner()
    ok = runner.invoke(quickbooks_sync_command, ["--full"])
    assert ok.exit_code == 0, ok.output
    assert "Estimate: 12 created" in ok.output
    fake_quickbooks.refresh_tokens.clear()  # Intuit forgets the token: invalid_grant
    fake_quickbooks.expire_access_tokens()
    refused = runner.invoke(quickbooks_sync_command, [])
    assert refused.exit_code != 0 and "reconnect" in refused.output.lower()
    assert count(db, Estimate) == 12  # nothing deleted
    assert quickbooks.connection_status() == "needs_reconnect"


def post(client, body, headers):
    return client.post("/webhooks/quickbooks", data=body, headers=headers)


def test_webhooks_in_both_shapes_fetch_the_changed_record_once(app, db, fake_quickbooks, run_jobs):
    connect(fake_quickbooks)
    run_sync(full=True)
    pending = next(e for e in fake_quickbooks.entities["Estimate"].values() if e["TxnStatus"] == "Pending")
    client = app.test_client()
    fake_quickbooks.change("Estimate", "Update", pending["Id"], {"TxnStatus": "Accepted",
                                                                 "AcceptedDate": time.strftime("%Y-%m-%d")})
    body, headers = fake_quickbooks.webhooks[-1]
    answer = post(client, body, headers)
    assert answer.status_code == 200 and answer.get_json()["events"] == 1
    assert post(client, body, headers).get_json() == {"status": "queued", "events": 0, "duplicates": 1}  # replay
    run_jobs()
    row = db.session.scalar(select(Estimate).filter_by(qb_id=pending["Id"]))
    assert row.status == "Accepted" and row.sync_token == 1
    assert count(db, Job, Job.estimate_id == row.id) == 1
    event = db.session.scalar(select(WebhookEvent))
    assert event.provider_event_id.startswith("qb:") and event.type == "qbo.estimate.updated"
    assert event.status == "processed"
    invoice = next(iter(fake_quickbooks.entities["Invoice"].values()))
    fake_quickbooks.change("Invoice", "Delete", invoice["Id"], notify=False)
    body, headers = fake_quickbooks.signed_webhook([("Invoice", invoice["Id"], "Delete", "2026-11-30T10:00:00Z")],
                                                   shape="legacy")
    assert post(client, body, headers).get_json()["events"] == 1
    assert post(client, body, headers).get_json()["duplicates"] == 1
    run_jobs()
    assert db.session.scalar(select(Invoice.deleted).filter_by(qb_id=invoice["Id"])) is True
    assert count(db, WebhookEvent) == 2


def test_reordered_webhooks_leave_the_newest_version(app, db, fake_quickbooks, run_jobs):
    connect(fake_quickbooks)
    run_sync(full=True)
    estimate = next(iter(fake_quickbooks.entities["Estimate"].values()))
    client = app.test_client()
    fake_quickbooks.change("Estimate", "Update", estimate["Id"], {"TotalAmt": 100.0})
    older = fake_quickbooks.webhooks[-1]
    post(client, *older)
    run_jobs()  # fetched while 100.0 was current... then QuickBooks changes it again
    fake_quickbooks.change("Estimate", "Update", estimate["Id"], {"TotalAmt": 200.0})
    newer = fake_quickbooks.webhooks[-1]
    post(client, *newer)
    run_jobs()
    db.session.execute(WebhookEvent.__table__.delete())  # the older delivery arrives again, late
    db.session.commit()
    post(client, *older)
    run_jobs()
    db.session.expire_all()
    row = db.session.scalar(select(Estimate).filter_by(qb_id=estimate["Id"]))
    assert float(row.total) == 200.0 and row.sync_token == int(fake_quickbooks.entities["Estimate"][estimate["Id"]]
                                                              ["SyncToken"])


def test_a_webhook_for_another_company_is_recorded_as_ignored(app, db, fake_quickbooks, run_jobs):
    connect(fake_quickbooks)
    payload = [{"specversion": "1.0", "id": "ev-other", "type": "qbo.estimate.updated.v1", "time": "2026-11-30T10:00:00Z",
                "intuitentityid": "1", "intuitaccountid": "999", "data": {}}]
    body = json.dumps(payload).encode()
    headers = {"Content-Type": "application/json", "intuit-signature": quickbooks.sign_webhook(fake_quickbooks.verifier, body)}
    assert post(app.test_client(), body, headers).status_code == 200
    run_jobs()
    event = db.session.scalar(select(WebhookEvent))
    assert (event.provider_event_id, event.status) == ("qb:ev-other", "ignored")
    assert count(db, Estimate) == 0


def test_unsigned_or_forged_webhooks_are_refused_and_audited(app, db, fake_quickbooks, redis):
    connect(fake_quickbooks)
    body, headers = fake_quickbooks.signed_webhook([("Estimate", "1", "Update", "2026-11-30T10:00:00Z")])
    client = app.test_client()
    assert post(client, body, {"Content-Type": "application/json"}).status_code == 401
    forged = dict(headers, **{"intuit-signature": quickbooks.sign_webhook("not-the-verifier", body)})
    assert post(client, body, forged).status_code == 401
    tampered = body.replace(b'"1"', b'"2"')
    assert post(client, tampered, headers).status_code == 401
    assert post(client, b"{not json", {"intuit-signature": quickbooks.sign_webhook(fake_quickbooks.verifier,
                                                                                   b"{not json")}).status_code == 400
    assert count(db, WebhookEvent) == 0
    audit.flush_rejections(now=time.time() + 120)
    rows = db.session.scalars(select(AuditLog).where(AuditLog.action == "webhook_rejected")).all()
    assert sum(row.changes["count"] for row in rows) == 3
    assert {"no intuit-signature", "forged intuit-signature"} <= {n for row in rows for n in row.changes["names"]}


def test_once_connected_the_tick_enqueues_a_sync_the_worker_runs(app, db, fake_quickbooks, run_jobs, client_for):
    from app.money import enqueue_sync_if_due

    assert enqueue_sync_if_due() == 1  # not connected: the to-do refresh only
    run_jobs()
    assert count(db, Estimate) == 0
    connect(fake_quickbooks)
    assert [enqueue_sync_if_due() for _ in range(3)] == [1, 0, 0]  # connecting does not wait its turn
    run_jobs()
    assert count(db, Estimate) == 12
    assert enqueue_sync_if_due() == 0  # the next one is QUICKBOOKS_SYNC_MINUTES away
    assert "Last QuickBooks sync" in client_for("admin").get("/").get_data(as_text=True)


def test_crm_quickbooks_sync_explains_quickbooks_not_answering_and_keeps_what_it_has(app, db, fake_quickbooks):
    connect(fake_quickbooks)
    runner = app.test_cli_runner()
    assert runner.invoke(quickbooks_sync_command, ["--full"]).exit_code == 0
    saved = app.config["QUICKBOOKS_BASE_URL"]
    app.config["QUICKBOOKS_BASE_URL"] = "http://127.0.0.1:9"  # QuickBooks' API stops answering
    try:
        quickbooks.client().sleep = lambda seconds: None  # the retries' waits, without waiting
        down = runner.invoke(quickbooks_sync_command, [])
    finally:
        app.config["QUICKBOOKS_BASE_URL"] = saved
    assert down.exit_code != 0 and "did not answer" in down.output
    assert count(db, Estimate) == 12
    state = db.session.get(QuickbooksSync, 1, populate_existing=True)
    assert state.running_since is None and state.last_error
    assert quickbooks.connection_status() == "connected"  # a timeout is not a disconnection
