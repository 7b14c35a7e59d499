"""The one module that speaks QuickBooks Online's HTTP API: OAuth 2.0 (authorize, code exchange,
refresh, revoke), the read API (query, read by id, change data capture) within Intuit's limits,
and webhook signatures.

The CRM never writes to QuickBooks: its only POSTs go to the token and revoke endpoints. The
connection (realm id, refresh and access tokens) is one encrypted integration secret; it is
never logged or shown. Without QUICKBOOKS_CLIENT_ID the CRM talks to the built-in fake
(app/fake_quickbooks.py) on QUICKBOOKS_SANDBOX_PORT."""
import base64
import hashlib
import hmac
import json
import logging
import re
import secrets
import time
import uuid
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from urllib.parse import urlencode

import httpx
from cryptography.fernet import InvalidToken
from flask import current_app
from redis.exceptions import LockError

from app import audit
from app.extensions import db
from app.integration_secrets import fernet
from app.models import IntegrationSecret, utcnow
from app.queue import get_redis

log = logging.getLogger(__name__)
MINOR_VERSION = "75"
PAGE_SIZE = 1000
CDC_MAX_DAYS = 30
CDC_MAX_OBJECTS = 1000
SCOPE = "com.intuit.quickbooks.accounting"
SECRET_NAME = "quickbooks_connection"
AUDIT_TYPE = "quickbooks"  # audit rows about the connection: object id = the company's realm id
CONNECTED, NEEDS_RECONNECT, NOT_CONNECTED = "connected", "needs_reconnect", "not_connected"
STATE_KEY = "crm:quickbooks:oauth-state:"
REFRESH_LOCK_KEY = "crm:quickbooks:refresh-lock"
NAMES_ACTIVE = re.compile(r"\bActive\s*(=|\bIN\b)", re.I)  # a customer query that already says which
MAX_ATTEMPTS = 6  # per request: 429s waited out and 5xx / timeouts retried, then QuickBooksError


class QuickBooksError(Exception):
    """QuickBooks could not be read now (unreachable, 5xx, rate limited too long, an error answer)."""


class QuickBooksDisconnected(QuickBooksError):
    """There is no usable connection: never connected, or the refresh token was refused
    (invalid_grant) and a person must reconnect QuickBooks on Settings -> Integrations."""


class CdcTooOld(QuickBooksError):
    """Change data capture cannot answer for this window (over 30 days): run a full query instead."""


class CdcTruncated(CdcTooOld):
    """More than 1,000 objects changed for one entity in the window: CDC would drop some."""


class OAuthStateMismatch(QuickBooksError):
    """The OAuth callback's state is unknown, used or someone else's: refused."""


def settings(config=None):
    """The QuickBooks app settings in effect: the configured ones, or the sandbox fake's."""
    config = config if config is not None else current_app.config
    if not config["QUICKBOOKS_CLIENT_ID"]:
        base = f"http://127.0.0.1:{config['QUICKBOOKS_SANDBOX_PORT']}"
        return {"sandbox": True, "client_id": "sandbox", "client_secret": "sandbox", "base_url": base,
                "auth_url": base + "/connect/oauth2", "token_url": base + "/oauth2/v1/tokens/bearer",
                "revoke_url": base + "/v2/oauth2/tokens/revoke",
                "verifier": config["QUICKBOOKS_WEBHOOK_VERIFIER"],  # `crm run` gives its fake one
                "redirect_uri": config["QUICKBOOKS_REDIRECT_URI"]}
    return {"sandbox": False, "client_id": config["QUICKBOOKS_CLIENT_ID"],
            "client_secret": config["QUICKBOOKS_CLIENT_SECRET"],
            "base_url": _api_base(config["QUICKBOOKS_BASE_URL"]), "auth_url": config["QUICKBOOKS_AUTH_URL"],
            "token_url": config["QUICKBOOKS_TOKEN_URL"], "revoke_url": config["QUICKBOOKS_REVOKE_URL"],
            "verifier": config["QUICKBOOKS_WEBHOOK_VERIFIER"],
            "redirect_uri": config["QUICKBOOKS_REDIRECT_URI"]}


