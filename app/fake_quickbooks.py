"""A fake QuickBooks Online on loopback: OAuth 2.0 with rotating refresh tokens, the v3 read API
(query, read by id, change data capture), its limits, signed webhooks, and no writes.

Sandbox mode (`crm run` without QUICKBOOKS_CLIENT_ID) and the tests talk to it over real HTTP.
Paths are QuickBooks' own: /connect/oauth2 (authorize), /oauth2/v1/tokens/bearer (token),
/v2/oauth2/tokens/revoke, /v3/company/{realmId}/query|cdc|{entity}/{id}.
Control endpoints (no auth, loopback only): GET /_fake/stats, POST /_fake/change
{entity, op: Create|Update|Delete, id, fields}, POST /_fake/config {rate, per_second, access_ttl},
POST /_fake/expire-tokens.
"""
import base64
import hmac
import html
import json
import logging
import os
import secrets
import sys
import threading
import time
import uuid
from collections import Counter, deque
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlencode, urlparse

import httpx

from app.fake_quickbooks_data import seed_company, seed_volume
from app.fake_quickbooks_query import QueryError, run_query
from app.fake_server import FakeServer
from app.quickbooks import sign_webhook

log = logging.getLogger(__name__)
ENTITIES = ("Customer", "Estimate", "Invoice", "Payment")
SANDBOX_REALM_ID = "9341450000000001"
CDC_MAX_OBJECTS = 1000
CDC_MAX_DAYS = 30
ACCESS_TTL = 3600
REFRESH_TTL = 8726400  # about 101 days, what Intuit answers in x_refresh_token_expires_in


def fault(code, message, detail, type_="ValidationFault"):
    return {"Fault": {"Error": [{"Message": message, "Detail": detail, "code": str(code), "element": ""}],
                      "type": type_}, "time": _iso(datetime.now(timezone.utc))}


def _iso(moment):
    return moment.astimezone(timezone.utc).isoformat(timespec="seconds")


