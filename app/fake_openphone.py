"""A fake OpenPhone on loopback: the same HTTP API, its 10 requests/s limit, injectable faults,
a record of what it received, and correctly signed webhooks back to the CRM.

Sandbox mode (`crm run` without OPENPHONE_API_KEY) and the tests talk to it over real HTTP.
Control endpoints (no auth, loopback only): GET /_fake/sent, GET /_fake/histogram,
POST /_fake/config {latency, fail_next: [500, ...], timeout_next, lose_next, delivery, fail_next_get,
fail_get_matching: [[regex, status], ...] (each answers the first API GET whose decoded path and
query it matches), expire_tokens, duplicate_pages},
POST /_fake/reply {from, text[, to]}, POST /_fake/reset.
"""
import base64
import json
import logging
import re
import secrets
import sys
import threading
import time
import uuid
from collections import Counter, deque
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, unquote, urlparse

import httpx

from app.fake_history import History, seed
from app.fake_server import FakeServer
from app.openphone import sign_legacy, sign_standard

log = logging.getLogger(__name__)
DEFAULT_NUMBER = "+16175550100"


def _now_iso():
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class FakeOpenPhone(FakeServer):
    thread_name = "fake-openphone"

    def __init__(self, api_key="sandbox", webhook_url=None, webhook_secret=None, host="127.0.0.1", port=0,
                 rate=10, webhook_delay=0.3, scheme="standard", hang_seconds=30.0, clock=time.monotonic):
        self.clock = clock  # the rate window's clock: tests pass their own, so no test depends on speed
        self.api_key, self.webhook_url, self.webhook_secret = api_key, webhook_url, webhook_secret
        self.rate, self.webhook_delay, self.scheme, self.hang_seconds = rate, webhook_delay, scheme, hang_seconds
        self.lock = threading.Lock()
        self.numbers = {DEFAULT_NUMBER: "PN" + "fake0100"}
        self.history = History(self)
        self.reset()
        self.listen(host, port, _handler(self))

    def reset(self):
        with self.lock:
            self.messages = []  # every message the fake holds, outgoing and incoming, oldest first
            self.sent = []  # every POST /v1/messages it accepted
            self.webhooks = []  # signed webhooks not yet delivered (when there is no webhook_url)
            self.window = deque()
            self.histogram = Counter()
            self.asked = []  # every API GET answered (not 429), as its decoded path and query
            self.faults = {"latency": 0.0, "fail_next": [], "timeout_next": 0, "lose_next": 0,
                           "delivery": "delivered", "fail_next_get": [], "expire_tokens": 0,
                           "duplicate_pages": False, "fail_get_matching": []}
            self.history = History(self)

    def configure(self, **faults):
        with self.lock:
            unknown = set(faults) - set(self.faults)
            if unknown:
                raise ValueError(f"unknown fault settings: {sorted(unknown)}")
            self.faults.update(faults)

    # --- the API -------------------------------------------------------------------------

    def take_slot(self):
        """The provider's own limit: `rate` API requests in any sliding second."""
        now = self.clock()
        with self.lock:
            while self.window and self.window[0] <= now - 1.0:
                self.window.popleft()
            allowed = len(self.window) < self.rate
            if allowed:
                self.window.append(now)
            self.histogram[(int(now), "accepted" if allowed else "limited")] += 1
            return allowed

    def accept_message(self, payload):
        """Validate and record one send; returns (status, body)."""
        content, to, from_ = payload.get("content"), payload.get("to"), payload.get("from")
        if not isinstance(content, str) or not 1 <= len(content) <= 1600:
            return 400, {"message": "content must be 1-1600 characters"}
        if not isinstance(to, list) or len(to) != 1 or not from_:
            return 400, {"message": "to must hold exactly one recipient and from is required"}
        with self.lock:
            number_id = self.numbers.setdefault(from_, from_ if from_.startswith("PN") else "PN" + uuid.uuid4().hex[:8])
            message = {"id": "AC" + uuid.uuid4().hex, "object": "message", "from": from_, "to": to,
                       "text": content, "direction": "outgoing", "status": "queued", "createdAt": _now_iso(),
                       "phoneNumberId": number_id, "conversationId": "CN" + to[0][-10:]}
            self.messages.append(message)
            self.sent.append(message)
            delivery = self.faults["delivery"]
        if delivery:
            self.emit(f"message.{delivery}", dict(message, status=delivery))
        return 202, {"data": message}

    def list_messages(self, query):
        with self.lock:
            return self.history.list_messages(query)

    # --- webhooks ------------------------------------------------------------------------

    def reply(self, from_, text, to=DEFAULT_NUMBER):
        """An inbound text from a homeowner: stored, and a message.received webhook sent."""
        message = {"id": "AC" + uuid.uuid4().hex, "object": "message", "from": from_, "to": [to], "text": text,
                   "direction": "incoming", "status": "received", "createdAt": _now_iso(),
                   "phoneNumberId": self.numbers.get(to, to), "conversationId": "CN" + from_[-10:]}
        with self.lock:
            self.messages.append(message)
        return self.emit("message.received", message, delay=0)

    def event(self, type_, obj):
        return {"id": "EV" + uuid.uuid4().hex, "object": "event", "apiVersion": "v3", "createdAt": _now_iso(),
                "type": type_, "data": {"object": obj}}

    def signed(self, event, scheme=None):
        """(raw body, headers) for one event, signed as OpenPhone signs it."""
        body = json.dumps(event).encode()
        headers = {"Content-Type": "application/json"}
        if (scheme or self.scheme) == "legacy":
            headers["openphone-signature"] = sign_legacy(self.webhook_secret, body, int(time.time() * 1000))
        else:
            headers.update(sign_standard(self.webhook_secret, body, "msg_" + uuid.uuid4().hex, int(time.time())))
        return body, headers

    def emit(self, type_, obj, delay=None):
        event = self.event(type_, obj)
        if not self.webhook_url:
            with self.lock:
                self.webhooks.append(self.signed(event))
            return event
        delay = self.webhook_delay if delay is None else delay
        timer = threading.Timer(delay, self._deliver, args=(event,))
        timer.daemon = True
        timer.start()
        return event

    def _deliver(self, event):
        for attempt in range(5):  # OpenPhone retries failed deliveries; so does the fake, briefly
            body, headers = self.signed(event)
            try:
                if httpx.post(self.webhook_url, content=body, headers=headers, timeout=10).status_code < 300:
                    return
            except httpx.HTTPError as exc:
                log.warning("fake openphone: webhook %s not delivered: %s", event["id"], exc)
            time.sleep(0.5 * 2 ** attempt)

    def take_webhooks(self):
        with self.lock:
            pending, self.webhooks = self.webhooks, []
        return pending

    def per_second(self):
        with self.lock:
            seconds = sorted({s for s, _ in self.histogram})
            return [{"second": s, "accepted": self.histogram[(s, "accepted")],
                     "limited": self.histogram[(s, "limited")]} for s in seconds]


