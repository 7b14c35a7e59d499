"""The OpenPhone history import against the fake OpenPhone over real HTTP."""
import base64
import json
from datetime import datetime, timedelta, timezone

import httpx
import pytest
from sqlalchemy import func, select

from app.fake_history import PNG, seed
from app.fake_openphone import FakeOpenPhone
from app.history import SOURCE, import_history, outcome_counts
from app.history_models import Call, HistoryItem, Media
from app.models import Contact, Message, OptOut
from app.openphone import OpenPhone
from tests.clocked import SteppedClock

NUMBER = "+16175550100"


def client(fake, redis=None):
    return OpenPhone("test-key", fake.url, redis=redis, rate=10, retries_429=20)


def count(model, *where):
    from app.extensions import db

    return db.session.scalar(select(func.count()).select_from(model).where(*where))


@pytest.fixture
def history_fake(app, fake_openphone):
    return fake_openphone


def texts_in(fake):
    return len(fake.messages)


def test_import_brings_every_text_and_call_once_with_contacts_and_a_stop(db, redis, history_fake):
    seed(history_fake)
    run = import_history(client=client(history_fake, redis))
    assert run.status == "done", run.error
    assert count(Message, Message.source == SOURCE) == texts_in(history_fake)
    assert count(Call) == len(history_fake.history.calls)
    phones = {m["to"][0] if m["direction"] == "outgoing" else m["from"] for m in history_fake.messages}
    assert count(Contact, Contact.source == "openphone") == len(phones)
    stop = db.session.scalar(select(OptOut).where(OptOut.phone == "+16175552003"))
    assert stop is not None and stop.active and stop.source == SOURCE
    voicemail = db.session.scalar(select(Call).where(Call.voicemail_transcript.is_not(None)).limit(1))
    assert voicemail.status == "missed" and "call me back" in voicemail.voicemail_transcript
    summarized = db.session.scalar(select(Call).where(Call.summary.is_not(None)).limit(1))
    assert summarized.duration == 240 and "Tuesday" in summarized.transcript and summarized.recording_url
    assert count(Media, Media.message_id.is_not(None)) == 1
    counts = outcome_counts(run.id)
    assert counts[("message", "created")] == texts_in(history_fake)


def test_second_run_adds_only_what_is_new(db, redis, history_fake):
    seed(history_fake)
    first = import_history(client=client(history_fake, redis))
    before = count(Message)
    history_fake.history.add_message(NUMBER, "+16175552001", "One more thing", "incoming",
                                     datetime.now(timezone.utc))
    second = import_history(client=client(history_fake, redis))
    assert second.status == "done" and second.id != first.id
    assert count(Message) == before + 1
    counts = outcome_counts(second.id)
    assert counts[("message", "created")] == 1
    assert counts[("message", "existing")] == texts_in(history_fake) - 1
    assert counts.get(("call", "created"), 0) == 0


def test_expired_token_duplicates_and_server_errors_lose_and_double_nothing(db, redis, history_fake):
    for i in range(130):  # two pages of conversations, one conversation with three pages of texts
        history_fake.history.add_message(NUMBER, f"+1617555{3000 + i:04d}", f"hello {i}", "outgoing",
                                         datetime.now(timezone.utc) - timedelta(minutes=i))
    for i in range(250):
        history_fake.history.add_message(NUMBER, "+16175553000", f"long {i}", "incoming",
                                         datetime.now(timezone.utc) - timedelta(hours=3, minutes=i))
    history_fake.configure(duplicate_pages=True, expire_tokens=1, fail_next_get=[500, 503])
    run = import_history(client=client(history_fake, redis))
    assert run.status == "done", run.error
    assert count(Message) == 130 + 250
    assert count(Contact) == 130
    assert outcome_counts(run.id).get(("page", "restarted")) == 1


def test_short_code_email_and_group_conversations_are_skipped_with_a_reason(db, redis, history_fake):
    fake = history_fake
    now = datetime.now(timezone.utc)
    fake.history.add_message(NUMBER, "+16175554000", "hi", "outgoing", now)
    for odd in ("72345", "someone@example.com"):
        fake.history.add_message(NUMBER, odd, "Your code is 1234", "incoming", now)
    run = import_history(client=client(fake, redis))
    reasons = dict(db.session.execute(select(HistoryItem.phone, HistoryItem.reason)
                                      .where(HistoryItem.import_id == run.id, HistoryItem.outcome == "skipped")).all())
    assert reasons == {"72345": "participant is a short code",
                       "someone@example.com": "participant is an email address"}
    assert count(Message) == 1 and count(Contact) == 1


