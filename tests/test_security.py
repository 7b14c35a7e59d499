"""Security defaults: throttled logins, CSRF, cookies, headers, redirects, bad sessions and
hostile input. Each refusal is checked together with "nothing changed"."""
import hashlib
import os
import re
import subprocess
import sys
import time

import pytest
from flask.json.tag import TaggedJSONSerializer
from flask_jwt_extended import create_access_token
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from sqlalchemy import func, select

from app.models import Contact
from tests.conftest import PASSWORD, csrf_token, login, user_id

HOSTILE = {
    "sql": "Robert'); DROP TABLE contacts;--",
    "script": "<script>alert('x')</script>",
    "control": "Ann\x07\x1b[31m\u202eeil\x7f",
    "nul": "Ann\x00Lee",
    "long": "A" * 10_240,
}


def contact_count(db):
    db.session.expire_all()
    return db.session.scalar(select(func.count(Contact.id)))


# --- login throttling -------------------------------------------------------------------------

def test_login_throttle_counts_live_in_redis_shared_by_every_worker(app, db, redis):
    login(app, app.test_client(), "marketer", "wrong")
    assert app.config["RATELIMIT_STORAGE_URI"].startswith(("redis://", "redis+unix://", "rediss://"))
    assert any(b"LIMIT" in key.upper() for key in redis.keys("*"))


def test_jwt_login_is_throttled_like_the_form(app, db):
    client = app.test_client()
    codes = [client.post("/api/v1/security/login", json={"username": "staff", "password": "nope",
                                                          "provider": "db"}).status_code for _ in range(11)]
    assert codes[0] == 401 and codes[-1] == 429
    right = client.post("/api/v1/security/login", json={"username": "staff", "password": PASSWORD, "provider": "db"})
    assert right.status_code == 429


def test_throttling_one_account_leaves_another_usable(app, db):
    client = app.test_client()
    for _ in range(11):
        login(app, client, "marketer", "nope")
    assert login(app, client, "staff").status_code == 302


def test_only_failed_logins_count_towards_the_throttle(app, db):
    client = app.test_client()
    for attempt in range(15):
        response = login(app, client, "staff")
        assert response.status_code == 302 and "/login" not in response.headers["Location"], attempt
        client.get("/logout/")
    for _ in range(10):
        login(app, client, "staff", "nope")
    assert login(app, client, "staff").status_code == 429


def jwt_login(client, username, password, forwarded_for=None):
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
    return client.post("/api/v1/security/login", json={"username": username, "password": password, "provider": "db"},
                       headers=headers).status_code


def test_without_trusted_proxies_a_forged_forwarded_for_changes_nothing(app, db):
    assert app.config["TRUSTED_PROXIES"] == 0  # the default: no proxy in front
    client = app.test_client()
    codes = [jwt_login(client, "staff", "nope", forwarded_for=f"198.51.100.{n}") for n in range(11)]
    assert codes[:10] == [401] * 10 and codes[10] == 429  # a client cannot pick its own address


def test_an_account_guessed_from_many_addresses_is_slowed_not_locked(app, db, monkeypatch):
    monkeypatch.setitem(app.config, "AUTH_ACCOUNT_CEILING", "6 per 15 minute")
    monkeypatch.setitem(app.config, "AUTH_ACCOUNT_SLOW_LIMIT", "2 per 15 minute")
    clients = {n: app.test_client() for n in range(5)}

    def attempt(n, password="nope"):
        return clients[n].post("/api/v1/security/login", json={"username": "staff", "password": password,
                                                                "provider": "db"},
                               environ_base={"REMOTE_ADDR": f"203.0.113.{n}"}).status_code

    assert [attempt(n) for n in (0, 0, 0, 1, 1, 1)] == [401] * 6  # six failures: the ceiling
    assert [attempt(2), attempt(2), attempt(2)] == [401, 401, 429]  # another address: two, not ten
    assert attempt(3, PASSWORD) == 200  # the owner, from an address of their own, still gets in
    assert attempt(4) == 401