def _api_base(url):
    """The API host without a trailing /v3 (Intuit writes the base both ways; paths add /v3)."""
    url = url.rstrip("/")
    return url[:-3].rstrip("/") if url.endswith("/v3") else url


# --- the stored connection -------------------------------------------------------------

def _load():
    """The stored connection as a dict, read fresh from the database, or None."""
    row = db.session.get(IntegrationSecret, SECRET_NAME, populate_existing=True)
    if row is None:
        return None
    return json.loads(fernet().decrypt(row.ciphertext.encode()).decode())


def _save(data):
    """Encrypt and stage the connection in the session (the caller commits)."""
    ciphertext = fernet().encrypt(json.dumps(data).encode()).decode()
    row = db.session.get(IntegrationSecret, SECRET_NAME)
    if row is None:
        db.session.add(IntegrationSecret(name=SECRET_NAME, ciphertext=ciphertext))
    else:
        row.ciphertext, row.updated_at = ciphertext, utcnow()


def connection_details():
    """What a screen may show: status, realm id, since when, and why it needs reconnecting."""
    try:
        data = _load()
    except (InvalidToken, ValueError):  # a wrong ENCRYPTION_KEY: the tokens cannot be used
        return {"status": NEEDS_RECONNECT, "realm_id": None, "since": None,
                "reason": "the stored connection cannot be decrypted with ENCRYPTION_KEY"}
    if data is None:
        return {"status": NOT_CONNECTED, "realm_id": None, "since": None, "reason": None}
    if data.get("needs_reconnect"):
        return {"status": NEEDS_RECONNECT, "realm_id": data.get("realm_id"), "since": data.get("needs_reconnect_at"),
                "reason": data["needs_reconnect"]}
    return {"status": CONNECTED, "realm_id": data.get("realm_id"), "since": data.get("connected_at"), "reason": None}


def connection_status():
    """"connected", "needs_reconnect" (show "Reconnect QuickBooks") or "not_connected"."""
    return connection_details()["status"]


def is_configured():
    """Whether a QuickBooks connection is stored (connected, or waiting for a person to reconnect)."""
    return connection_status() != NOT_CONNECTED


def realm_id():
    """The connected company's realm id, or None."""
    return connection_details()["realm_id"]


def _token_fields(tokens, now):
    return {"access_token": tokens["access_token"], "refresh_token": tokens["refresh_token"],
            "access_expires_at": now + float(tokens.get("expires_in") or 3600),
            "refresh_expires_at": now + float(tokens.get("x_refresh_token_expires_in") or 0) or None}


def _mark_needs_reconnect(data, reason):
    data.update(needs_reconnect=reason, needs_reconnect_at=utcnow().isoformat(timespec="seconds"))
    _save(data)
    audit.record("quickbooks_needs_reconnect", AUDIT_TYPE, data.get("realm_id"),
                 detail=f"QuickBooks connection to realm {data.get('realm_id')} needs reconnecting: {reason}")
    db.session.commit()


# --- the client --------------------------------------------------------------------------

_LIMIT_SCRIPT = """
local now = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[7]))
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
local per_minute, per_second, concurrent = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
if concurrent > 0 and redis.call('ZCARD', KEYS[2]) >= concurrent then
  return '0.05'
end
if per_minute > 0 and redis.call('ZCARD', KEYS[1]) >= per_minute then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return tostring(tonumber(oldest[2]) + tonumber(ARGV[7]) - now)
end
if per_second > 0 and redis.call('ZCOUNT', KEYS[1], now - 1, '+inf') >= per_second then
  local first = redis.call('ZRANGEBYSCORE', KEYS[1], now - 1, '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
  return tostring(tonumber(first[2]) + 1 - now)
end
redis.call('ZADD', KEYS[1], now, ARGV[2])
redis.call('EXPIRE', KEYS[1], 180)
if concurrent > 0 then
  redis.call('ZADD', KEYS[2], now + tonumber(ARGV[6]), ARGV[2])
  redis.call('EXPIRE', KEYS[2], 180)
end
return '0'
"""
# Intuit counts 500 requests in a minute; a window a second longer absorbs clock skew between us.
RATE_WINDOW_SECONDS = 61.0


