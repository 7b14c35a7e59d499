"""The history import with its requests made ahead (app/history_prefetch.py) against the fake
OpenPhone over real HTTP: the same requests, each once, and the same rows as one request at a
time, faults included; an error met ahead surfaces where the walk meets it."""
import re
from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select, text

from app import history
from app.fake_history import seed
from app.fake_openphone import FakeOpenPhone
from app.history import import_history
from app.history_models import Call, HistoryImport, HistoryItem, Media
from app.models import Contact, Message, OptOut
from app.openphone import OpenPhone
from tests.conftest import business_tables, wait_until

NUMBER = "+16175550100"
LONG_TEXTS, MANY_CALLS = "+16175553000", "+16175553100"


@pytest.fixture
def fast_fake(app):
    """A fake OpenPhone without the 10/s limit, so a few hundred requests take a moment (the
    shared limiter has its own test in test_history.py)."""
    fake = FakeOpenPhone(api_key="test-key", rate=100_000).start()
    yield fake
    fake.stop()


def build_past(fake):
    """Two conversation pages; one conversation with three pages of texts, one with two pages of
    calls, answered ones with a summary, transcript and recording, missed ones with a voicemail."""
    seed(fake, conversations=24)
    now = datetime.now(timezone.utc)
    for i in range(80):
        fake.history.add_message(NUMBER, f"+1617555{4000 + i:04d}", f"hello {i}", "outgoing", now - timedelta(days=i))
    for i in range(250):
        fake.history.add_message(NUMBER, LONG_TEXTS, f"long {i}", "incoming", now - timedelta(hours=3, minutes=i))
    for i in range(130):
        answered = i % 2 == 0
        fake.history.add_call(NUMBER, MANY_CALLS, "outgoing" if answered else "incoming",
                              "completed" if answered else "missed", now - timedelta(hours=5, minutes=i),
                              duration=60 if answered else 0, voicemail=None if answered else f"call me {i}",
                              summary=f"talked {i}" if answered else None, transcript=[f"line {i}"] if answered else None,
                              recording=answered)


def what_was_imported(db, run_id):
    """Every row a person could check after a run, free of ids and page tokens."""
    def rows(*columns):
        return sorted(db.session.execute(select(*columns)).all(), key=repr)

    run = db.session.get(HistoryImport, run_id, populate_existing=True)
    checkpoint = {k: v for k, v in (run.checkpoint or {}).items() if k not in ("token", "item_token")}
    outcomes = [(kind, "" if kind == "page" else provider_id, outcome, reason, phone) for kind, provider_id, outcome,
                reason, phone in rows(HistoryItem.kind, HistoryItem.provider_id, HistoryItem.outcome,
                                      HistoryItem.reason, HistoryItem.phone)]
    return {"run": (run.status, run.error, checkpoint), "outcomes": sorted(outcomes, key=repr),
            "texts": rows(Message.provider_id, Message.direction, Message.body, Message.status, Message.from_phone,
                          Message.to_phone, Message.created_at, Message.opt_out_class, Message.source),
            "calls": rows(Call.provider_id, Call.phone, Call.direction, Call.status, Call.duration,
                          Call.voicemail_url, Call.voicemail_transcript, Call.summary, Call.transcript,
                          Call.recording_url),
            "contacts": rows(Contact.phone, Contact.source), "opt_outs": rows(OptOut.phone, OptOut.source,
                                                                             OptOut.active),
            "media": rows(Media.url, Media.status)}


def requests_made(fake):
    """The API GETs the fake answered, page tokens left out (they are new on every listing)."""
    return Counter(re.sub(r"pageToken=[^&]*", "pageToken", asked) for asked in fake.asked)


def import_with(app, db, fake, ahead, faults):
    """One import from an empty CRM with HISTORY_PREFETCH = ahead; (rows, requests)."""
    db.session.remove()
    with db.engine.begin() as conn:
        for table in business_tables():
            conn.execute(text(f"DELETE FROM {table}"))
    fake.asked.clear()
    fake.configure(**faults())
    app.config["HISTORY_PREFETCH"] = ahead
    run = import_history(client=OpenPhone("test-key", fake.url, redis=None))
    return what_was_imported(db, run.id), requests_made(fake)


@pytest.fixture
def one_at_a_time_and_ahead(app, db, fast_fake, monkeypatch):
    """import(faults) -> (one request at a time, with the prefetch): each (rows, requests)."""
    monkeypatch.setitem(app.config, "HISTORY_PREFETCH", 0)
    return lambda faults: (import_with(app, db, fast_fake, 0, faults), import_with(app, db, fast_fake, 20, faults))


