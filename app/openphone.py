"""The one module that speaks OpenPhone's HTTP API and checks its webhook signatures."""
import base64
import hashlib
import hmac
import logging
import time
import uuid
from datetime import datetime, timezone

import httpx
from flask import current_app
from redis.exceptions import RedisError

from app.integration_secrets import SecretUnreadable, get_secret, is_stored
from app.queue import get_redis
from app.utc import utcnow

log = logging.getLogger(__name__)
SIGNATURE_TOLERANCE_SECONDS = 300
RATE_KEY = "crm:openphone:rate"
# A request reaches OpenPhone a few milliseconds after it takes its slot, and not always in
# the order the slots were taken; a window a little longer than one second keeps that jitter
# from ever putting rate + 1 requests into one of OpenPhone's seconds.
RATE_WINDOW_SECONDS = 1.15
_RATE_SCRIPT = """
local t = tonumber(ARGV[4])
if not t then
  local now = redis.call('TIME')
  t = tonumber(now[1]) + tonumber(now[2]) / 1000000
end
local window = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', t - window)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('ZADD', KEYS[1], t, ARGV[2])
  redis.call('EXPIRE', KEYS[1], 5)
  return '0'
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return tostring(tonumber(oldest[2]) + window - t)
"""
_clients = {}
_scripts = {}


class OpenPhoneError(Exception):
    """OpenPhone could not be asked; the text was certainly not sent (retry later is safe)."""


class PermanentError(OpenPhoneError):
    """OpenPhone refused the request (4xx other than 429); the message is OpenPhone's."""
    status = None


class NotFound(PermanentError):
    """OpenPhone has no such object (404)."""


class AmbiguousError(OpenPhoneError):
    """5xx, timeout or a dropped connection after sending: the text may have gone out."""


def acquire_send_slot(redis, rate=None, timeout=60.0, clock=None):
    """Block until the rate limit shared by every process (kept in Redis) allows one request.

    The window runs on Redis's clock, one for every process; a `clock` (with now() and sleep(s))
    replaces it and the waiting, so a test decides when time passes."""
    if rate is None:
        rate = current_app.config["OPENPHONE_RATE_PER_SECOND"]
    now, sleep = (clock.now, clock.sleep) if clock is not None else (time.monotonic, time.sleep)
    deadline = now() + timeout
    script = _scripts.get(id(redis))
    if script is None:  # one Script per connection: EVALSHA, loading the script only once
        script = _scripts[id(redis)] = redis.register_script(_RATE_SCRIPT)
    while True:
        args = [rate, uuid.uuid4().hex, RATE_WINDOW_SECONDS] + ([clock.now()] if clock is not None else [])
        wait = float(script(keys=[RATE_KEY], args=args))
        if wait <= 0:
            return
        if now() + wait > deadline:
            raise OpenPhoneError(f"send rate limit: no slot within {timeout:.0f}s")
        sleep(min(max(wait, 0.005), 1.0))