class QuickBooks:
    """A synchronous client for one CRM installation's QuickBooks connection.

    Every request takes a slot of the limits shared by every process through Redis (per minute,
    per second, concurrent). `sleep` and `clock` are injectable so tests drive time."""

    def __init__(self, config, redis, sleep=time.sleep, clock=time.time, transport=None):
        self.settings = settings(config)
        self.redis, self.sleep, self.clock = redis, sleep, clock
        self.per_minute = int(config["QUICKBOOKS_RATE_PER_MINUTE"])
        self.per_second = int(config["QUICKBOOKS_RATE_PER_SECOND"])
        self.concurrent = int(config["QUICKBOOKS_CONCURRENT"])
        timeout = float(config["QUICKBOOKS_TIMEOUT_SECONDS"])
        self.hold_seconds = timeout * 2 + 10  # a crashed process's concurrency slot lapses after this
        self.http = httpx.Client(timeout=httpx.Timeout(timeout, connect=10.0), transport=transport,
                                 headers={"Accept": "application/json"})
        self._script = redis.register_script(_LIMIT_SCRIPT)

    def close(self):
        self.http.close()

    # --- limits ---

    @contextmanager
    def slot(self, realm):
        """Hold one request slot of the shared limits for this company."""
        member, waited = uuid.uuid4().hex, 0.0
        keys = [f"crm:quickbooks:{realm}:requests", f"crm:quickbooks:{realm}:in-flight"]
        while True:
            wait = float(self._script(keys=keys, args=[self.clock(), member, self.per_minute, self.per_second,
                                                       self.concurrent, self.hold_seconds, RATE_WINDOW_SECONDS]))
            if wait <= 0:
                break
            if waited > 300:
                raise QuickBooksError("QuickBooks request limit: no slot within 5 minutes")
            pause = min(max(wait, 0.01), 5.0)
            waited += pause
            self.sleep(pause)
        try:
            yield
        finally:
            self.redis.zrem(keys[1], member)

    # --- OAuth ---

    def _token_request(self, form):
        """POST to the token endpoint with HTTP Basic client authentication; the token dict."""
        s = self.settings
        try:
            response = self.http.post(s["token_url"], data=form, auth=(s["client_id"], s["client_secret"]))
        except httpx.HTTPError as exc:
            raise QuickBooksError(f"QuickBooks token endpoint unreachable: {exc.__class__.__name__}") from exc
        body = _json_or_none(response)
        if 400 <= response.status_code < 500 and (body or {}).get("error") == "invalid_grant":
            raise QuickBooksDisconnected("QuickBooks refused the refresh token (invalid_grant): reconnect QuickBooks")
        if response.status_code in (400, 401):
            raise QuickBooksError(f"QuickBooks token endpoint refused ({response.status_code}): "
                                  f"{(body or {}).get('error', 'no detail')}; check QUICKBOOKS_CLIENT_ID/SECRET")
        if response.status_code >= 300 or not body or not body.get("access_token") or not body.get("refresh_token"):
            raise QuickBooksError(f"QuickBooks token endpoint answered {response.status_code} without tokens")
        return body

    def refresh(self, stale_access_token=None):
        """Refresh the access token under a Redis lock, so two workers never refresh at once.

        The rotated refresh token is written and committed in the same transaction that read
        the one it replaces, before anything else happens. A worker that waited for the lock
        finds the other's new access token and does not refresh again. This commits the
        caller's session first: the rotated token must not wait on anyone else's work."""
        lock = self.redis.lock(REFRESH_LOCK_KEY, timeout=60, blocking_timeout=90)
        if not lock.acquire():
            raise QuickBooksError("another process has been refreshing the QuickBooks token for 90 s")
        try:
            db.session.commit()  # ends this session's snapshot: read what the last refresh stored
            data = _load()
            if data is None:
                raise QuickBooksDisconnected("QuickBooks is not connected")
            if data.get("needs_reconnect"):
                raise QuickBooksDisconnected(f"QuickBooks needs reconnecting: {data['needs_reconnect']}")
            if data["access_token"] != stale_access_token and data["access_expires_at"] > self.clock() + 60:
                return data  # another process refreshed while this one waited for the lock
            try:
                tokens = self._token_request({"grant_type": "refresh_token", "refresh_token": data["refresh_token"]})
            except QuickBooksDisconnected:
                _mark_needs_reconnect(data, "QuickBooks refused the stored refresh token (invalid_grant)")
                raise
            data.update(_token_fields(tokens, self.clock()))
            _save(data)
            db.session.commit()
            log.info("quickbooks: access token refreshed for realm %s", data.get("realm_id"))
            return data
        finally:
            try:
                lock.release()
            except LockError:  # held past its timeout; someone else may hold it now
                log.warning("quickbooks: refresh lock expired while held")

    def store_tokens(self, realm, tokens, action, detail):
        """Save a new connection (replacing any) and audit it; commits."""
        data = {"realm_id": str(realm), "connected_at": utcnow().isoformat(timespec="seconds"),
                **_token_fields(tokens, self.clock())}
        _save(data)
        audit.record(action, AUDIT_TYPE, str(realm), detail=detail)
        db.session.commit()
        return data

    # --- reading ---

    def _connection(self):
        data = _load()
        if data is None:
            raise QuickBooksDisconnected("QuickBooks is not connected")
        if data.get("needs_reconnect"):
            raise QuickBooksDisconnected(f"QuickBooks needs reconnecting: {data['needs_reconnect']}")
        if data["access_expires_at"] <= self.clock() + 60:
            data = self.refresh(data["access_token"])
        return data

    def get(self, path, params=None):
        """GET /v3/company/{realm}/{path} as JSON: refreshes once on 401, waits out 429s,
        retries 5xx and timeouts with backoff; raises QuickBooksError with QuickBooks' message."""
        refreshed = False
        for attempt in range(MAX_ATTEMPTS):
            data = self._connection()
            url = f"{self.settings['base_url']}/v3/company/{data['realm_id']}/{path}"
            try:
                with self.slot(data["realm_id"]):
                    response = self.http.get(url, params={**(params or {}), "minorversion": MINOR_VERSION},
                                             headers={"Authorization": f"Bearer {data['access_token']}"})
            except httpx.HTTPError as exc:
                log.warning("quickbooks GET %s: %s (attempt %s)", path, exc.__class__.__name__, attempt + 1)
                self.sleep(_backoff(attempt))
                continue
            if response.status_code == 401 and not refreshed:
                refreshed = True
                self.refresh(data["access_token"])
                continue
            if response.status_code == 429 or response.status_code >= 500:
                wait = _retry_after(response, attempt)
                log.warning("quickbooks GET %s: %s, waiting %.1fs", path, response.status_code, wait)
                self.sleep(wait)
                continue
            body = _json_or_none(response)
            if response.status_code >= 400:
                raise QuickBooksError(f"QuickBooks refused GET {path} ({response.status_code}): {_fault(body)}") \
                    from _Fault(_fault_code(body), response.status_code)
            if body is None:
                raise QuickBooksError(f"QuickBooks answered GET {path} with a body that is not JSON")
            return body
        raise QuickBooksError(f"QuickBooks GET {path}: no answer after {MAX_ATTEMPTS} attempts")

    def query_all(self, entity, where=None):
        """Every row of one entity, 1,000 a page (STARTPOSITION is 1-based) until a short page.
        Customers include inactive ones unless `where` names Active."""
        if entity == "Customer" and not NAMES_ACTIVE.search(where or ""):
            where = f"{where} AND Active IN (true, false)" if where else "Active IN (true, false)"
        start = 1
        while True:
            text = f"SELECT * FROM {entity}{f' WHERE {where}' if where else ''} " \
                   f"STARTPOSITION {start} MAXRESULTS {PAGE_SIZE}"
            rows = (self.get("query", {"query": text}).get("QueryResponse") or {}).get(entity) or []
            yield from rows
            if len(rows) < PAGE_SIZE:
                return
            start += PAGE_SIZE

    def changes_since(self, entities, since):
        """{entity: [objects changed after `since`]}; deleted ones carry "status": "Deleted".
        Raises CdcTooOld past 30 days, CdcTruncated when one entity hit CDC's 1,000-object cap."""
        since = since if since.tzinfo else since.replace(tzinfo=timezone.utc)
        now = datetime.fromtimestamp(self.clock(), timezone.utc)
        if since < now - timedelta(days=CDC_MAX_DAYS) + timedelta(hours=1):
            raise CdcTooOld(f"changes since {since.isoformat()} are older than QuickBooks' 30-day CDC window")
        params = {"entities": ",".join(entities), "changedSince": since.isoformat(timespec="seconds")}
        try:
            body = self.get("cdc", params)
        except QuickBooksError as exc:
            if isinstance(exc.__cause__, _Fault) and exc.__cause__.status == 400:
                raise CdcTooOld(f"QuickBooks refused the CDC window: {exc}") from exc
            raise
        found = {entity: [] for entity in entities}
        for response in body.get("CDCResponse") or []:
            for block in response.get("QueryResponse") or []:
                for entity in entities:
                    found[entity].extend(block.get(entity) or [])
        if sum(len(rows) for rows in found.values()) >= CDC_MAX_OBJECTS:
            if len(entities) == 1:
                raise CdcTruncated(f"over {CDC_MAX_OBJECTS} {entities[0]} changes since {since.isoformat()}")
            return {entity: self.changes_since([entity], since)[entity] for entity in entities}
        return found

    def get_entity(self, entity, qb_id):
        """One object by id, or None when QuickBooks has no such object (deleted or never was)."""
        try:
            return self.get(f"{entity.lower()}/{qb_id}").get(entity)
        except QuickBooksError as exc:
            if isinstance(exc.__cause__, _Fault) and (exc.__cause__.code == "610" or exc.__cause__.status == 404):
                return None
            raise


