"""The OpenPhone history import against the fake OpenPhone over real HTTP."""
from datetime import datetime, timedelta, timezone

import httpx
import pytest
from sqlalchemy import func, select

from app.fake_history import PNG, seed
from app.history import SOURCE, import_history, outcome_counts
from app.history_models import Call, HistoryItem, Media
from app.models import Contact, Message, OptOut
from app.openphone import OpenPhone

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