def test_the_fake_serves_history_with_openphone_limits(history_fake):
    fake = history_fake
    seed(fake)
    headers = {"Authorization": "test-key"}
    assert httpx.get(fake.url + "/v1/conversations", headers=headers).status_code == 400  # maxResults required
    assert httpx.get(fake.url + "/v1/conversations?maxResults=101", headers=headers).status_code == 400
    page = httpx.get(fake.url + "/v1/conversations?maxResults=5", headers=headers).json()
    assert len(page["data"]) == 5 and page["totalItems"] == 36 and page["nextPageToken"]
    assert httpx.get(fake.url + "/v1/messages?maxResults=5", headers=headers).status_code == 400
    media = next(m for m in fake.messages if m.get("media"))["media"][0]["url"]
    assert httpx.get(media).content == PNG


def test_a_campaign_excludes_phones_texted_only_in_the_imported_history(db, redis, history_fake, client_for):
    from datetime import time

    from app import campaigns
    from app.models import Campaign, CampaignRecipient, CampaignVariant, ContactList, ListMember

    now = datetime.now(timezone.utc)
    history_fake.history.add_message(NUMBER, "+16175555001", "Cracks in your foundation?", "outgoing",
                                     now - timedelta(days=300))
    history_fake.history.add_message(NUMBER, "+16175555002", "Still seeing cracks?", "outgoing",
                                     now - timedelta(days=3))
    assert import_history(client=client(history_fake, redis)).status == "done"
    homeowners = ContactList(name="Homeowners")
    db.session.add(homeowners)
    for phone in ("+16175555001", "+16175555002", "+16175555003"):
        contact = db.session.scalar(select(Contact).filter_by(phone=phone)) or Contact(phone=phone, first_name="New")
        db.session.add(ListMember(list=homeowners, contact=contact))
    texted_before = Campaign(name="Cold", sending_number=NUMBER, lists=[homeowners], window_start=time(9),
                             window_end=time(17), frequency_cap_days=30)
    capped = Campaign(name="Again", sending_number=NUMBER, lists=[homeowners], window_start=time(9),
                      window_end=time(17), frequency_cap_days=30, include_previously_texted=True)
    for campaign in (texted_before, capped):
        campaign.variants = [CampaignVariant(label="A", template="Hi {first_name|there}")]
        db.session.add(campaign)
    db.session.commit()
    for campaign in (texted_before, capped):
        campaigns.change_status(campaign.id, "scheduled")
        campaigns.plan_audience(campaign.id)
    reasons = dict(db.session.execute(select(CampaignRecipient.phone, CampaignRecipient.exclusion_reason)
                                      .where(CampaignRecipient.campaign_id == texted_before.id)).all())
    assert reasons == {"+16175555001": "texted_before", "+16175555002": "frequency_cap", "+16175555003": None}
    reasons = dict(db.session.execute(select(CampaignRecipient.phone, CampaignRecipient.exclusion_reason)
                                      .where(CampaignRecipient.campaign_id == capped.id)).all())
    assert reasons == {"+16175555001": None, "+16175555002": "frequency_cap", "+16175555003": None}
    page = client_for("admin").get(f"/campaignview/show/{texted_before.id}").get_data(as_text=True)
    assert '<td class="reason-texted_before">1</td>' in page
    assert '<td class="reason-frequency_cap">1</td>' in page


def test_a_reply_found_in_the_history_is_attributed_to_the_campaign_text_it_answers(db, redis, history_fake):
    from datetime import time

    from app.models import Campaign, CampaignRecipient, CampaignVariant

    now = datetime.now(timezone.utc)
    contact = Contact(phone="+16175556001")
    campaign = Campaign(name="Cold", sending_number=NUMBER, window_start=time(9), window_end=time(17))
    campaign.variants = [CampaignVariant(label="A", template="Hi")]
    recipient = CampaignRecipient(campaign=campaign, contact=contact, phone=contact.phone, status="sent",
                                  sent_at=(now - timedelta(days=2)).replace(tzinfo=None))
    db.session.add_all([contact, campaign, recipient])
    db.session.commit()
    # The webhook for this reply never came; the history has it.
    history_fake.history.add_message(NUMBER, contact.phone, "Yes, how much?", "incoming", now - timedelta(days=1))
    assert import_history(client=client(history_fake, redis)).status == "done"
    reply = db.session.scalar(select(Message).where(Message.direction == "incoming"))
    assert reply.campaign_recipient_id == recipient.id
    recipient = db.session.get(CampaignRecipient, recipient.id, populate_existing=True)
    assert recipient.replied_at == reply.created_at