class _Fault(Exception):
    """The error code of a QuickBooks Fault answer (kept as the cause of a QuickBooksError)."""

    def __init__(self, code, status):
        super().__init__(code, status)
        self.code, self.status = code, status


def _json_or_none(response):
    try:
        return response.json()
    except ValueError:
        return None


def _fault(body):
    errors = ((body or {}).get("Fault") or {}).get("Error") or [{}]
    return f"{errors[0].get('Message', '')} {errors[0].get('Detail', '')}".strip() or "no detail"


def _fault_code(body):
    errors = ((body or {}).get("Fault") or {}).get("Error") or [{}]
    return str(errors[0].get("code", ""))


def _backoff(attempt):
    return min(2.0 ** attempt, 60.0)


def _retry_after(response, attempt):
    """Retry-After when given; else Intuit's advice for 429 (wait 60 s), backoff for 5xx."""
    try:
        return min(float(response.headers.get("Retry-After", "")), 120.0)
    except ValueError:
        return 60.0 if response.status_code == 429 else _backoff(attempt)


# --- the app's client and the functions the rest of the CRM calls -----------------------

_clients = {}


def client(config=None):
    """This process's client for the app's configuration."""
    config = config if config is not None else current_app.config
    redis = get_redis()
    key = (tuple(sorted(settings(config).items())), id(redis))
    if key not in _clients:
        _clients[key] = QuickBooks(config, redis)
    return _clients[key]