class OpenPhone:
    """A synchronous OpenPhone API client. Every request takes a slot of the shared rate limit."""

    def __init__(self, api_key, base_url, redis=None, rate=10, timeout=15.0, retries_429=5, transport=None,
                 clock=None):
        self.redis = redis
        self.rate = rate
        self.clock = clock  # see acquire_send_slot
        self.retries_429 = retries_429
        self.http = httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout, transport=transport,
                                 headers={"Authorization": api_key, "Content-Type": "application/json"})

    def close(self):
        self.http.close()

    def _request(self, method, path, **kwargs):
        for attempt in range(self.retries_429 + 1):
            if self.redis is not None:
                try:
                    acquire_send_slot(self.redis, self.rate, clock=self.clock)
                except RedisError as exc:  # nothing was sent: safe to try again later
                    raise OpenPhoneError(f"{method} {path}: rate limiter unavailable: {exc!r}") from exc
            try:
                response = self.http.request(method, path, **kwargs)
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
                raise OpenPhoneError(f"{method} {path}: cannot connect: {exc!r}") from exc
            except httpx.TransportError as exc:
                raise AmbiguousError(f"{method} {path}: no answer: {exc!r}") from exc
            if response.status_code != 429:
                return _checked(method, path, response)
            wait = _retry_after(response, attempt)
            log.warning("openphone %s %s: 429, retrying in %.2fs (attempt %s)", method, path, wait, attempt + 1)
            (self.clock.sleep if self.clock is not None else time.sleep)(wait)
        raise OpenPhoneError(f"{method} {path}: still rate limited (429) after {self.retries_429} retries")

    def send_message(self, to, content, from_):
        """POST /v1/messages; returns the response's data object (id, status, ...)."""
        payload = {"content": content, "from": from_, "to": [to]}
        return self._request("POST", "/v1/messages", json=payload).get("data") or {}

    def list_messages(self, phone_number_id, participant, since=None, max_results=50):
        """Every message with one participant on one number, newest first, following nextPageToken."""
        params = {"phoneNumberId": phone_number_id, "participants": participant, "maxResults": max_results}
        if since is not None:
            params["createdAfter"] = since.strftime("%Y-%m-%dT%H:%M:%S.000Z")
        found, token = [], None
        for _ in range(100):
            if token:
                params["pageToken"] = token
            body = self._request("GET", "/v1/messages", params=params)
            found.extend(body.get("data") or [])
            token = body.get("nextPageToken")
            if not token:
                break
        return found

    def get(self, path, params=None, attempts=5):
        """A read (GET) of OpenPhone's API, retried on 5xx, timeouts and lost connections (a
        read is safe to repeat); 429s are waited out by _request. Returns the JSON body."""
        for attempt in range(attempts):
            try:
                return self._request("GET", path, params=params)
            except PermanentError:
                raise
            except OpenPhoneError as exc:
                if attempt == attempts - 1:
                    raise
                log.warning("openphone GET %s failed (%s), retrying", path, exc)
                time.sleep(min(0.2 * (2 ** attempt), 2.0))
        raise OpenPhoneError(f"GET {path}: no answer")  # not reached

    def list_webhooks(self):
        """GET /v1/webhooks, asked once (a screen waits on it)."""
        return self.get("/v1/webhooks", attempts=1).get("data") or []

    def create_webhook(self, kind, url, events):
        """POST /v1/webhooks/{messages|calls|call-summaries|call-transcripts}."""
        return self._request("POST", f"/v1/webhooks/{kind}", json={"url": url, "events": events}).get("data") or {}

    def phone_number_id(self, number):
        """The PN... id of a sending number given as E.164 or already as an id."""
        if number.startswith("PN"):
            return number
        for item in self._request("GET", "/v1/phone-numbers").get("data") or []:
            if item.get("number") == number:
                return item["id"]
        raise PermanentError(f"{number} is not one of this OpenPhone account's numbers")


def _checked(method, path, response):
    if response.status_code < 400:
        try:
            return response.json()
        except ValueError as exc:
            raise AmbiguousError(f"{method} {path}: {response.status_code} with a body that is not JSON") from exc
    detail = response.text[:500]
    try:
        detail = response.json().get("message") or detail
    except (ValueError, AttributeError):
        pass
    if response.status_code == 404:
        error = NotFound(f"{method} {path}: {detail}")
        error.status = 404
        raise error
    if response.status_code >= 500:
        raise AmbiguousError(f"{method} {path}: OpenPhone answered {response.status_code}: {detail}")
    error = PermanentError(f"OpenPhone refused ({response.status_code}): {detail}")
    error.status = response.status_code
    raise error


def _retry_after(response, attempt):
    try:
        return min(float(response.headers.get("Retry-After", "")), 5.0)
    except ValueError:
        return min(0.2 * (2 ** attempt), 2.0)


API_KEY_SECRET, WEBHOOK_SECRET = "openphone_api_key", "openphone_webhook_secret"


def _stored(name):
    try:
        return get_secret(name)
    except SecretUnreadable as exc:  # nothing can be sent or verified with it: say why
        raise OpenPhoneError(str(exc)) from exc


def api_key(config):
    """The key set on Settings -> Integrations (stored encrypted), else OPENPHONE_API_KEY."""
    return _stored(API_KEY_SECRET) or config["OPENPHONE_API_KEY"] or ""


def webhook_secret(config):
    """The signing secret set on Settings -> Integrations, else OPENPHONE_WEBHOOK_SECRET. In sandbox
    mode the fake OpenPhone signs with OPENPHONE_WEBHOOK_SECRET, so that one is used."""
    if sandbox(config):
        return config["OPENPHONE_WEBHOOK_SECRET"] or ""
    return _stored(WEBHOOK_SECRET) or config["OPENPHONE_WEBHOOK_SECRET"] or ""


def sandbox(config):
    """No real API key, neither stored nor in the environment: the CRM talks to the built-in fake."""
    return not config["OPENPHONE_API_KEY"] and not is_stored(API_KEY_SECRET)


