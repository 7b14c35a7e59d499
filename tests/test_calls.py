"""One call = one calls row, whichever door brings it (webhook, history import, nightly pull) and in
any order; calls are never text rows; old call text rows move into calls (migration 0010)."""
import importlib.util
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from alembic.migration import MigrationContext
from alembic.operations import Operations
from sqlalchemy import func, select

from app.events import process_event
from app.extensions import db as _db
from app.fake_history import MP3
from app.history import import_history, outcome_counts, run_history_import, start_history_import
from app.history_models import Call, HistoryImport, Media
from app.models import Contact, Message, Todo, WebhookEvent
from app.money import refresh_todos
from app.openphone import OpenPhone
from tests.conftest import user_id

NUMBER = "+16175550100"
PHONE = "+16175558301"
MIGRATION = Path(__file__).resolve().parent.parent / "migrations" / "versions" / "0010_calls_from_messages.py"


def count(model, *where):
    return _db.session.scalar(select(func.count()).select_from(model).where(*where))


def client(fake, redis):
    return OpenPhone("test-key", fake.url, redis=redis, rate=10, retries_429=20)


def webhook_call(fake, call, **changes):
    """OpenPhone's call.completed (or another call event) for a call the fake holds."""
    obj = {"id": call["id"], "object": "call", "direction": call["direction"], "status": call["status"],
           "duration": call["duration"], "answeredBy": call["answeredBy"], "createdAt": call["createdAt"],
           "phoneNumberId": call["phoneNumberId"],
           "from": call["participants"][0] if call["direction"] == "incoming" else NUMBER,
           "to": NUMBER if call["direction"] == "incoming" else call["participants"][0], "media": []}
    event_type = changes.pop("type", "call.completed")
    obj.update(changes)
    return fake.event(event_type, obj)


def deliver(app, fake, event):
    body, headers = fake.signed(event)
    assert app.test_client().post("/webhooks/openphone", data=body, headers=headers).status_code == 200


@pytest.fixture
def missed_call(fake_openphone):
    return fake_openphone.history.add_call(NUMBER, PHONE, "incoming", "missed",
                                           datetime.now(timezone.utc) - timedelta(hours=2),
                                           voicemail="Please call me about the wall")


def assert_one_call_shown_once(client_for, call_id):
    assert count(Call) == 1 and count(Message) == 0
    call = _db.session.scalar(select(Call))
    assert call.provider_id == call_id
    thread = client_for("admin").get(f"/conversations/thread/{call.contact_id}").get_data(as_text=True)
    assert thread.count('class="list-group-item call-') == 1
    return call


def test_a_webhook_call_then_the_history_import_is_one_call(app, db, redis, fake_openphone, missed_call,
                                                           run_jobs, client_for):
    voicemail = fake_openphone.history.add_media("audio/mpeg", MP3)
    deliver(app, fake_openphone, webhook_call(fake_openphone, missed_call,
                                              voicemail={"url": voicemail, "type": "audio/mpeg", "duration": 7}))
    run_jobs()
    assert _db.session.scalar(select(WebhookEvent.status)) == "processed"
    run = import_history(client=client(fake_openphone, redis))
    assert outcome_counts(run.id)[("call", "existing")] == 1 and ("call", "created") not in outcome_counts(run.id)
    call = assert_one_call_shown_once(client_for, missed_call["id"])
    assert (call.source, call.status, call.contact.phone) == ("webhook", "missed", PHONE)
    assert call.voicemail_url == voicemail
    assert _db.session.scalar(select(Media.status).where(Media.call_id == call.id)) == "stored"


def test_the_history_import_then_webhooks_in_any_order_is_one_call(app, db, redis, fake_openphone, missed_call,
                                                                  run_jobs, client_for):
    assert import_history(client=client(fake_openphone, redis)).status == "done"
    # A late ringing event never turns the finished call back; the completed one and a summary fill it in.
    for event in (webhook_call(fake_openphone, missed_call, status="ringing", type="call.ringing"),
                  webhook_call(fake_openphone, missed_call),
                  fake_openphone.event("call.summary.completed", {"callId": missed_call["id"], "object": "callSummary",
                                                                  "summary": ["Wants a quote for the wall."]})):
        deliver(app, fake_openphone, event)
    run_jobs()
    assert {e.status for e in _db.session.scalars(select(WebhookEvent))} == {"processed"}
    call = assert_one_call_shown_once(client_for, missed_call["id"])
    assert (call.source, call.status, call.summary) == ("openphone history", "missed", "Wants a quote for the wall.")
    assert call.voicemail_transcript == "Please call me about the wall"
    assert count(Media, Media.call_id == call.id) == 1


def test_a_summary_before_its_call_waits_for_the_call(app, db, redis, fake_openphone, missed_call, run_jobs):
    deliver(app, fake_openphone, fake_openphone.event("call.summary.completed", {
        "callId": missed_call["id"], "object": "callSummary", "summary": ["Left a voicemail."]}))
    run_jobs()
    summary = _db.session.scalar(select(WebhookEvent))
    assert summary.status == "retrying" and missed_call["id"] in summary.error and count(Call) == 0
    deliver(app, fake_openphone, webhook_call(fake_openphone, missed_call))
    run_jobs()
    summary.next_attempt_at = None
    _db.session.commit()
    process_event(summary.id)
    assert _db.session.get(WebhookEvent, summary.id, populate_existing=True).status == "processed"
    assert _db.session.scalar(select(Call.summary)) == "Left a voicemail." and count(Call) == 1