def query_all(entity, where=None):
    return client().query_all(entity, where)


def changes_since(entities, since):
    return client().changes_since(list(entities), since)


def get_entity(entity, qb_id):
    return client().get_entity(entity, qb_id)


def authorize_url(user_id=None, redirect_uri=None):
    """Intuit's consent page URL with a fresh `state`, kept in Redis for 10 minutes."""
    s = settings()
    state = secrets.token_urlsafe(24)
    redirect_uri = s["redirect_uri"] or redirect_uri
    get_redis().set(STATE_KEY + state, json.dumps({"user_id": user_id, "redirect_uri": redirect_uri}), ex=600)
    query = {"client_id": s["client_id"], "response_type": "code", "scope": SCOPE,
             "redirect_uri": redirect_uri, "state": state}
    return f"{s['auth_url']}?{urlencode(query)}"


def complete_authorization(code, state, realm, user_id=None):
    """The OAuth callback: check `state` (once, same user), exchange the code with the redirect
    URI the authorization was started with, store the tokens."""
    saved = get_redis().getdel(STATE_KEY + state) if state else None
    saved = json.loads(saved) if saved else None
    if saved is None or saved.get("user_id") != user_id:
        audit.record_now("quickbooks_oauth_refused", object_type=AUDIT_TYPE,
                         detail="QuickBooks OAuth callback with an unknown or reused state")
        raise OAuthStateMismatch("This QuickBooks authorization was not started here (or was already used): "
                                 "start again with Connect QuickBooks.")
    if not code or not realm:
        raise QuickBooksError("QuickBooks did not send an authorization code and company (realmId)")
    qb = client()
    tokens = qb._token_request({"grant_type": "authorization_code", "code": code,
                                "redirect_uri": saved["redirect_uri"]})
    return qb.store_tokens(realm, tokens, "quickbooks_connected", f"QuickBooks company {realm} connected")