class FakeQuickBooks(FakeServer):
    thread_name = "fake-quickbooks"

    def __init__(self, client_id="sandbox", client_secret="sandbox", realm_id=SANDBOX_REALM_ID,
                 verifier="sandbox-verifier", host="127.0.0.1", port=0, rate=500, per_second=None,
                 concurrent=10, access_ttl=ACCESS_TTL, clock=time.time, webhook_url=None,
                 webhook_shape="cloudevents", company_name="Attack A Crack Foundation Repair"):
        self.client_id, self.client_secret, self.realm_id = client_id, client_secret, realm_id
        self.verifier, self.company_name = verifier, company_name
        self.rate, self.per_second, self.concurrent, self.access_ttl = rate, per_second, concurrent, access_ttl
        self.clock = clock  # epoch seconds: token expiry, rate windows, MetaData times, the CDC limit
        self.webhook_url, self.webhook_shape = webhook_url, webhook_shape
        self.lock = threading.Lock()
        self.entities = {name: {} for name in ENTITIES}
        self.deleted = {name: {} for name in ENTITIES}
        self.next_id = 1
        self.codes, self.refresh_tokens, self.access_tokens = {}, {}, {}
        self.window, self.second_window = deque(), deque()
        self.in_flight = 0
        self.stats = Counter()  # requests, writes, limited, refreshes, invalid_grant, ...
        self.webhooks = []  # (body, headers) kept when there is no webhook_url
        self.requests = []  # (method, path, query, Accept header) of every API and OAuth request
        self.token_latency = 0.0  # seconds the token endpoint takes (tests of concurrent refreshes)
        self.listen(host, port, _handler(self))

    def now(self):
        return datetime.fromtimestamp(self.clock(), timezone.utc)

    # --- the books --------------------------------------------------------------------

    def add(self, entity, fields, when=None):
        """Create one object (as a QuickBooks user would); returns it."""
        with self.lock:
            obj_id = str(self.next_id)
            self.next_id += 1
            stamp = _iso(when or self.now())
            obj = {**fields, "Id": obj_id, "SyncToken": "0", "domain": "QBO", "sparse": False,
                   "MetaData": {"CreateTime": stamp, "LastUpdatedTime": stamp}}
            if entity == "Customer":
                obj.setdefault("Active", True)
            self.entities[entity][obj_id] = obj
            return obj

    def change(self, entity, op="Update", obj_id=None, fields=None, notify=True):
        """A change made in QuickBooks: Create, Update (SyncToken and LastUpdatedTime move) or
        Delete (the object is gone; CDC reports it with status Deleted). Sends a webhook."""
        if entity not in ENTITIES:
            raise ValueError(f"unknown entity {entity!r}")
        if op == "Create":
            obj = self.add(entity, fields or {})
        else:
            with self.lock:
                current = self.entities[entity].get(str(obj_id))
                if current is None:
                    raise KeyError(f"no {entity} {obj_id}")
                stamp = _iso(self.now())
                if op == "Delete":
                    del self.entities[entity][str(obj_id)]
                    obj = {"domain": "QBO", "status": "Deleted", "Id": str(obj_id),
                           "MetaData": {"LastUpdatedTime": stamp}}
                    self.deleted[entity][str(obj_id)] = obj
                else:
                    current.update(fields or {})
                    current["SyncToken"] = str(int(current["SyncToken"]) + 1)
                    current["MetaData"] = dict(current["MetaData"], LastUpdatedTime=stamp)
                    obj = current
        if notify:
            self.notify([(entity, obj["Id"], op, obj["MetaData"]["LastUpdatedTime"])])
        return obj

    def cdc(self, entities, since):
        """The CDC answer: changed objects per entity, oldest first, deleted after active ones,
        at most CDC_MAX_OBJECTS in all."""
        blocks, left = [], CDC_MAX_OBJECTS
        with self.lock:
            for name in entities:
                changed = [o for o in self.entities[name].values() if _parse(o["MetaData"]["LastUpdatedTime"]) > since]
                changed.sort(key=lambda o: _parse(o["MetaData"]["LastUpdatedTime"]))
                gone = [o for o in self.deleted[name].values() if _parse(o["MetaData"]["LastUpdatedTime"]) > since]
                objects = (changed + gone)[:left]
                left -= len(objects)
                block = {"startPosition": 1, "maxResults": len(objects), "totalCount": len(objects)}
                if objects:
                    block[name] = json.loads(json.dumps(objects))
                blocks.append(block)
        return {"CDCResponse": [{"QueryResponse": blocks}], "time": _iso(self.now())}

    # --- OAuth --------------------------------------------------------------------------

    def issue_refresh_token(self):
        """A refresh token for the company (what the OAuth Playground hands a developer)."""
        token = "RT1-" + secrets.token_urlsafe(24)
        with self.lock:
            self.refresh_tokens[token] = self.clock() + REFRESH_TTL
        return token

    def grant(self, form):
        """The token endpoint after client authentication: (status, body)."""
        grant_type = form.get("grant_type")
        if grant_type == "authorization_code":
            with self.lock:
                code = self.codes.pop(form.get("code") or "", None)
            if code is None or code["expires"] < self.clock() or code["redirect_uri"] != form.get("redirect_uri"):
                return 400, {"error": "invalid_grant"}
        elif grant_type == "refresh_token":
            with self.lock:
                expires = self.refresh_tokens.pop(form.get("refresh_token") or "", None)
            if expires is None or expires < self.clock():
                self.stats["invalid_grant"] += 1
                return 400, {"error": "invalid_grant"}
            self.stats["refreshes"] += 1
        else:
            return 400, {"error": "unsupported_grant_type"}
        refresh = self.issue_refresh_token()  # rotates: the one just used is gone
        access = "AT-" + secrets.token_urlsafe(32)
        with self.lock:
            self.access_tokens[access] = (self.clock() + self.access_ttl, refresh)
        return 200, {"token_type": "bearer", "access_token": access, "expires_in": self.access_ttl,
                     "refresh_token": refresh, "x_refresh_token_expires_in": REFRESH_TTL}

    def revoke(self, token):
        with self.lock:
            self.refresh_tokens.pop(token, None)
            self.access_tokens.pop(token, None)
            for access, (_, refresh) in list(self.access_tokens.items()):
                if refresh == token:
                    del self.access_tokens[access]
            self.stats["revoked"] += 1

    def expire_access_tokens(self):
        with self.lock:
            self.access_tokens = {t: (0, r) for t, (_, r) in self.access_tokens.items()}

    def authorize(self, query):
        """(status, html or redirect URL) for the consent page and its Connect link."""
        first = {k: v[0] for k, v in query.items()}
        if first.get("client_id") != self.client_id or first.get("response_type") != "code":
            return 400, "<h1>Invalid client_id or response_type</h1>"
        if "com.intuit.quickbooks.accounting" not in first.get("scope", "").split() or not first.get("redirect_uri"):
            return 400, "<h1>Missing scope or redirect_uri</h1>"
        if first.get("approve") != "1":
            link = html.escape("/connect/oauth2?" + urlencode(dict(first, approve="1")))
            return 200, (f"<h1>Connect to {html.escape(self.company_name)}</h1><p>Sandbox QuickBooks company "
                         f"{self.realm_id}.</p><a id='connect' href='{link}'>Connect</a>")
        code = "AB11" + secrets.token_urlsafe(20)
        with self.lock:
            self.codes[code] = {"redirect_uri": first["redirect_uri"], "expires": self.clock() + 600}
        target = first["redirect_uri"] + ("&" if "?" in first["redirect_uri"] else "?")
        return 302, target + urlencode({"code": code, "state": first.get("state", ""), "realmId": self.realm_id})

    # --- limits -------------------------------------------------------------------------

    def take_slot(self):
        """500 requests in any 60 s (and optionally `per_second` in any 1 s), by the fake's clock."""
        now = self.clock()
        with self.lock:
            while self.window and self.window[0] <= now - 60:
                self.window.popleft()
            while self.second_window and self.second_window[0] <= now - 1:
                self.second_window.popleft()
            if self.rate and len(self.window) >= self.rate:
                return False
            if self.per_second and len(self.second_window) >= self.per_second:
                return False
            self.window.append(now)
            self.second_window.append(now)
            return True

    # --- webhooks -----------------------------------------------------------------------

    def webhook_body(self, changes, shape=None):
        """Raw body for [(entity, id, operation, lastUpdated)] in the CloudEvents or legacy shape."""
        if (shape or self.webhook_shape) == "legacy":
            entities = [{"name": e, "id": str(i), "operation": op, "lastUpdated": when} for e, i, op, when in changes]
            payload = {"eventNotifications": [{"realmId": self.realm_id, "dataChangeEvent": {"entities": entities}}]}
        else:
            verbs = {"Create": "created", "Update": "updated", "Delete": "deleted", "Merge": "merged", "Void": "voided"}
            payload = [{"specversion": "1.0", "id": str(uuid.uuid4()), "source": "intuit.quickbooks",
                        "type": f"qbo.{e.lower()}.{verbs.get(op, op.lower())}.v1", "datacontenttype": "application/json",
                        "time": when, "intuitentityid": str(i), "intuitaccountid": self.realm_id, "data": {}}
                       for e, i, op, when in changes]
        return json.dumps(payload).encode()

    def signed_webhook(self, changes, shape=None, verifier=None):
        body = self.webhook_body(changes, shape)
        return body, {"Content-Type": "application/json", "intuit-signature": sign_webhook(verifier or self.verifier, body)}

    def send_webhook(self, url, changes, shape=None):
        """POST one signed webhook now; returns the HTTP status."""
        body, headers = self.signed_webhook(changes, shape)
        return httpx.post(url, content=body, headers=headers, timeout=10).status_code

    def notify(self, changes):
        if not self.webhook_url:
            with self.lock:
                self.webhooks.append(self.signed_webhook(changes))
            return
        def deliver():
            for attempt in range(5):  # Intuit retries failed deliveries; the fake does so briefly
                try:
                    if self.send_webhook(self.webhook_url, changes) < 300:
                        return
                except httpx.HTTPError as exc:
                    log.warning("fake quickbooks: webhook not delivered: %s", exc)
                time.sleep(0.5 * 2 ** attempt)
        threading.Thread(target=deliver, daemon=True).start()