def _handler(fake):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body leave in separate writes; with Nagle on, the body waits for the
        # client's delayed ACK (40 ms a request on Linux), which no real API server adds.
        disable_nagle_algorithm = True

        def log_message(self, format, *args):  # noqa: A002 - quiet unless debugging
            log.debug("fake openphone: " + format, *args)

        def _json(self, status, body, headers=None):
            raw = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(raw)

        def _body(self):
            length = int(self.headers.get("Content-Length") or 0)
            try:
                return json.loads(self.rfile.read(length) or b"{}")
            except ValueError:
                return None

        def _api_allowed(self):
            if self.headers.get("Authorization") != fake.api_key:
                self._json(401, {"message": "Unauthorized: invalid API key"})
                return False
            if not fake.take_slot():
                self._json(429, {"message": "Too many requests"}, {"Retry-After": "1"})
                return False
            return True

        def do_GET(self):  # noqa: N802
            url = urlparse(self.path)
            if url.path == "/_fake/sent":
                return self._json(200, {"data": list(fake.sent)})
            if url.path == "/_fake/histogram":
                return self._json(200, {"data": fake.per_second()})
            if url.path.startswith("/_media/"):
                return self._media(url.path[len("/_media/"):])
            if not self._api_allowed():
                return None
            with fake.lock:
                fake.asked.append(unquote(self.path))
                failure = fake.faults["fail_next_get"].pop(0) if fake.faults["fail_next_get"] else None
                failure = failure or _matching_failure(fake.faults["fail_get_matching"], unquote(self.path))
            if failure:
                return self._json(int(failure), {"message": f"Injected error {failure}"})
            return self._json(*_get(fake, url.path, parse_qs(url.query)))

        def _media(self, media_id):
            found = fake.history.media.get(media_id)
            if found is None:
                return self._json(404, {"message": "Not found"})
            content_type, size, body = found
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(size))
            self.end_headers()
            try:
                if len(body) == size:
                    self.wfile.write(body)
                    return None
                chunk, sent = b"\0" * 65536, 0
                while sent < size:  # a huge file, written until the reader hangs up
                    self.wfile.write(chunk[:size - sent])
                    sent += min(len(chunk), size - sent)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True
            return None

        def do_POST(self):  # noqa: N802
            url = urlparse(self.path)
            payload = self._body()
            if url.path.startswith("/_fake/"):
                return self._control(url.path, payload or {})
            if not self._api_allowed():
                return None
            if url.path.startswith("/v1/webhooks/") and payload is not None:
                with fake.lock:
                    return self._json(*fake.history.create_webhook(url.path.rsplit("/", 1)[1], payload))
            if url.path != "/v1/messages":
                return self._json(404, {"message": "Not found"})
            if payload is None:
                return self._json(400, {"message": "Body is not JSON"})
            return self._send(payload)

        def _send(self, payload):
            with fake.lock:
                faults = fake.faults
                failure = faults["fail_next"].pop(0) if faults["fail_next"] else None
                hang = faults["timeout_next"] > 0
                lose = not hang and faults["lose_next"] > 0
                faults["timeout_next"] -= int(hang)
                faults["lose_next"] -= int(lose)
                latency = faults["latency"]
            if failure:
                return self._json(int(failure), {"message": f"Injected error {failure}"})
            status, body = fake.accept_message(payload)
            if latency:
                fake.stopping.wait(latency)
            if hang:  # accepted, then never answers
                fake.stopping.wait(fake.hang_seconds)
                self.close_connection = True
                return None
            if lose:  # accepted, but the answer is lost on the way back
                self.close_connection = True
                return None
            return self._json(status, body)

        def _control(self, path, payload):
            if path == "/_fake/config":
                try:
                    fake.configure(**payload)
                except (TypeError, ValueError) as exc:
                    return self._json(400, {"message": str(exc)})
                return self._json(200, {"data": fake.faults})
            if path == "/_fake/reply":
                if not payload.get("from") or not payload.get("text"):
                    return self._json(400, {"message": "from and text are required"})
                return self._json(200, {"data": fake.reply(payload["from"], payload["text"],
                                                           payload.get("to") or DEFAULT_NUMBER)})
            if path == "/_fake/reset":
                fake.reset()
                return self._json(200, {"data": "reset"})
            return self._json(404, {"message": "Not found"})

    return Handler