def connect(realm, refresh_token):
    """Connect with a refresh token obtained elsewhere (headless servers): it is used at once,
    so a wrong one is refused here, and the rotated one is what gets stored."""
    qb = client()
    tokens = qb._token_request({"grant_type": "refresh_token", "refresh_token": refresh_token.strip()})
    return qb.store_tokens(realm, tokens, "quickbooks_connected", f"QuickBooks company {realm} connected")


def disconnect():
    """Revoke the tokens at Intuit and delete them here (audited). Returns whether Intuit
    confirmed the revocation; the local tokens are deleted either way."""
    try:
        data = _load()
    except (InvalidToken, ValueError):
        data = None
    revoked = False
    if data:
        s = settings()
        try:
            response = client().http.post(s["revoke_url"], json={"token": data["refresh_token"]},
                                          auth=(s["client_id"], s["client_secret"]))
            revoked = response.status_code == 200
        except httpx.HTTPError as exc:
            log.warning("quickbooks: revoke failed: %s", exc.__class__.__name__)
    row = db.session.get(IntegrationSecret, SECRET_NAME)
    if row is not None:
        db.session.delete(row)
        audit.record("quickbooks_disconnected", AUDIT_TYPE, (data or {}).get("realm_id"),
                     detail=f"QuickBooks company {(data or {}).get('realm_id')} disconnected"
                            f"{'' if revoked else ' (Intuit did not confirm the revocation)'}")
    db.session.commit()
    return revoked


def sign_webhook(verifier, raw_body):
    """The intuit-signature value for a raw body: base64 HMAC-SHA256 keyed with the verifier token."""
    return base64.b64encode(hmac.new(verifier.encode(), raw_body, hashlib.sha256).digest()).decode()


def verify_webhook(raw_body, signature_header):
    """Whether `intuit-signature` signs these raw bytes with QUICKBOOKS_WEBHOOK_VERIFIER (constant time)."""
    verifier = settings()["verifier"]
    if not verifier or not signature_header:
        return False
    return hmac.compare_digest(signature_header.strip().encode(), sign_webhook(verifier, raw_body).encode())