# --- through the worker and the screen ------------------------------------------------------

def _reload(model, pk):
    from app.extensions import db

    db.session.expire_all()
    return db.session.get(model, pk)


def test_worker_killed_mid_history_import_resumes_without_losing_or_doubling(app, db, redis, history_fake, tmp_path):
    import signal

    from app.history import start_history_import
    from app.history_models import HistoryImport
    from tests.conftest import start_worker, wait_until

    seed(history_fake, conversations=40)
    run = start_history_import("full")
    env = dict(OPENPHONE_API_KEY="test-key", OPENPHONE_BASE_URL=history_fake.url, IMPORT_STALE_SECONDS="2")
    worker = start_worker(app, tmp_path / "first.log", **env)
    try:
        def mid_import():
            db.session.expire_all()
            done = count(HistoryItem, HistoryItem.import_id == run.id, HistoryItem.kind == "conversation")
            return 3 <= done < 30 and done

        killed_at = []
        wait_until(lambda: killed_at.append(mid_import()) or killed_at[-1], 120, "the import never got going")
        worker.send_signal(signal.SIGKILL)
        worker.wait()
        assert _reload(HistoryImport, run.id).status == "running"
        worker = start_worker(app, tmp_path / "second.log", **env)  # recovery finds the stale heartbeat
        wait_until(lambda: _reload(HistoryImport, run.id).status == "done", 240, "the import did not resume")
    finally:
        worker.kill()
        worker.wait()
    assert 3 <= killed_at[-1] < 30  # conversations finished when the worker was killed, of 40
    assert _reload(HistoryImport, run.id).checkpoint["n"] == 1
    assert count(Message) == texts_in(history_fake)
    assert count(Call) == len(history_fake.history.calls)
    assert count(HistoryItem, HistoryItem.kind == "conversation", HistoryItem.outcome == "imported") == 40
    duplicates = db.session.scalar(select(func.count()).select_from(
        select(Message.provider_id).group_by(Message.provider_id).having(func.count() > 1).subquery()))
    assert duplicates == 0


def test_import_button_runs_in_the_worker_and_the_screen_counts_rows(app, db, redis, history_fake, client_for,
                                                                     post_form, run_jobs):
    seed(history_fake, conversations=12)
    admin = client_for("admin")
    response = post_form(admin, "/settings/integrations/history/start", {"since": "31-01-2025"})
    assert "YYYY-MM-DD" in admin.get(response.headers["Location"]).get_data(as_text=True)
    assert count(HistoryItem) == 0
    response = post_form(admin, "/settings/integrations/history/start", {"since": ""})
    assert response.status_code == 302
    said = admin.get(response.headers["Location"]).get_data(as_text=True)
    assert "is under way: its progress below updates by itself" in said and " is queued" not in said
    queued = admin.get("/settings/integrations/history/progress").get_json()
    assert queued["status"] == "queued" and queued["percent"] == 0
    run_jobs()
    shown = admin.get("/settings/integrations/history/progress").get_json()
    assert shown["status"] == "done" and shown["percent"] == 100
    assert shown["messages_created"] == count(Message) == texts_in(history_fake)
    assert shown["calls_created"] == count(Call) == len(history_fake.history.calls)
    assert shown["conversations_done"] == shown["conversations"] == 12
    page = admin.get("/settings/integrations/").get_data(as_text=True)
    assert f'<span id="history-messages-created">{count(Message)}</span>' in page
    assert client_for("staff").get("/settings/integrations/history/progress").status_code in (302, 403)