def client_from_config(config=None):
    """This process's OpenPhone client for the app's configuration (the fake one in sandbox mode).

    Clients are kept per configuration so connections are reused from one text to the next.
    OPENPHONE_RATE_PER_SECOND = 0 turns the shared limiter off (for benchmarks against a fake
    with no limit); OpenPhone's own 429s are still waited out."""
    config = config if config is not None else current_app.config
    if sandbox(config):
        key, base = "sandbox", f"http://127.0.0.1:{config['SANDBOX_PORT']}"
    else:
        key, base = api_key(config), config["OPENPHONE_BASE_URL"]
    rate, timeout = config["OPENPHONE_RATE_PER_SECOND"], config["OPENPHONE_TIMEOUT_SECONDS"]
    redis = get_redis() if rate else None
    cache_key = (key, base, id(redis), rate, timeout)
    if cache_key not in _clients:
        _clients[cache_key] = OpenPhone(key, base, redis=redis, rate=rate, timeout=timeout)
    return _clients[cache_key]


# --- webhook signatures --------------------------------------------------------------

def _secret_bytes(secret):
    secret = (secret or "").strip()
    if secret.startswith("whsec_"):
        secret = secret[len("whsec_"):]
    try:
        return base64.b64decode(secret, validate=True)
    except ValueError:
        return secret.encode()


def _digest(key, message):
    return base64.b64encode(hmac.new(key, message, hashlib.sha256).digest()).decode()


def sign_legacy(secret, body, timestamp_ms):
    """The openphone-signature header value for a raw body (used by the fake and tests)."""
    return f"hmac;1;{timestamp_ms};{_digest(_secret_bytes(secret), f'{timestamp_ms}.'.encode() + body)}"


def sign_standard(secret, body, webhook_id, timestamp):
    """Standard Webhooks headers for a raw body (used by the fake and tests)."""
    digest = _digest(_secret_bytes(secret), f"{webhook_id}.{timestamp}.".encode() + body)
    return {"webhook-id": webhook_id, "webhook-timestamp": str(timestamp), "webhook-signature": f"v1,{digest}"}


def signature_headers_problem(headers, now=None):
    """Why these headers cannot carry a valid signature, or None: checked before the body is read,
    so an unsigned or stale delivery costs no more than its headers."""
    now = time.time() if now is None else now
    if headers.get("webhook-signature"):
        webhook_id, stamp = headers.get("webhook-id", ""), headers.get("webhook-timestamp", "")
        if not webhook_id or not stamp.isdigit():
            return "missing webhook-id or webhook-timestamp"
        if abs(now - int(stamp)) > SIGNATURE_TOLERANCE_SECONDS:
            return "stale timestamp"
        return None
    legacy = headers.get("openphone-signature")
    if legacy:
        parts = legacy.split(";")
        if len(parts) != 4 or parts[0] != "hmac" or not parts[2].isdigit():
            return "malformed openphone-signature"
        if abs(now - int(parts[2]) / 1000) > SIGNATURE_TOLERANCE_SECONDS:
            return "stale timestamp"
        return None
    return "missing signature header"


def verify_signature(secret, headers, body, now=None):
    """None when the raw body is signed by `secret` in either scheme, else why it is not."""
    if not secret:
        return "no webhook secret configured"
    problem = signature_headers_problem(headers, now)
    if problem:
        return problem
    key = _secret_bytes(secret)
    if headers.get("webhook-signature"):
        webhook_id, stamp = headers["webhook-id"], headers["webhook-timestamp"]
        expected = _digest(key, f"{webhook_id}.{stamp}.".encode() + body)
        for candidate in headers["webhook-signature"].split():
            version, _, value = candidate.partition(",")
            if version == "v1" and hmac.compare_digest(value.encode(), expected.encode()):
                return None
        return "signature mismatch"
    _, _, stamp, digest = headers["openphone-signature"].split(";")
    expected = _digest(key, f"{stamp}.".encode() + body)
    return None if hmac.compare_digest(digest.encode(), expected.encode()) else "signature mismatch"


# --- OpenPhone's objects -----------------------------------------------------------------

def parse_time(value):
    """OpenPhone's ISO 8601 UTC time as a naive UTC datetime (None when missing or unreadable)."""
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).astimezone(timezone.utc).replace(tzinfo=None)
    except ValueError:
        return None


def call_values(item, contact, phone, source):
    """A Call row's values from OpenPhone's call object (the history import and webhooks)."""
    return dict(provider_id=str(item["id"])[:64], contact_id=contact.id if contact else None, phone=phone,
                phone_number_id=str(item.get("phoneNumberId") or "")[:40] or None,
                direction=str(item.get("direction") or "incoming")[:10], status=str(item.get("status") or "logged")[:20],
                duration=int(item.get("duration") or 0), answered_by=str(item.get("answeredBy") or "")[:64] or None,
                created_at=parse_time(item.get("createdAt")) or utcnow(), source=source)