@pytest.fixture
def gunicorn_behind_a_proxy(app, db, tmp_path):
    """The app under a real gunicorn, told that one reverse proxy stands in front of it."""
    import httpx

    from tests.test_faults import free_port, wait_until

    port = free_port()
    env = dict(os.environ, DATABASE_URL=app.config["DATABASE_URL"], REDIS_URL=app.config["REDIS_URL"],
               INSTANCE_DIR=str(app.config["INSTANCE_DIR"]), SECRET_KEY=app.config["SECRET_KEY"],
               TRUSTED_PROXIES="1", AUTH_ACCOUNT_CEILING="25 per 15 minute", AUTH_ACCOUNT_SLOW_LIMIT="3 per 15 minute")
    log = open(tmp_path / "gunicorn.log", "w")
    server = subprocess.Popen([sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", "2",
                               "run:create_wsgi()"], env=env, stdout=log, stderr=subprocess.STDOUT,
                              cwd=str(app.config["BASE_DIR"]))
    base = f"http://127.0.0.1:{port}"

    def answers():
        try:
            return httpx.get(base + "/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return server.poll() is not None

    try:
        wait_until(answers, 60, "gunicorn did not start")
        assert server.poll() is None, (tmp_path / "gunicorn.log").read_text()[-3000:]
        yield base
    finally:
        server.terminate()
        server.wait(timeout=20)
        log.close()


@pytest.mark.slow
def test_behind_a_proxy_the_throttle_keys_on_the_real_client(gunicorn_behind_a_proxy):
    import httpx

    base = gunicorn_behind_a_proxy

    def attempt(client_address, password="wrong-password", forged=None):
        """A request as the proxy passes it on: whatever the client sent, then the address it saw."""
        forwarded = f"{forged}, {client_address}" if forged else client_address
        return httpx.post(base + "/api/v1/security/login", json={
            "username": "admin", "password": password, "provider": "db"},
            headers={"X-Forwarded-For": forwarded}, timeout=15).status_code

    attacker = [attempt("203.0.113.66") for _ in range(11)]
    assert attacker[:10] == [401] * 10 and attacker[10] == 429
    assert attempt("203.0.113.66", forged="198.51.100.1") == 429  # a forged entry before the proxy's is ignored
    assert attempt("198.51.100.20", PASSWORD) == 200  # the real admin, from another address, gets in

    # Fifteen more failures from five more addresses: 25 for the account, its ceiling.
    assert [attempt(f"192.0.2.{n}") for n in range(5) for _ in range(3)] == [401] * 15
    assert [attempt("192.0.2.99") for _ in range(4)] == [401, 401, 401, 429]  # slowed: three, not ten
    assert attempt("198.51.100.21", PASSWORD) == 200  # never locked out


# --- CSRF -----------------------------------------------------------------------------------

def test_post_without_csrf_token_is_refused_and_changes_nothing(db, client_for, post_form):
    admin = client_for("admin")
    post_form(admin, "/contactview/add", {"first_name": "Kept", "phone": "+16175550111"})
    kept = db.session.scalar(select(Contact.id))
    before = contact_count(db)
    for url, data in [("/contactview/add", {"first_name": "NoToken", "phone": "+16175550177"}),
                      (f"/contactview/edit/{kept}", {"first_name": "Changed", "phone": "+16175550111"}),
                      (f"/contactview/delete/{kept}", {}),
                      ("/contactview/action_post", {"action": "muldelete", "rowid": kept})]:
        response = admin.post(url, data=data)
        assert response.status_code == 400, url
        assert "CSRF" in response.get_data(as_text=True)
    forged = admin.post("/contactview/add", data={"first_name": "Forged", "csrf_token": "forged"})
    assert forged.status_code == 400
    assert admin.get(f"/contactview/delete/{kept}").status_code in (302, 400, 405)  # no deletes by link
    assert contact_count(db) == before
    assert db.session.get(Contact, kept).first_name == "Kept"


def test_login_form_without_csrf_token_is_refused(app, db):
    response = app.test_client().post("/login/", data={"username": "admin", "password": PASSWORD})
    assert response.status_code == 400


def test_a_signed_in_browser_needs_a_csrf_token_for_the_api_too(app, db, client_for):
    from app.models import Message

    contact = Contact(first_name="Csrf", phone="+16175550188")
    db.session.add(contact)
    db.session.commit()
    admin = client_for("admin")
    body = {"contact_id": contact.id, "body": "Hello"}

    def texts():
        db.session.expire_all()
        return db.session.scalar(select(func.count(Message.id)))

    for headers in ({}, {"X-CSRFToken": "forged"}):
        refused = admin.post("/api/v1/conversation/send_text", json=body, headers=headers)
        assert refused.status_code == 400 and "CSRF" in refused.get_json()["message"]
    assert texts() == 0
    assert admin.post("/api/v1/conversation/send_text", json=body,
                      headers={"X-CSRFToken": csrf_token(app, admin)}).status_code == 202
    bearer = {"Authorization": "Bearer " + create_access_token(identity=str(user_id("admin")))}
    assert app.test_client().post("/api/v1/conversation/send_text", json=body, headers=bearer).status_code == 202
    assert texts() == 2


def test_no_api_route_changes_anything_for_a_session_cookie_without_a_csrf_token(app, db, client_for):
    admin = client_for("admin")
    routes = [(rule, method) for rule in app.url_map.iter_rules() if rule.rule.startswith("/api/")
              for method in sorted(rule.methods & {"POST", "PUT", "PATCH", "DELETE"})
              if rule.rule != "/api/v1/security/login"]
    assert len(routes) > 10
    for rule, method in routes:
        url = rule.rule
        for arg in rule.arguments:
            url = url.replace(f"<{arg}>", "1").replace(f"<int:{arg}>", "1")
        response = admin.open(url, method=method, json={"contact_id": 1, "body": "x"})
        assert response.status_code == 401 or (
            response.status_code == 400 and "CSRF" in response.get_data(as_text=True)), (method, url)


# --- cookies, headers, debug ------------------------------------------------------------------

def config_under(env):
    code = "import config; print(config.SESSION_COOKIE_SECURE, config.REMEMBER_COOKIE_SECURE, config.SESSION_COOKIE_HTTPONLY)"
    result = subprocess.run([sys.executable, "-c", code], env={**os.environ, **env}, capture_output=True, text=True,
                            cwd=os.path.dirname(os.path.dirname(__file__)))
    return result


def test_session_cookies_are_secure_outside_the_embedded_run(tmp_path):
    production = config_under({"CRM_ENV": "production", "SECRET_KEY": "x" * 32, "INSTANCE_DIR": str(tmp_path),
                               "ENCRYPTION_KEY": "A" * 43 + "="})
    embedded = config_under({"CRM_ENV": "embedded", "INSTANCE_DIR": str(tmp_path)})
    assert production.stdout.split() == ["True", "True", "True"]
    assert embedded.stdout.split() == ["False", "False", "True"]


def test_production_refuses_to_start_without_a_secret_key(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "SECRET_KEY"}
    result = config_under({**env, "CRM_ENV": "production", "INSTANCE_DIR": str(tmp_path), "SECRET_KEY": ""})
    assert result.returncode != 0 and "SECRET_KEY must be set" in result.stderr


def test_login_cookie_is_httponly_and_samesite(app, db):
    client = app.test_client()
    response = login(app, client, "staff")
    cookie = response.headers.get("Set-Cookie", "")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_security_headers_on_every_kind_of_response(app, db, client_for, monkeypatch):
    for response in (app.test_client().get("/login/"), app.test_client().get("/health"),
                     app.test_client().get("/no-such-page"), client_for("admin").get("/contactview/list/")):
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["X-Frame-Options"] == "DENY"
        assert response.headers["Referrer-Policy"] == "same-origin"
    monkeypatch.setitem(app.config, "PRODUCTION", True)
    assert "max-age" in app.test_client().get("/login/").headers["Strict-Transport-Security"]


SCRIPT_TAG = re.compile(r"<script\b([^>]*)>", re.I)
INLINE_HANDLER = re.compile(r"<[a-z][^>]*\son[a-z]+\s*=", re.I)


def test_every_page_runs_scripts_only_from_the_site_or_with_its_nonce(app, db, client_for):
    contact = Contact(first_name="Csp", phone="+16175550189")
    db.session.add(contact)
    db.session.commit()
    admin = client_for("admin")
    urls = [rule.rule for rule in app.url_map.iter_rules() if "GET" in rule.methods and not rule.arguments
            and not rule.rule.startswith(("/api/", "/static", "/appbuilder", "/logout"))]
    urls += [f"/contactview/show/{contact.id}", f"/contactview/edit/{contact.id}", "/inbox/"]
    pages = 0
    for url in urls:
        response = admin.get(url)
        if response.status_code != 200 or response.mimetype != "text/html":
            continue
        pages += 1
        policy = response.headers["Content-Security-Policy"]
        nonce = re.search(r"'nonce-([^']+)'", policy).group(1)
        assert "'unsafe-inline'" not in policy.split("script-src")[1].split(";")[0], url
        html = response.get_data(as_text=True)
        for attributes in SCRIPT_TAG.findall(html):
            source = re.search(r'src="([^"]+)"', attributes)
            assert (source and source.group(1).startswith("/")) or f'nonce="{nonce}"' in attributes, (url, attributes)
        assert not INLINE_HANDLER.search(html), (url, INLINE_HANDLER.search(html).group(0))
        assert "javascript:" not in html, url
    assert pages > 20
    assert len({admin.get("/inbox/").headers["Content-Security-Policy"] for _ in range(2)}) == 2  # one nonce each


def test_policy_headers_on_every_response(app, db):
    for response in (app.test_client().get("/login/"), app.test_client().get("/health"),
                     app.test_client().get("/no-such-page")):
        assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
        assert "object-src 'none'" in response.headers["Content-Security-Policy"]
        assert response.headers["Permissions-Policy"].startswith("camera=()")
        assert response.headers["Referrer-Policy"] == "same-origin"


def start_for_production(tmp_path, app, **settings):
    """Load the WSGI app the way gunicorn does, with CRM_ENV=production and these settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENPHONE_", "FLASK_"))}
    env.update(CRM_ENV="production", INSTANCE_DIR=str(tmp_path), DATABASE_URL=f"sqlite:///{tmp_path / 'prod.db'}",
               REDIS_URL=app.config["REDIS_URL"], SECRET_KEY="k" * 64, ENCRYPTION_KEY=app.config["ENCRYPTION_KEY"])
    env.update(settings)
    return subprocess.run([sys.executable, "-c", "import run; run.create_wsgi(); print('started')"], env=env,
                          capture_output=True, text=True, cwd=str(app.config["BASE_DIR"]), timeout=120)


@pytest.mark.slow
@pytest.mark.parametrize("settings, named", [
    ({"SECRET_KEY": "changeme"}, "SECRET_KEY"),
    ({"SECRET_KEY": "short-but-not-empty"}, "SECRET_KEY"),
    ({"OPENPHONE_API_KEY": "live-key"}, "OPENPHONE_WEBHOOK_SECRET"),
    ({"FLASK_DEBUG": "1"}, "FLASK_DEBUG"),
])
def test_production_refuses_unsafe_settings_and_names_them(app, tmp_path, settings, named):
    result = start_for_production(tmp_path, app, **settings)
    assert result.returncode != 0 and "started" not in result.stdout
    assert "Refusing to start with CRM_ENV=production" in result.stderr and named in result.stderr


@pytest.mark.slow
def test_production_starts_with_safe_settings(app, tmp_path):
    result = start_for_production(tmp_path, app, OPENPHONE_API_KEY="live-key", OPENPHONE_WEBHOOK_SECRET="whsec_x")
    assert result.returncode == 0 and "started" in result.stdout, result.stderr[-2000:]


@pytest.mark.parametrize("url", ["/console", "/debug", "/_debug_toolbar/", "/debug/pprof", "/admin/console",
                                 "/static/../config.py", "/.env", "/instance/secret_key"])
def test_no_debug_endpoints_or_files(app, db, url):
    assert not app.debug
    assert app.test_client().get(url).status_code == 404


# --- redirects --------------------------------------------------------------------------------

@pytest.mark.parametrize("target", ["//evil.com", "https://evil.com", "/\\evil.com", "\\/evil.com",
                                    "/\t/evil.com", "http:evil.com", "///evil.com", "javascript:alert(1)",
                                    " //evil.com", "/%2F/evil.com"])
def test_login_next_cannot_leave_the_site(app, db, target):
    client = app.test_client()
    response = client.post("/login/", query_string={"next": target},
                           data={"username": "staff", "password": PASSWORD, "csrf_token": csrf_token(app, client)})
    assert response.status_code == 302
    location = response.headers["Location"]
    assert location.startswith("/") and not location.startswith(("//", "/\\")), location
    assert "evil.com" not in location.split("?")[0].lstrip("/").split("/")[0]


def test_login_next_keeps_an_onsite_page(app, db):
    client = app.test_client()
    response = client.post("/login/?next=/contactview/list/", data={
        "username": "staff", "password": PASSWORD, "csrf_token": csrf_token(app, client)})
    assert response.headers["Location"] == "/contactview/list/"


# --- unknown routes, bad sessions and tokens --------------------------------------------------

@pytest.mark.parametrize("url", ["/nope", "/contactview/nope", "/contactview/show/", "/api/v1/nope",
                                 "/api/v1/contact/abc", "/contactview/show/1.5", "/contactview/show/%00",
                                 "/" + "x" * 5000])
def test_unknown_routes_are_404_never_500(client_for, url):
    assert client_for("admin").get(url).status_code in (400, 404, 405)


def session_cookie(app, data, secret=None, age=0):
    """A Flask session cookie as the browser would hold it, optionally forged or old."""
    class Signer(TimestampSigner):
        def get_timestamp(self):
            return int(time.time() - age)

    serializer = URLSafeTimedSerializer(secret or app.secret_key, salt="cookie-session",
                                        serializer=TaggedJSONSerializer(), signer=Signer,
                                        signer_kwargs={"key_derivation": "hmac", "digest_method": hashlib.sha1})
    return serializer.dumps(data)


@pytest.mark.parametrize("forgery", ["wrong key", "expired", "garbage", "truncated"])
def test_forged_or_expired_sessions_are_anonymous(app, db, forgery):
    admin_id = str(user_id("admin"))
    payload = {"_user_id": admin_id, "_fresh": True, "_id": "x"}
    value = {
        "wrong key": session_cookie(app, payload, secret="not-the-secret"),
        "expired": session_cookie(app, payload, age=app.permanent_session_lifetime.total_seconds() + 60),
        "garbage": "\x00" + "%%%" * 100,
        "truncated": session_cookie(app, payload)[:-5],
    }[forgery]
    client = app.test_client()
    client.set_cookie(app.config.get("SESSION_COOKIE_NAME", "session"), value)
    for url in ("/contactview/list/", "/users/list/", "/auditlogview/list/"):
        response = client.get(url)
        assert response.status_code == 302 and "/login/" in response.headers["Location"], url
    assert client.get("/login/").status_code == 200


def test_a_valid_session_cookie_is_accepted_only_with_the_users_current_stamp(app, db):
    from app.sessions import current_stamp

    admin = user_id("admin")
    valid = app.test_client()
    valid.set_cookie("session", session_cookie(app, {"_user_id": str(admin), "_fresh": True,
                                                     "_stamp": current_stamp(admin)}))
    assert valid.get("/contactview/list/").status_code == 200
    unstamped = app.test_client()
    unstamped.set_cookie("session", session_cookie(app, {"_user_id": str(admin), "_fresh": True}))
    assert unstamped.get("/contactview/list/").status_code == 302


def test_expired_or_forged_jwt_is_refused(app, db):
    client = app.test_client()
    with app.app_context():
        from datetime import timedelta

        expired = create_access_token(identity=str(user_id("admin")), expires_delta=timedelta(seconds=-10))
    good = create_access_token(identity=str(user_id("admin")))
    for token in (expired, good[:-4] + "abcd", "not.a.jwt", ""):
        response = client.get("/api/v1/contact/", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code in (401, 422), token
    assert client.get("/api/v1/contact/", headers={"Authorization": f"Bearer {good}"}).status_code == 200


# --- hostile strings --------------------------------------------------------------------------

@pytest.mark.parametrize("kind", HOSTILE)
def test_hostile_strings_in_the_contact_form_are_refused_or_stored_and_escaped(db, client_for, post_form, kind):
    admin = client_for("admin")
    value = HOSTILE[kind]
    before = contact_count(db)
    response = post_form(admin, "/contactview/add", {"first_name": value, "last_name": value, "notes": value,
                                                     "mail_city": value, "phone": "+16175550155"})
    assert response.status_code in (200, 302, 400), response.status_code
    contact = db.session.scalar(select(Contact).where(Contact.phone == "+16175550155"))
    if contact is None:
        assert contact_count(db) == before
        return
    assert "\x00" not in (contact.notes or "")
    for page in (f"/contactview/show/{contact.id}", "/contactview/list/", f"/contactview/edit/{contact.id}"):
        html = admin.get(page).get_data(as_text=True)
        assert "<script>alert" not in html, page
    assert contact_count(db) == before + 1


@pytest.mark.parametrize("kind", HOSTILE)
def test_hostile_strings_through_the_api_are_refused_or_stored(app, db, kind):
    headers = {"Authorization": "Bearer " + create_access_token(identity=str(user_id("admin")), fresh=True)}
    client = app.test_client()
    before = contact_count(db)
    response = client.post("/api/v1/contact/", json={"first_name": HOSTILE[kind], "notes": HOSTILE[kind],
                                                     "phone": "+16175550156"}, headers=headers)
    assert response.status_code in (201, 400, 422), response.status_code
    assert contact_count(db) == before + (1 if response.status_code == 201 else 0)
    search = client.get("/api/v1/contact/", query_string={
        "q": "(filters:!((col:first_name,opr:ct,value:'x')))"}, headers=headers)
    assert search.status_code == 200


@pytest.mark.parametrize("kind", HOSTILE)
def test_hostile_strings_in_search_filters_are_harmless(db, client_for, kind):
    admin = client_for("admin")
    for column in ("first_name", "phone", "email"):
        response = admin.get("/contactview/list/", query_string={f"_flt_2_{column}": HOSTILE[kind]})
        assert response.status_code in (200, 400), (column, response.status_code)
        assert "<script>alert" not in response.get_data(as_text=True)