def _parse(value):
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _handler(fake):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def log_message(self, format, *args):  # noqa: A002
            log.debug("fake quickbooks: " + format, *args)

        def _send(self, status, raw, content_type="application/json", headers=None):
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(raw)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(raw)

        def _json(self, status, body, headers=None):
            self._send(status, json.dumps(body).encode(), headers=headers)

        def _read(self):
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def _client_ok(self):
            expected = base64.b64encode(f"{fake.client_id}:{fake.client_secret}".encode()).decode()
            return hmac.compare_digest(self.headers.get("Authorization", ""), "Basic " + expected)

        def do_GET(self):  # noqa: N802
            url = urlparse(self.path)
            query = parse_qs(url.query)
            if url.path == "/_fake/stats":
                return self._json(200, dict(fake.stats))
            if url.path == "/connect/oauth2":
                status, page = fake.authorize(query)
                if status == 302:
                    return self._send(302, b"", headers={"Location": page})
                return self._send(status, page.encode(), "text/html; charset=utf-8")
            fake.requests.append(("GET", url.path, query, self.headers.get("Accept", "")))
            parts = url.path.strip("/").split("/")
            if len(parts) < 4 or parts[:2] != ["v3", "company"]:
                return self._json(404, fault(404, "Not found", url.path))
            fake.stats["requests"] += 1
            if not self._api_allowed(parts[2]):
                return None
            with fake.lock:
                fake.in_flight += 1
                crowded = fake.concurrent and fake.in_flight > fake.concurrent
            try:
                if crowded:
                    fake.stats["limited"] += 1
                    return self._json(429, fault(3001, "message=ThrottleExceeded; errorCode=003001; statusCode=429",
                                                 "Too many concurrent requests", "SERVICE"))
                return self._api(parts[3:], query)
            finally:
                with fake.lock:
                    fake.in_flight -= 1

        def _api_allowed(self, realm):
            auth = self.headers.get("Authorization", "")
            entry = fake.access_tokens.get(auth[len("Bearer "):]) if auth.startswith("Bearer ") else None
            if entry is None or entry[0] <= fake.clock():
                fake.stats["unauthorized"] += 1
                self._json(401, fault(3200, "message=AuthenticationFailed; errorCode=003200; statusCode=401",
                                      "Token expired or invalid", "AuthenticationFault"))
                return False
            if realm != fake.realm_id:
                self._json(403, fault(3100, "message=ApplicationAuthorizationFailed; errorCode=003100; "
                                            "statusCode=403", "Wrong realm", "AuthorizationFault"))
                return False
            if not fake.take_slot():
                fake.stats["limited"] += 1
                self._json(429, fault(3001, "message=ThrottleExceeded; errorCode=003001; statusCode=429",
                                      "The request limit was reached.", "SERVICE"))
                return False
            if "json" not in self.headers.get("Accept", ""):  # QuickBooks answers XML without it
                self._send(400, b"<IntuitResponse><Fault><Error code='4000'><Message>Ask for JSON</Message>"
                                b"</Error></Fault></IntuitResponse>", "application/xml")
                return False
            return True

        def _api(self, rest, query):
            minor = query.get("minorversion", [""])[0]
            if minor and minor.isdigit() and int(minor) < 75:
                return self._json(400, fault(4000, "Unsupported minor version", f"minorversion {minor} is retired"))
            if rest == ["query"]:
                try:
                    return self._json(200, run_query(fake, query.get("query", [""])[0]))
                except QueryError as exc:
                    return self._json(400, fault(4000, "message=Error parsing query; errorCode=004000",
                                                 f"QueryParserError: {exc}"))
            if rest == ["cdc"]:
                return self._cdc(query)
            if len(rest) == 2:
                name = {e.lower(): e for e in ENTITIES}.get(rest[0].lower())
                obj = fake.entities[name].get(rest[1]) if name else None
                if obj is None:
                    return self._json(400, fault(610, "Object Not Found",
                                                 "Object Not Found : Something you're trying to use has been made "
                                                 "inactive. Check the fields with accounts, customers, items, "
                                                 "vendors or employees."))
                return self._json(200, {name: obj, "time": _iso(fake.now())})
            return self._json(404, fault(404, "Not found", "/".join(rest)))

        def _cdc(self, query):
            names = [n.strip() for n in query.get("entities", [""])[0].split(",") if n.strip()]
            canonical = {e.lower(): e for e in ENTITIES}
            try:
                since = _parse(query.get("changedSince", [""])[0])
                if since.tzinfo is None:
                    since = since.replace(tzinfo=timezone.utc)
            except ValueError:
                return self._json(400, fault(4000, "Invalid changedSince", "changedSince must be a date-time"))
            if not names or any(n.lower() not in canonical for n in names):
                return self._json(400, fault(4000, "Invalid entities", f"entities={','.join(names)}"))
            if since < fake.now() - timedelta(days=CDC_MAX_DAYS):
                return self._json(400, fault(4000, "Invalid changedSince",
                                             "changedSince is more than 30 days in the past"))
            return self._json(200, fake.cdc([canonical[n.lower()] for n in names], since))

        def do_POST(self):  # noqa: N802
            url = urlparse(self.path)
            raw = self._read()
            if url.path.startswith("/_fake/"):
                return self._control(url.path, json.loads(raw or b"{}"))
            fake.requests.append(("POST", url.path, parse_qs(url.query), self.headers.get("Accept", "")))
            if url.path == "/oauth2/v1/tokens/bearer":
                if not self._client_ok():
                    return self._json(401, {"error": "invalid_client"})
                if fake.token_latency:
                    time.sleep(fake.token_latency)
                form = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
                return self._json(*fake.grant(form))
            if url.path == "/v2/oauth2/tokens/revoke":
                if not self._client_ok():
                    return self._json(401, {"error": "invalid_client"})
                try:
                    token = json.loads(raw or b"{}").get("token")
                except ValueError:
                    token = None
                if not token:
                    return self._json(400, {"error": "invalid_request"})
                fake.revoke(token)
                return self._send(200, b"")
            return self._refuse_write()

        def _refuse_write(self):
            if self.command != "POST":
                self._read()
                fake.requests.append((self.command, urlparse(self.path).path, {}, self.headers.get("Accept", "")))
            fake.stats["writes"] += 1
            log.warning("fake quickbooks: refused a write: %s %s", self.command, self.path)
            return self._json(405, fault(405, "Writes are refused", f"{self.command} {self.path}"))

        do_PUT = do_PATCH = do_DELETE = _refuse_write  # noqa: N815

        def _control(self, path, payload):
            try:
                if path == "/_fake/change":
                    obj = fake.change(payload["entity"], payload.get("op", "Update"), payload.get("id"),
                                      payload.get("fields"))
                    return self._json(200, obj)
                if path == "/_fake/config":
                    for key in ("rate", "per_second", "access_ttl", "concurrent"):
                        if key in payload:
                            setattr(fake, key, payload[key])
                    return self._json(200, {"rate": fake.rate, "per_second": fake.per_second})
                if path == "/_fake/expire-tokens":
                    fake.expire_access_tokens()
                    return self._json(200, {})
            except (KeyError, ValueError, TypeError) as exc:
                return self._json(400, {"error": str(exc)})
            return self._json(404, {"error": "not found"})

    return Handler


