"""POST /webhooks/openphone and what each event does."""
import json
import threading
import time
from datetime import date, timedelta
from datetime import time as dtime

import pytest

from app import events, messages, opt_outs
from app.audit import flush_rejections, rejections_last_hour
from app.fake_openphone import FakeOpenPhone
from app.history_models import Call
from app.models import AuditLog, Campaign, CampaignRecipient, Contact, Message, OptOut, WebhookEvent, utcnow
from tests.conftest import send_queued

PHONE = "+16175550123"
URL = "/webhooks/openphone"


@pytest.fixture
def signer(app):
    fake = FakeOpenPhone(webhook_secret=app.config["OPENPHONE_WEBHOOK_SECRET"])
    yield fake
    fake.server.server_close()


def received(signer, text, phone=PHONE, message_id=None):
    return signer.event("message.received", {"id": message_id or f"AC{time.time_ns()}", "from": phone,
                                             "to": ["+16175550100"], "text": text, "direction": "incoming"})


def deliver(app, signer, event, scheme="standard"):
    body, headers = signer.signed(event, scheme=scheme)
    return app.test_client().post(URL, data=body, headers=headers)


@pytest.mark.parametrize("scheme", ["standard", "legacy"])
def test_signed_event_is_stored_and_processed(app, db, signer, run_jobs, scheme):
    response = deliver(app, signer, received(signer, "Hi, how much for a crack?"), scheme)
    assert response.status_code == 200
    run_jobs()
    event = db.session.query(WebhookEvent).one()
    assert event.status == "processed" and event.attempts == 1
    message = db.session.query(Message).one()
    assert message.direction == "incoming" and message.body == "Hi, how much for a crack?"
    assert message.contact.phone == PHONE and message.contact.source == "inbound"


def _tamper(body, headers):
    return body.replace(b"Hello", b"Howdy"), headers


def _stale(signer, event):
    body = json.dumps(event).encode()
    from app.openphone import sign_standard

    return body, sign_standard(signer.webhook_secret, body, "msg_1", int(time.time()) - 600)


@pytest.mark.parametrize("attack", ["wrong key", "tampered body", "stale timestamp", "missing header",
                                    "stale legacy"])
def test_bad_signatures_are_refused_and_nothing_is_stored(app, db, signer, run_jobs, attack):
    event = received(signer, "Hello")
    if attack == "wrong key":
        forger = FakeOpenPhone(webhook_secret="whsec_" + "Zm9yZ2VkLXNlY3JldC1mb3JnZWQtc2VjcmV0")
        body, headers = forger.signed(event)
        forger.server.server_close()
    elif attack == "tampered body":
        body, headers = _tamper(*signer.signed(event))
    elif attack == "stale timestamp":
        body, headers = _stale(signer, event)
    elif attack == "stale legacy":
        from app.openphone import sign_legacy

        body = json.dumps(event).encode()
        headers = {"openphone-signature": sign_legacy(signer.webhook_secret, body, int(time.time() * 1000) - 600_000)}
    else:
        body, headers = json.dumps(event).encode(), {"Content-Type": "application/json"}
    response = app.test_client().post(URL, data=body, headers=headers)
    assert response.status_code == 401
    run_jobs()
    assert db.session.query(WebhookEvent).count() == 0 and db.session.query(Message).count() == 0
    assert db.session.query(AuditLog).filter_by(action="webhook_rejected").count() == 0  # counted instead
    assert rejections_last_hour() == {"webhook_rejected": 1}


@pytest.mark.parametrize("body", [b"not json", b"[]", b'{"type": "message.received"}', b'{"id": 5, "type": "x"}'])
def test_malformed_body_answers_400(app, db, signer, body):
    from app.openphone import sign_standard

    headers = sign_standard(signer.webhook_secret, body, "msg_1", int(time.time()))
    assert app.test_client().post(URL, data=body, headers=headers).status_code == 400
    assert db.session.query(WebhookEvent).count() == 0