def test_prefetch_makes_each_request_once_and_imports_the_same_rows_through_faults(fast_fake,
                                                                                  one_at_a_time_and_ahead):
    build_past(fast_fake)
    skipped = r"/v1/messages\?.*participants\[\]=\+16175552007&"

    def faults():  # armed again before each run
        return dict(duplicate_pages=True, expire_tokens=1, fail_next_get=[500],
                    fail_get_matching=[[skipped, 404], [r"/v1/call-summaries/", 403]])

    (alone, alone_asked), (ahead, ahead_asked) = one_at_a_time_and_ahead(faults)
    assert ahead == alone
    assert ahead_asked == alone_asked
    status, error, _ = ahead["run"]
    assert status == "done", error
    outcomes = Counter((kind, outcome) for kind, _, outcome, _, _ in ahead["outcomes"])
    assert outcomes[("page", "restarted")] == 1 and outcomes[("conversation", "imported")] == 106
    assert any(kind == "conversation" and outcome == "skipped" and "+16175552007:/v1/messages" in provider_id
               for kind, provider_id, outcome, _, _ in ahead["outcomes"])
    assert len([t for t in ahead["texts"] if t[4] == LONG_TEXTS]) == 250
    calls = [c for c in ahead["calls"] if c[1] == MANY_CALLS]
    assert len(calls) == 130
    assert sum(1 for c in calls if c[7]) == 64  # one answered call's summary was refused (403)
    assert sum(1 for c in calls if c[6]) == 65 and sum(1 for c in calls if c[9]) == 65


def test_an_error_met_ahead_ends_the_run_where_the_walk_meets_it(fast_fake, one_at_a_time_and_ahead):
    build_past(fast_fake)

    def faults():  # a conversation's calls answer 500 every time: the run fails there
        return dict(fail_get_matching=[[r"/v1/calls\?.*participants\[\]=\+16175552010&", 500]] * 5)

    (alone, alone_asked), (ahead, ahead_asked) = one_at_a_time_and_ahead(faults)
    assert ahead == alone
    assert ahead_asked == alone_asked
    status, error, checkpoint = ahead["run"]
    assert status == "failed" and error.startswith("AmbiguousError: GET /v1/calls: OpenPhone answered 500")
    assert checkpoint["stage"] == "calls" and checkpoint["conversation"].endswith("16175552010")
    assert not any(c[1] == "+16175552010" for c in ahead["calls"])


def test_the_next_conversations_are_asked_for_while_one_is_written(app, db, fast_fake, monkeypatch):
    """The walk is held inside its first conversation until the fake has been asked for the
    texts of two conversations more: only requests made ahead get there."""
    build_past(fast_fake)
    monkeypatch.setitem(app.config, "HISTORY_PREFETCH", 20)
    write_media = history.download_pending

    def listed_conversations():
        return len({m.group(1) for a in fast_fake.asked if (m := re.search(r"/v1/messages\?.*participants\[\]=([^&]+)", a))})

    def held_in_the_first_conversation(contact_id):
        wait_until(lambda: listed_conversations() >= 3, 30, "no request was made ahead of the walk")
        monkeypatch.setattr(history, "download_pending", write_media)
        return write_media(contact_id)

    monkeypatch.setattr(history, "download_pending", held_in_the_first_conversation)
    run = import_history(client=OpenPhone("test-key", fast_fake.url, redis=None))
    assert run.status == "done", run.error
    assert what_was_imported(db, run.id)["run"][2]["totals"] == {"PNfake0100": 106}


def test_a_call_repeated_on_the_next_page_far_ahead_of_the_walk_is_asked_about_once(app, db, fast_fake,
                                                                                   monkeypatch):
    """OpenPhone repeats a call on the next page; the prefetch, let run a whole page of calls
    ahead of the walk (which has not stored them yet), asks for its details once, as the walk does."""
    build_past(fast_fake)
    monkeypatch.setitem(app.config, "HISTORY_PREFETCH", 0)
    _, alone_asked = import_with(app, db, fast_fake, 0, lambda: dict(duplicate_pages=True))
    write_media = history.download_pending

    def held_until_the_second_page_of_calls_is_asked(contact_id):
        wait_until(lambda: any(re.search(rf"/v1/calls\?.*{re.escape(MANY_CALLS)}.*pageToken", a) for a in fast_fake.asked),
                   30, "the second page of calls was not asked for ahead of the walk")
        monkeypatch.setattr(history, "download_pending", write_media)
        return write_media(contact_id)

    monkeypatch.setattr(history, "download_pending", held_until_the_second_page_of_calls_is_asked)
    ahead, ahead_asked = import_with(app, db, fast_fake, 1000, lambda: dict(duplicate_pages=True))
    assert ahead["run"][0] == "done"
    assert ahead_asked == alone_asked
    assert Counter(fast_fake.asked).most_common(1)[0][1] == 1  # no request made twice


def test_a_second_run_asks_nothing_about_calls_already_stored(app, db, fast_fake):
    seed(fast_fake, conversations=12)
    client = OpenPhone("test-key", fast_fake.url, redis=None)
    assert import_history(client=client).status == "done"
    assert any(a.startswith("/v1/call-") for a in fast_fake.asked)
    fast_fake.asked.clear()
    assert import_history(client=client).status == "done"
    assert fast_fake.asked and not any(a.startswith("/v1/call-") for a in fast_fake.asked)