def sandbox_child(config, app_port):
    """(command, env additions, refresh token) for `crm run` in sandbox mode: the seeded fake,
    the verifier it signs webhooks with, and the refresh token the CRM connects with."""
    verifier = config["QUICKBOOKS_WEBHOOK_VERIFIER"] or secrets.token_urlsafe(24)
    token = "RT1-" + secrets.token_urlsafe(24)
    command = [sys.executable, "-m", "run", "fake-quickbooks", "--port", str(config["QUICKBOOKS_SANDBOX_PORT"]),
               "--webhook-url", f"http://127.0.0.1:{app_port}/webhooks/quickbooks", "--seed"]
    return command, {"QUICKBOOKS_WEBHOOK_VERIFIER": verifier, "QUICKBOOKS_SANDBOX_REFRESH_TOKEN": token}, token


def serve(port, webhook_url=None, verifier="sandbox-verifier", seed=False, volume=False, refresh_token=None,
          rate=500):
    """Run the fake in the foreground until interrupted (`crm fake-quickbooks`)."""
    fake = FakeQuickBooks(verifier=verifier, port=port, webhook_url=webhook_url, rate=rate)
    if seed:
        seed_company(fake)
    if volume:
        seed_volume(fake)
    refresh_token = refresh_token or fake.issue_refresh_token()
    fake.refresh_tokens[refresh_token] = fake.clock() + REFRESH_TTL
    if not os.environ.get("QUICKBOOKS_SANDBOX_REFRESH_TOKEN"):  # a person started it: they need one
        log.info("connect with: crm quickbooks connect --realm-id %s --refresh-token %s", fake.realm_id, refresh_token)
    log.info("fake QuickBooks on %s (realm %s), webhooks to %s", fake.url, fake.realm_id, webhook_url or "(kept)")
    fake.serve_until_interrupted()