def test_nightly_pull_heals_a_missed_webhook_once_across_workers(app, db, redis, history_fake, client_for, run_jobs):
    from app.history import enqueue_nightly_if_due
    from app.history_models import HistoryImport

    seed(history_fake, conversations=6)
    assert import_history(client=client(history_fake, redis)).status == "done"
    # A reply whose webhook never reached the CRM:
    missed = history_fake.history.add_message(NUMBER, "+16175552001", "Are you coming Tuesday?", "incoming",
                                              datetime.now(timezone.utc) - timedelta(hours=5))
    night = datetime(2026, 12, 2, 8, 30)  # 3:30 in New York, after HISTORY_NIGHTLY_HOUR
    assert [enqueue_nightly_if_due(night), enqueue_nightly_if_due(night)] == [1, 0]  # two workers' ticks
    assert enqueue_nightly_if_due(night + timedelta(hours=2)) == 0  # the same night
    tonight = datetime.now(timezone.utc).replace(tzinfo=None)
    assert enqueue_nightly_if_due(tonight) == 0  # the full import began less than a night ago
    nightly = db.session.scalar(select(HistoryImport).where(HistoryImport.kind == "nightly"))
    assert nightly.since == night - timedelta(hours=48)
    nightly.since = datetime.now(timezone.utc).replace(tzinfo=None) - timedelta(hours=48)
    db.session.commit()
    run_jobs()
    healed = db.session.scalar(select(Message).where(Message.provider_id == missed["id"]))
    assert healed is not None and healed.source == SOURCE and healed.contact.phone == "+16175552001"
    assert outcome_counts(nightly.id)[("message", "created")] == 1
    page = client_for("admin").get("/settings/integrations/").get_data(as_text=True)
    assert "found what webhooks had missed:\n      1 text(s), 0 call(s)" in page
    assert "Are you coming Tuesday?" in page


# --- webhook health ---------------------------------------------------------------------------

def test_health_and_home_show_the_last_webhook_and_warn_of_silence_in_business_hours(app, db, client_for):
    from app.models import WebhookEvent
    from app.webhook_health import silence_warning

    tuesday_11am = datetime(2026, 12, 1, 16, 0)  # 11:00 in New York
    assert client_for("admin").get("/health").get_json()["last_webhook_at"] is None
    db.session.add(Message(direction="outgoing", status="sent", to_phone="+16175557001",
                           sent_at=tuesday_11am - timedelta(minutes=10)))
    db.session.add(WebhookEvent(provider_event_id="EV1", type="message.delivered", body="{}", status="processed",
                                attempts=1, received_at=tuesday_11am - timedelta(minutes=90)))
    db.session.commit()
    warning = silence_warning(tuesday_11am)
    assert warning.startswith("No webhook from OpenPhone since Dec 1, 2026 9:30 AM EST, while 1 text(s) went out")
    assert silence_warning(tuesday_11am - timedelta(minutes=45)) is None  # a webhook came within the hour
    assert silence_warning(datetime(2026, 12, 6, 16, 0)) is None  # Sunday
    assert client_for("admin").get("/health").get_json()["last_webhook_at"] == "2026-12-01T14:30:00Z"
    home = client_for("admin").get("/").get_data(as_text=True)
    assert "Last webhook from OpenPhone: Dec 1, 2026 9:30 AM EST" in home  # the company's zone


def test_integrations_lists_registered_webhooks_and_registers_the_missing_ones(app, db, history_fake, client_for,
                                                                              post_form):
    from app.models import AuditLog

    url = "http://localhost/webhooks/openphone"
    history_fake.history.create_webhook("messages", {"url": url, "events": ["message.received"]})
    history_fake.history.create_webhook("messages", {"url": "https://elsewhere/x", "events": ["message.delivered"]})
    admin = client_for("admin")
    page = admin.get("/settings/integrations/").get_data(as_text=True)
    assert "Missing: message.delivered, call.completed, call.recording.completed" in page
    post_form(admin, "/settings/integrations/webhooks/register")
    ours = [h for h in history_fake.history.webhooks if h["url"] == url]
    assert sorted(e for h in ours for e in h["events"]) == ["call.completed", "call.recording.completed",
                                                            "message.delivered", "message.received"]
    assert 'id="webhooks-complete"' in admin.get("/settings/integrations/").get_data(as_text=True)
    assert count(AuditLog, AuditLog.object_type == "openphone_webhooks") == 2


