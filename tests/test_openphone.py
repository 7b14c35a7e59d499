"""The OpenPhone client against the fake OpenPhone over loopback HTTP, and webhook signatures."""
import base64
import json
import time

import httpx
import pytest

from app.fake_openphone import FakeOpenPhone
from app.openphone import (
    AmbiguousError,
    OpenPhone,
    OpenPhoneError,
    PermanentError,
    acquire_send_slot,
    sign_legacy,
    sign_standard,
    verify_signature,
)

SECRET = "whsec_" + base64.b64encode(b"a-signing-secret-of-32-bytes!!!!").decode()
LEGACY_SECRET = base64.b64encode(b"a-signing-secret-of-32-bytes!!!!").decode()
BODY = b'{"id":"EV1","type":"message.received","data":{"object":{"text":"hi \xf0\x9f\x91\x8b"}}}'


@pytest.fixture
def fake():
    server = FakeOpenPhone(api_key="key-1", hang_seconds=3).start()
    yield server
    server.stop()


def client(fake, **kwargs):
    kwargs.setdefault("timeout", 1.0)
    return OpenPhone(kwargs.pop("key", "key-1"), fake.url, **kwargs)


def test_standard_webhook_signature_is_accepted():
    headers = sign_standard(SECRET, BODY, "msg_1", int(time.time()))
    assert verify_signature(SECRET, headers, BODY) is None


def test_standard_signature_accepts_any_of_several_signatures():
    headers = sign_standard(SECRET, BODY, "msg_1", int(time.time()))
    headers["webhook-signature"] = "v1,bm90LWl0 " + headers["webhook-signature"]
    assert verify_signature(SECRET, headers, BODY) is None


def test_legacy_signature_with_millisecond_timestamp_is_accepted():
    headers = {"openphone-signature": sign_legacy(LEGACY_SECRET, BODY, int(time.time() * 1000))}
    assert verify_signature(LEGACY_SECRET, headers, BODY) is None


@pytest.mark.parametrize("scheme", ["standard", "legacy"])
def test_forged_tampered_stale_and_unsigned_webhooks_are_refused(scheme):
    other = "whsec_" + base64.b64encode(b"someone-else-entirely-0123456789").decode()
    now = int(time.time())

    def sign(secret, body, at):
        if scheme == "legacy":
            return {"openphone-signature": sign_legacy(secret, body, at * 1000)}
        return sign_standard(secret, body, "msg_1", at)

    assert verify_signature(SECRET, sign(other, BODY, now), BODY) == "signature mismatch"
    assert verify_signature(SECRET, sign(SECRET, BODY, now), BODY.replace(b"hi", b"ho")) == "signature mismatch"
    assert verify_signature(SECRET, sign(SECRET, BODY, now - 301), BODY) == "stale timestamp"
    assert verify_signature(SECRET, sign(SECRET, BODY, now + 301), BODY) == "stale timestamp"
    assert verify_signature(SECRET, {}, BODY) == "missing signature header"


def test_send_message_posts_the_raw_key_and_one_recipient(fake):
    data = client(fake).send_message("+16175550123", "Hello 👋", "+16175550100")
    assert data["id"].startswith("AC") and data["status"] == "queued"
    assert [(m["to"], m["text"], m["from"]) for m in fake.sent] == [(["+16175550123"], "Hello 👋", "+16175550100")]


def test_wrong_api_key_is_a_permanent_error_with_openphone_message(fake):
    with pytest.raises(PermanentError, match="401.*invalid API key"):
        client(fake, key="wrong").send_message("+16175550123", "Hi", "+16175550100")
    assert fake.sent == []


def test_too_long_text_is_refused_permanently(fake):
    with pytest.raises(PermanentError, match="1-1600"):
        client(fake).send_message("+16175550123", "x" * 1601, "+16175550100")


def test_server_error_is_ambiguous(fake):
    fake.configure(fail_next=[500])
    with pytest.raises(AmbiguousError, match="500"):
        client(fake).send_message("+16175550123", "Hi", "+16175550100")


def test_no_answer_is_ambiguous_and_the_text_may_have_gone_out(fake):
    fake.configure(timeout_next=1)
    with pytest.raises(AmbiguousError, match="no answer"):
        client(fake, timeout=0.5).send_message("+16175550123", "Hi", "+16175550100")
    assert len(fake.sent) == 1  # exactly why it must never be retried blindly


def test_lost_response_is_ambiguous(fake):
    fake.configure(lose_next=1)
    with pytest.raises(AmbiguousError):
        client(fake).send_message("+16175550123", "Hi", "+16175550100")
    assert len(fake.sent) == 1


def test_nobody_listening_is_a_plain_error_since_nothing_was_sent():
    with pytest.raises(OpenPhoneError) as raised:
        OpenPhone("k", "http://127.0.0.1:9", timeout=1).send_message("+16175550123", "Hi", "+16175550100")
    assert not isinstance(raised.value, (AmbiguousError, PermanentError))


def test_429_waits_and_retries_then_sends_once(fake):
    fake.configure(fail_next=[429, 429])
    data = client(fake).send_message("+16175550123", "Hi", "+16175550100")
    assert data["id"] and len(fake.sent) == 1


def test_endless_429_gives_up_without_sending(fake):
    fake.configure(fail_next=[429] * 10)
    with pytest.raises(OpenPhoneError, match="429"):
        client(fake, retries_429=2).send_message("+16175550123", "Hi", "+16175550100")
    assert fake.sent == []


def test_list_messages_follows_page_tokens(fake):
    op = client(fake)
    for i in range(7):
        op.send_message("+16175550123", f"text {i}", "+16175550100")
    op.send_message("+16175550999", "someone else", "+16175550100")
    number_id = op.phone_number_id("+16175550100")
    found = op.list_messages(number_id, "+16175550123", max_results=3)
    assert sorted(m["text"] for m in found) == [f"text {i}" for i in range(7)]


def test_fake_enforces_ten_requests_per_second_with_429():
    now = [1000.0]  # the fake's clock stands still, however slow the machine is
    fake = FakeOpenPhone(api_key="k", rate=10, clock=lambda: now[0]).start()

    def get():
        return httpx.get(fake.url + "/v1/phone-numbers", headers={"Authorization": "k"}).status_code

    try:
        codes = [get() for _ in range(15)]
        assert codes == [200] * 10 + [429] * 5
        histogram = httpx.get(fake.url + "/_fake/histogram").json()["data"]
        assert sum(row["limited"] for row in histogram) == 5
        now[0] += 1.0  # a second later the window is free again
        assert get() == 200
    finally:
        fake.stop()


def test_shared_rate_limit_keeps_many_sends_under_the_providers_limit(app, redis, fake):
    op = client(fake, redis=redis, rate=10)
    for i in range(25):
        op.send_message("+16175550123", f"text {i}", "+16175550100")
    assert len(fake.sent) == 25


def test_acquire_send_slot_gives_up_when_the_budget_is_exhausted(app, redis):
    for _ in range(3):
        acquire_send_slot(redis, rate=3)
    with pytest.raises(OpenPhoneError, match="rate limit"):
        acquire_send_slot(redis, rate=3, timeout=0.01)


def test_fake_signs_webhooks_the_app_accepts():
    fake = FakeOpenPhone(webhook_secret=SECRET)
    for scheme, secret in (("standard", SECRET), ("legacy", SECRET)):
        body, headers = fake.signed(fake.event("message.received", {"id": "AC1"}), scheme=scheme)
        assert verify_signature(secret, headers, body) is None
        assert json.loads(body)["type"] == "message.received"
    fake.server.server_close()