def test_five_concurrent_deliveries_of_one_event_are_processed_once(app, db, signer, run_jobs):
    event = received(signer, "Yes please come by")
    body, headers = signer.signed(event)
    codes, start = [], threading.Barrier(5)

    def post():
        client = app.test_client()
        start.wait()
        codes.append(client.post(URL, data=body, headers=headers).status_code)

    threads = [threading.Thread(target=post) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert codes == [200] * 5
    run_jobs()
    events.process_event(db.session.query(WebhookEvent).one().id)  # a late duplicate job does nothing
    assert db.session.query(WebhookEvent).one().attempts == 1
    assert db.session.query(Message).count() == 1 and db.session.query(Contact).count() == 1


def test_storing_one_event_id_twice_keeps_one_row_and_enqueues_one_job(app, db, redis, run_jobs):
    from app.queue import get_queue

    body = json.dumps({"id": "EV-twice", "type": "contact.updated", "data": {"object": {"id": "CT1"}}})
    first = events.store_event("EV-twice", "contact.updated", body)
    assert events.store_event("EV-twice", "contact.updated", body) is None
    row = db.session.query(WebhookEvent).one()
    assert first == row.id and row.status == "received" and row.body == body
    assert get_queue().job_ids == [f"webhook-event-{row.id}"]
    run_jobs()
    assert db.session.get(WebhookEvent, row.id, populate_existing=True).status == "ignored"


def test_replies_from_a_new_number_create_one_contact(app, db, signer, run_jobs):
    for text in ("Hi", "Are you there?", "Call me"):
        assert deliver(app, signer, received(signer, text)).status_code == 200
    run_jobs()
    contact = db.session.query(Contact).one()
    assert [m.body for m in contact.messages] == ["Hi", "Are you there?", "Call me"]


def _campaign_recipient(db, sent_days_ago):
    campaign = Campaign(name=f"C{sent_days_ago}", sending_number="+16175550100", window_start=dtime(9),
                        window_end=dtime(18), start_date=date.today())
    db.session.add(campaign)
    db.session.flush()
    recipient = CampaignRecipient(campaign_id=campaign.id, phone=PHONE, status="sent",
                                  sent_at=utcnow() - timedelta(days=sent_days_ago))
    db.session.add(recipient)
    db.session.commit()
    return recipient.id


def test_reply_is_attributed_to_the_latest_campaign_text(app, db, signer, run_jobs):
    old, latest, _too_old = _campaign_recipient(db, 9), _campaign_recipient(db, 2), _campaign_recipient(db, 30)
    deliver(app, signer, received(signer, "How much?"))
    run_jobs()
    message = db.session.query(Message).one()
    assert message.campaign_recipient_id == latest
    assert db.session.get(CampaignRecipient, latest).replied_at is not None
    assert db.session.get(CampaignRecipient, old).replied_at is None


def test_stop_keyword_opts_out_and_sends_nothing(app, db, signer, run_jobs, fake_openphone):
    recipient = _campaign_recipient(db, 1)
    deliver(app, signer, received(signer, "STOP"))
    run_jobs()
    row = db.session.query(OptOut).one()
    assert row.active and row.source == "keyword" and row.message_id == db.session.query(Message).one().id
    assert db.session.get(CampaignRecipient, recipient).opted_out_at is not None
    assert fake_openphone.sent == []


def test_opt_out_phrase_gets_exactly_one_confirmation(app, db, signer, run_jobs, fake_openphone):
    deliver(app, signer, received(signer, "Please stop texting me"))
    run_jobs()
    deliver(app, signer, received(signer, "I said stop texting me!"))
    run_jobs()
    assert db.session.query(OptOut).one().source == "phrase"
    assert [m["text"] for m in fake_openphone.sent] == [app.config["OPT_OUT_CONFIRMATION"]]
    with pytest.raises(opt_outs.OptedOut):
        messages.queue_text(PHONE, "Spring special!")


@pytest.mark.parametrize("text, ours", [
    ("STOP", False), ("Unsubscribe.", False), ("quit", False),  # OpenPhone answers these itself
    ("Parar", True), ("unsub", True), ("STOP STOP STOP", True), ("no more texts please", True),
])
def test_an_opt_out_gets_one_confirmation_ours_unless_openphone_sends_it(app, db, signer, run_jobs,
                                                                        fake_openphone, text, ours):
    deliver(app, signer, received(signer, text))
    run_jobs()
    assert db.session.query(OptOut).one().active
    expected = [app.config["OPT_OUT_CONFIRMATION"]] if ours else []
    assert [m["text"] for m in fake_openphone.sent] == expected


def test_stop_with_a_nul_byte_opts_out_and_stores_clean_text(app, db, signer, run_jobs):
    """PostgreSQL text cannot hold NUL: the event must not fail and lose the opt-out."""
    deliver(app, signer, received(signer, "STOP\u0000", phone="(617) 555-0123"))
    run_jobs()
    assert db.session.query(WebhookEvent).one().status == "processed"
    message = db.session.query(Message).one()
    assert message.body == "STOP" and message.opt_out_class == "keyword"
    assert opt_outs.is_opted_out(PHONE) and db.session.query(OptOut).one().reason == "STOP"


def test_unclear_reply_is_kept_for_a_person_and_opts_nobody_out(app, db, signer, run_jobs, fake_openphone):
    deliver(app, signer, received(signer, "Not interested"))
    deliver(app, signer, received(signer, "Don't text me before 9am please, I work nights"))
    run_jobs()
    classes = {m.body: m.opt_out_class for m in db.session.query(Message)}
    assert classes == {"Not interested": "uncertain", "Don't text me before 9am please, I work nights": None}
    assert not opt_outs.is_opted_out(PHONE) and fake_openphone.sent == []


def test_start_does_not_lift_an_opt_out_a_person_recorded(app, db, signer, run_jobs):
    opt_outs.opt_out(PHONE, "manual", reason="asked on the phone")
    db.session.commit()
    deliver(app, signer, received(signer, "START"))
    run_jobs()
    assert opt_outs.is_opted_out(PHONE) and db.session.query(OptOut).one().source == "manual"
    assert db.session.query(Message).one().opt_out_class == "opt_in"


def test_reply_from_a_differently_written_number_joins_the_existing_contact(app, db, signer, run_jobs):
    db.session.add(Contact(first_name="Ann", phone=PHONE))
    db.session.commit()
    for sender in ("(617) 555-0123", "617.555.0123", "+1 617 555 0123"):
        deliver(app, signer, received(signer, "Yes, interested", phone=sender))
    run_jobs()
    assert db.session.query(Contact).count() == 1
    assert [m.contact.first_name for m in db.session.query(Message)] == ["Ann", "Ann", "Ann"]


def test_start_opts_back_in_and_keeps_the_message(app, db, signer, run_jobs):
    deliver(app, signer, received(signer, "STOP"))
    run_jobs()
    deliver(app, signer, received(signer, "start"))
    run_jobs()
    row = db.session.query(OptOut).one()
    assert not row.active and row.revoked_message_id is not None
    assert not opt_outs.is_opted_out(PHONE)


def test_delivery_reports_update_the_outgoing_message(app, db, signer, run_jobs, fake_openphone):
    ok = messages.queue_text(PHONE, "first")
    bad = messages.queue_text("+16175550124", "second")
    db.session.commit()
    send_queued(ok.id)
    fake_openphone.configure(delivery="failed")
    send_queued(bad.id)
    for body, headers in fake_openphone.take_webhooks():
        assert app.test_client().post(URL, data=body, headers=headers).status_code == 200
    run_jobs()
    assert db.session.get(Message, ok.id, populate_existing=True).status == "delivered"
    assert db.session.get(Message, bad.id, populate_existing=True).status == "failed"


def test_calls_appear_on_the_contact_timeline_and_unknown_types_are_ignored(app, db, signer, run_jobs):
    deliver(app, signer, signer.event("call.completed", {"id": "CA1", "from": PHONE, "to": "+16175550100",
                                                         "direction": "incoming", "status": "completed",
                                                         "duration": 42}))
    deliver(app, signer, signer.event("contact.updated", {"id": "CT1"}))
    run_jobs()
    call = db.session.query(Call).one()
    assert (call.provider_id, call.direction, call.status, call.duration) == ("CA1", "incoming", "completed", 42)
    assert call.contact.phone == PHONE and db.session.query(Message).count() == 0
    assert {e.type: e.status for e in db.session.query(WebhookEvent)} == {
        "call.completed": "processed", "contact.updated": "ignored"}


def test_failing_event_is_retried_then_shown_on_failed_events_with_a_retry_button(
        app, db, signer, run_jobs, client_for, post_form, fake_openphone):
    event = signer.event("message.delivered", {"id": "AC-not-yet-recorded"})
    deliver(app, signer, event)
    run_jobs()
    row = db.session.query(WebhookEvent).one()
    assert row.status == "retrying" and "no outgoing message" in row.error
    for _ in range(app.config["WEBHOOK_MAX_ATTEMPTS"]):
        db.session.query(WebhookEvent).update({"next_attempt_at": utcnow() - timedelta(seconds=1)})
        db.session.commit()
        events.recover_events()
        run_jobs()
    row = db.session.query(WebhookEvent).one()
    assert row.status == "failed" and row.attempts == app.config["WEBHOOK_MAX_ATTEMPTS"]
    admin = client_for("admin")
    page = admin.get("/webhookeventview/list/").get_data(as_text=True)
    assert "message.delivered" in page and row.provider_event_id in page and "Retry" in page
    # the outgoing message shows up after all; the person presses Retry
    sent = messages.queue_text(PHONE, "hello")
    db.session.commit()
    db.session.query(Message).filter_by(id=sent.id).update({"provider_id": "AC-not-yet-recorded", "status": "sent"})
    db.session.commit()
    response = post_form(admin, "/webhookeventview/action_post", {"action": "retry", "rowid": row.id})
    assert response.status_code == 302
    run_jobs()
    assert db.session.get(WebhookEvent, row.id, populate_existing=True).status == "processed"
    assert db.session.get(Message, sent.id, populate_existing=True).status == "delivered"


# --- floods: nothing is read before the headers pass, never more than the cap, and counted --------

class CountingStream:
    """A request body that remembers how many bytes the app read from it."""

    def __init__(self, size):
        self.left, self.read_bytes = size, 0

    def read(self, n=-1):
        n = self.left if n is None or n < 0 else min(n, self.left)
        self.left -= n
        self.read_bytes += n
        return b"x" * n

    def readline(self, limit=-1):
        return self.read(min(limit, 1) if limit and limit > 0 else 1)


def _post_stream(app, stream, headers, length=None):
    environ = {"wsgi.input": stream, "wsgi.input_terminated": length is None}
    if length is not None:
        environ["CONTENT_LENGTH"] = str(length)
    return app.test_client().post(URL, headers=headers, environ_overrides=environ)


def _forged_headers():
    return {"webhook-id": "msg_1", "webhook-timestamp": str(int(time.time())), "webhook-signature": "v1,Zm9yZ2Vk"}


@pytest.mark.parametrize("content_type", ["application/json", "application/x-www-form-urlencoded",
                                          "multipart/form-data; boundary=x"])
def test_an_unsigned_flood_is_refused_without_reading_its_body(app, db, content_type):
    stream = CountingStream(30 * 1024 * 1024)
    response = _post_stream(app, stream, {"Content-Type": content_type}, length=30 * 1024 * 1024)
    assert response.status_code == 401 and stream.read_bytes == 0


def test_a_declared_length_over_the_cap_is_413_without_reading(app, db):
    stream = CountingStream(30 * 1024 * 1024)
    response = _post_stream(app, stream, _forged_headers(), length=30 * 1024 * 1024)
    assert response.status_code == 413 and stream.read_bytes == 0
    assert rejections_last_hour() == {"webhook_rejected": 1}


def test_a_chunked_body_is_read_up_to_the_cap_and_one_byte(app, db, monkeypatch):
    monkeypatch.setitem(app.config, "WEBHOOK_MAX_BYTES", 1000)
    stream = CountingStream(30 * 1024 * 1024)
    response = _post_stream(app, stream, _forged_headers())
    assert response.status_code == 413 and stream.read_bytes == 1001


def test_a_signed_event_at_the_cap_is_accepted_and_one_byte_more_is_413(app, db, signer, monkeypatch):
    event = received(signer, "Hi")
    body, _ = signer.signed(event)
    monkeypatch.setitem(app.config, "WEBHOOK_MAX_BYTES", len(body))
    assert deliver(app, signer, event).status_code == 200
    bigger = received(signer, "Hi!")
    assert deliver(app, signer, bigger).status_code == 413
    assert db.session.query(WebhookEvent).count() == 1


def test_two_hundred_forged_posts_write_one_audit_row_per_source_and_minute(app, db, signer):
    client = app.test_client()
    for i in range(200):
        headers = {} if i % 2 else _forged_headers()
        environ = {"REMOTE_ADDR": "203.0.113.7" if i < 150 else "198.51.100.9"}
        assert client.post(URL, data=b'{"id": "EV1"}', headers=headers, environ_overrides=environ).status_code == 401
    assert db.session.query(AuditLog).count() == 0
    assert app.test_client().get("/health").get_json()["rejected_last_hour"] == {"webhook_rejected": 200}
    assert flush_rejections(now=time.time() + 120) == 2
    rows = {row.ip: row for row in db.session.query(AuditLog).filter_by(action="webhook_rejected")}
    assert {ip: row.changes["count"] for ip, row in rows.items()} == {"203.0.113.7": 150, "198.51.100.9": 50}
    assert rows["203.0.113.7"].changes["names"] == {"signature mismatch": 75, "missing signature header": 75}