def test_each_registered_webhooks_own_signing_key_is_stored_encrypted_and_verifies(app, db, history_fake,
                                                                                 client_for, post_form, run_jobs):
    import time as clock

    from app.models import AuditLog, IntegrationSecret, WebhookEvent
    from app.openphone import sign_legacy, sign_standard
    from app.webhook_health import KEY_PREFIX, webhook_keys

    post_form(client_for("admin"), "/settings/integrations/webhooks/register")
    hooks = {h["id"]: h["key"] for h in history_fake.history.webhooks}
    assert len(hooks) == 2 and len(set(hooks.values())) == 2  # one key per webhook
    stored = {row.name: row.ciphertext for row in db.session.scalars(select(IntegrationSecret))}
    assert set(stored) == {KEY_PREFIX + hook_id for hook_id in hooks}
    assert not any(key[len("whsec_"):][:16] in text for key in hooks.values() for text in stored.values())
    assert sorted(webhook_keys()) == sorted(hooks.values())
    audited = db.session.scalars(select(AuditLog).where(AuditLog.action == "secret_changed")).all()
    assert sorted(a.object_id for a in audited) == sorted(stored) and all(a.username == "admin" for a in audited)
    assert not any(key in json.dumps([a.detail, a.changes]) for key in hooks.values() for a in audited)

    def post(body, headers):
        return app.test_client().post("/webhooks/openphone", data=body, headers=headers).status_code

    def event(n):
        return json.dumps({"id": f"EVkey{n}", "type": "message.received", "data": {"object": {
            "id": f"ACkey{n}", "from": "+16175559901", "to": ["+16175550100"], "text": f"hi {n}"}}}).encode()

    first, second = hooks.values()
    now = int(clock.time())
    assert post(event(1), sign_standard(first, event(1), "msg_1", now)) == 200
    assert post(event(2), {"openphone-signature": sign_legacy(second, event(2), now * 1000)}) == 200
    assert post(event(3), sign_standard(app.config["OPENPHONE_WEBHOOK_SECRET"], event(3), "msg_3", now)) == 200
    forged = "whsec_" + base64.b64encode(b"not a key OpenPhone gave us").decode()
    assert post(event(4), sign_standard(forged, event(4), "msg_4", now)) == 401
    assert sorted(db.session.scalars(select(WebhookEvent.provider_event_id))) == ["EVkey1", "EVkey2", "EVkey3"]


def test_the_key_of_a_webhook_deleted_in_openphone_is_removed_when_the_screen_lists_them(app, db, history_fake,
                                                                                        client_for, post_form):
    import time as clock

    from app.models import AuditLog
    from app.openphone import sign_standard
    from app.webhook_health import webhook_keys

    admin = client_for("admin")
    post_form(admin, "/settings/integrations/webhooks/register")
    kept, deleted = history_fake.history.webhooks
    history_fake.configure(fail_next_get=[500])  # OpenPhone cannot be asked: every key stays
    assert "OpenPhone could not be asked" in admin.get("/settings/integrations/").get_data(as_text=True)
    assert sorted(webhook_keys()) == sorted([kept["key"], deleted["key"]])
    history_fake.history.webhooks.remove(deleted)  # deleted in OpenPhone's own screens
    admin.get("/settings/integrations/")
    assert webhook_keys() == [kept["key"]]
    removed = db.session.scalars(select(AuditLog).where(AuditLog.action.in_(("delete", "secret_cleared")))).all()
    assert [(a.action, a.username) for a in removed] == [("secret_cleared", "admin")]  # one row per key removed
    assert f"webhook {deleted['id']} is no longer in OpenPhone" in removed[0].detail
    assert not any(key in json.dumps([a.detail, a.changes]) for key in (kept["key"], deleted["key"]) for a in removed)
    admin.get("/settings/integrations/")
    assert count(AuditLog, AuditLog.action == "secret_cleared") == 1  # listed again: nothing more to remove

    def post(n, key):
        body = json.dumps({"id": f"EVgone{n}", "type": "message.received", "data": {"object": {
            "id": f"ACgone{n}", "from": "+16175559902", "to": ["+16175550100"], "text": "hi"}}}).encode()
        headers = sign_standard(key, body, f"msg_{n}", int(clock.time()))
        return app.test_client().post("/webhooks/openphone", data=body, headers=headers).status_code

    assert [post(1, deleted["key"]), post(2, kept["key"])] == [401, 200]


# --- media, calls on the timeline, the Inbox and the REST API --------------------------------