def _matching_failure(rules, path):
    """The status of the first [regex, status] rule matching `path` (used up), or None."""
    for rule in rules:
        if re.search(rule[0], path):
            rules.remove(rule)
            return rule[1]
    return None


def _get(fake, path, query):
    """(status, body) for one API GET."""
    with fake.lock:
        if path == "/v1/messages":
            return fake.history.list_messages(query)
        if path == "/v1/phone-numbers":
            return 200, {"data": [{"id": i, "number": n, "object": "phoneNumber"} for n, i in fake.numbers.items()]}
        if path == "/v1/conversations":
            return fake.history.list_conversations(query)
        if path == "/v1/calls":
            return fake.history.list_calls(query)
        if path.startswith(("/v1/call-voicemails/", "/v1/call-recordings/", "/v1/call-summaries/",
                             "/v1/call-transcripts/")):
            return fake.history.call_detail(path)
        if path == "/v1/webhooks":
            return 200, {"data": list(fake.history.webhooks)}
    return 404, {"message": "Not found"}


def sandbox_child(config, app_port):
    """(command, env additions) for `crm run` in sandbox mode: the fake, and the secret it signs with."""
    secret = config["OPENPHONE_WEBHOOK_SECRET"] or "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
    command = [sys.executable, "-m", "run", "fake-openphone", "--port", str(config["SANDBOX_PORT"]),
               "--webhook-url", f"http://127.0.0.1:{app_port}/webhooks/openphone"]
    return command, {"OPENPHONE_WEBHOOK_SECRET": secret}


def serve(port, webhook_url, api_key="sandbox", webhook_secret=None):
    """Run the fake in the foreground until interrupted (`crm fake-openphone`)."""
    fake = FakeOpenPhone(api_key=api_key, webhook_url=webhook_url, webhook_secret=webhook_secret, port=port)
    seed(fake)  # a past for Settings -> Integrations -> Import history to find
    log.info("fake OpenPhone on %s, webhooks to %s", fake.url, webhook_url or "(kept, not sent)")
    fake.serve_until_interrupted()