def test_the_nightly_pull_finds_a_webhook_call_existing(app, db, redis, fake_openphone, missed_call, run_jobs,
                                                        client_for):
    deliver(app, fake_openphone, webhook_call(fake_openphone, missed_call))
    run_jobs()
    nightly = start_history_import("nightly", since=datetime.now(timezone.utc).replace(tzinfo=None)
                                   - timedelta(hours=48), enqueue_job=False)
    assert run_history_import(nightly.id, client=client(fake_openphone, redis)) == "done"
    assert outcome_counts(nightly.id)[("call", "existing")] == 1
    assert_one_call_shown_once(client_for, missed_call["id"])
    assert _db.session.get(HistoryImport, nightly.id).kind == "nightly"


def test_a_missed_call_is_a_call_back_todo_until_someone_calls_back(app, db, redis, fake_openphone, missed_call):
    assert import_history(client=client(fake_openphone, redis)).status == "done"
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    assert refresh_todos(now)["created"] == 1
    assert _db.session.scalar(select(Todo.title)).startswith("Call back")
    fake_openphone.history.add_call(NUMBER, PHONE, "outgoing", "completed", datetime.now(timezone.utc), duration=60)
    assert import_history(client=client(fake_openphone, redis)).status == "done"
    assert refresh_todos(now + timedelta(minutes=1))["closed"] == 1


def _migrate_0010():
    spec = importlib.util.spec_from_file_location("calls_from_messages", MIGRATION)
    migration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migration)
    _db.session.commit()
    with _db.engine.begin() as conn, Operations.context(MigrationContext.configure(conn)):
        migration.upgrade()
    _db.session.expire_all()


def test_the_migration_moves_call_text_rows_into_calls_without_loss(app, db):
    ann = Contact(first_name="Ann", phone=PHONE)
    _db.session.add(ann)
    _db.session.flush()
    at = datetime(2026, 11, 20, 14, 0)
    completed = {"id": "ACold1", "object": "call", "direction": "incoming", "status": "completed", "duration": 42,
                 "from": PHONE, "to": NUMBER, "voicemail": {"url": "https://m.openph.one/vm1.mp3"}}
    summary = {"object": "callSummary", "callId": "ACold1", "summary": ["Wants piers quoted."]}
    for event_id, event_type, obj in (("EVold1", "call.completed", completed),
                                      ("EVold2", "call.summary.completed", summary)):
        _db.session.add(WebhookEvent(provider_event_id=event_id, type=event_type, status="processed", attempts=1,
                                     body=json.dumps({"type": event_type, "data": {"object": obj}})))
    # What call webhooks wrote before: a text row per event (and, for the call itself, a calls row).
    _db.session.add_all([
        Message(direction="call", kind="call.completed", status="completed", body="completed 42s",
                provider_id="EVold1", from_phone=PHONE, to_phone=NUMBER, contact_id=ann.id, created_at=at),
        Message(direction="call", kind="call.summary.completed", status="logged", body="Wants piers quoted.",
                provider_id="EVold2", from_phone=None, to_phone=None, contact_id=None, created_at=at),
        Call(provider_id="ACold1", direction="incoming", status="completed", duration=42, contact_id=ann.id,
             phone=PHONE, created_at=at),
        # An event long gone: only the text row is left to tell of this missed call.
        Message(direction="call", kind="call.completed", status="missed", body="missed", provider_id="EVgone",
                from_phone=PHONE, to_phone=NUMBER, contact_id=ann.id, created_at=at + timedelta(hours=1)),
        Message(direction="incoming", status="received", body="Hi", from_phone=PHONE, contact_id=ann.id,
                created_at=at),
    ])
    _db.session.flush()
    gone = _db.session.scalar(select(Message.id).where(Message.provider_id == "EVgone"))
    _db.session.add(Todo(kind="call_back", key=f"call:{gone}", title="Call back Ann", contact_id=ann.id))
    _db.session.commit()
    _migrate_0010()
    assert [m.body for m in _db.session.scalars(select(Message))] == ["Hi"]
    calls = {c.provider_id: c for c in _db.session.scalars(select(Call))}
    assert set(calls) == {"ACold1", "EVgone"}
    old = calls["ACold1"]
    assert (old.summary, old.voicemail_url, old.duration) == ("Wants piers quoted.", "https://m.openph.one/vm1.mp3", 42)
    assert count(Media, Media.call_id == old.id, Media.status == "pending") == 1
    gone_call = calls["EVgone"]
    assert (gone_call.status, gone_call.contact_id, gone_call.phone, gone_call.direction) == (
        "missed", ann.id, PHONE, "incoming")
    assert _db.session.scalar(select(Todo.key)) == f"call:{gone_call.id}"
    _migrate_0010()  # a second run finds nothing left to move
    assert count(Call) == 2


def test_staff_see_only_their_contacts_calls_on_every_door(app, db, redis, fake_openphone, missed_call, client_for):
    assert import_history(client=client(fake_openphone, redis)).status == "done"
    call = _db.session.scalar(select(Call))
    call.contact.assigned_user_id = user_id("staff")
    _db.session.commit()
    assert "Please call me about the wall" in client_for("staff").get("/inbox/").get_data(as_text=True)
    assert "Please call me about the wall" not in client_for("staff2").get("/inbox/").get_data(as_text=True)
    assert client_for("staff2").get(f"/conversations/thread/{call.contact_id}").status_code == 404