def test_calls_on_the_timeline_in_the_inbox_and_the_rest_api_scoped_by_role(app, db, redis, history_fake,
                                                                           client_for):
    from tests.conftest import user_id

    now = datetime.now(timezone.utc)
    fake = history_fake
    fake.history.add_call(NUMBER, "+16175558201", "incoming", "missed", now - timedelta(hours=2),
                          voicemail="Please call me back about the estimate")
    fake.history.add_call(NUMBER, "+16175558202", "incoming", "no-answer", now - timedelta(hours=3))
    fake.history.add_call(NUMBER, "+16175558203", "incoming", "missed", now - timedelta(hours=4))
    fake.history.add_call(NUMBER, "+16175558203", "outgoing", "completed", now - timedelta(hours=1), duration=95,
                          summary="Called back, booked Friday.")
    assert import_history(client=client(fake, redis)).status == "done"
    mine = db.session.scalar(select(Contact).filter_by(phone="+16175558201"))
    mine.assigned_user_id = user_id("staff")
    db.session.commit()
    inbox = client_for("admin").get("/inbox/").get_data(as_text=True)
    assert "Voicemail: Please call me back about the estimate" in inbox
    assert "(617) 555-8202" in inbox and "(617) 555-8203" not in inbox  # called back: nothing to answer
    staff_inbox = client_for("staff").get("/inbox/").get_data(as_text=True)
    assert "(617) 555-8201" in staff_inbox and "(617) 555-8202" not in staff_inbox
    thread = client_for("admin").get(f"/conversations/thread/{mine.id}").get_data(as_text=True)
    assert "Voicemail:</strong> Please call me back about the estimate" in thread
    called_back = db.session.scalar(select(Contact).filter_by(phone="+16175558203"))
    thread = client_for("admin").get(f"/conversations/thread/{called_back.id}").get_data(as_text=True)
    assert "Summary:</strong> Called back, booked Friday." in thread and "1:35" in thread
    from flask_jwt_extended import create_access_token

    def api(username, path="/api/v1/call/"):
        token = create_access_token(identity=str(user_id(username)), fresh=True)
        return app.test_client().get(path, headers={"Authorization": f"Bearer {token}"})

    assert api("admin").get_json()["count"] == 4
    assert api("marketer").get_json()["count"] == 4
    theirs = api("staff").get_json()
    assert theirs["count"] == 1 and theirs["result"][0]["voicemail_transcript"].startswith("Please call me back")
    assert api("staff2").get_json()["count"] == 0
    other = db.session.scalar(select(Call).where(Call.phone == "+16175558202"))
    assert api("staff", f"/api/v1/call/{other.id}").status_code == 404
    assert api("admin", f"/api/v1/call/{other.id}").get_json()["result"]["status"] == "no-answer"


def test_the_import_shares_the_senders_ten_per_second_limit(app, db, redis):
    """Ten texts fill the provider's second; the import's requests wait for the shared limiter
    instead of meeting OpenPhone's 429. Time is a clock that moves only when the limiter waits,
    read by the fake OpenPhone too, so the count per second is exact on any machine."""
    clock = SteppedClock()
    fake = FakeOpenPhone(api_key="test-key", rate=10, clock=clock).start()
    try:
        seed(fake, conversations=8)  # the ten texts below are ten conversations more
        op = OpenPhone("test-key", fake.url, redis=redis, rate=10, retries_429=0, clock=clock)
        for i in range(10):
            op.send_message(f"+1617555{9000 + i:04d}", "Hi", NUMBER)
        assert clock.now() == 1_000_000.0  # ten fit in the first second without a wait
        fake.history.calls.clear()  # keep the run short: texts only
        run = import_history(client=op)
        assert run.status == "done", run.error
        seconds = fake.per_second()
    finally:
        fake.stop()
    made = sum(s["accepted"] for s in seconds)
    assert sum(s["limited"] for s in seconds) == 0
    assert max(s["accepted"] for s in seconds) == 10
    # texts, the numbers, one conversation page, 8 + 10 conversations x (messages, calls)
    assert made == 10 + 1 + 1 + 18 * 2
    assert clock.now() - 1_000_000.0 >= (made - 10) / 10  # the import waited its turn behind the texts
    assert count(Message, Message.source == SOURCE) == texts_in(fake)


def test_a_number_deleted_from_the_workspace_is_skipped_and_the_others_imported(app, db, redis, history_fake):
    from app.history import run_history_import, start_history_import

    seed(history_fake, conversations=3)
    run = start_history_import("full", enqueue_job=False)
    # The run had listed a number that was deleted from the workspace before its conversations were read.
    run.checkpoint = {"numbers": [["PNdeleted01", "+16175550199"], ["PNfake0100", NUMBER]], "n": 0}
    db.session.commit()
    assert run_history_import(run.id, client=client(history_fake, redis)) == "done"
    skipped = db.session.scalar(select(HistoryItem).where(HistoryItem.kind == "phone_number"))
    assert skipped.provider_id == "PNdeleted01" and skipped.outcome == "skipped"
    assert skipped.reason.startswith("+16175550199 is no longer in the workspace")
    assert count(Message) == texts_in(history_fake)
