"""What every request and response passes through: the client address behind trusted proxies,
CSRF on cookie-authenticated API calls, the security headers (Content-Security-Policy with a
per-response script nonce) and redirects that never leave the site."""
import re
import secrets

from flask import current_app, g, jsonify, request, session
from flask_wtf.csrf import CSRFError
from werkzeug.middleware.proxy_fix import ProxyFix

from app.security import csrf


def trust_proxies(app):
    """Behind TRUSTED_PROXIES reverse proxies, the client address and scheme are the ones the
    proxies saw (the last N X-Forwarded-For entries; anything a client puts before them is
    ignored). With 0 the headers are ignored: a client cannot pick its own address."""
    hops = int(app.config["TRUSTED_PROXIES"] or 0)
    if hops:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)


SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}


# A Location a browser could read as another host: "//x", "/\\x", "http://x", or one
# hiding control characters or whitespace (browsers drop tabs and newlines).
_OFFSITE = re.compile(r"^(?:[a-zA-Z][a-zA-Z0-9+.-]*:|[/\\\s]{2})|[\x00-\x20\x7f\\\\]")


def is_onsite(location):
    """True for a path on this site: "/contactview/list/?page=2", or a relative "."."""
    if location.startswith(request.host_url):
        location = "/" + location[len(request.host_url):]
    return not _OFFSITE.search(location)


SAFE_METHODS = ("GET", "HEAD", "OPTIONS", "TRACE")
# Answers with tokens in its body and reads no cookie: nothing to forge.
CSRF_FREE_API = ("/api/v1/security/login",)


def require_csrf_on_cookie_api(app):
    """FAB exempts its REST API from CSRF because it expects bearer tokens, but an API method
    that also accepts the browser session (protect(allow_browser_login=True)) would then take
    a forged cross-site POST. A state change under /api/ that carries a signed-in session and
    no bearer token needs the CSRF token too (X-CSRFToken header, as the pages render it)."""
    @app.before_request
    def _csrf_on_cookie_api():
        if request.method in SAFE_METHODS or not request.path.startswith("/api/") or request.path in CSRF_FREE_API:
            return None
        if request.headers.get("Authorization", "").lower().startswith("bearer ") or "_user_id" not in session:
            return None
        try:
            csrf.protect()
        except CSRFError as exc:
            return jsonify(message=f"{exc.description} A signed-in browser sends the page's CSRF token in the "
                                   "X-CSRFToken header; scripts use a bearer token."), 400
        return None


# Scripts run only from this site or inline with the page's nonce (FAB's templates carry
# baselib.get_nonce(), which calls csp_nonce()); no inline event handlers, plugins, framing,
# or forms posting elsewhere. Inline style attributes stay allowed: they cannot run code.
CONTENT_SECURITY_POLICY = ("default-src 'self'; script-src 'self' 'nonce-{nonce}'; style-src 'self' 'unsafe-inline'; "
                           "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; object-src 'none'; "
                           "base-uri 'self'; form-action 'self'; frame-ancestors 'none'")


def csp_nonce():
    """This response's script nonce (one per request)."""
    if not hasattr(request, "csp_nonce"):
        request.csp_nonce = secrets.token_urlsafe(16)
    return request.csp_nonce


def allow_offsite_redirect(location):
    """Let this response redirect to `location` off the site (an OAuth provider's consent page)."""
    g.offsite_redirect = location
    return location


def install_headers(app):
    app.jinja_env.globals["csp_nonce"] = csp_nonce

    @app.after_request
    def _headers(response):
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY.format(nonce=csp_nonce()))
        if app.config["PRODUCTION"]:
            response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
        location = response.headers.get("Location")
        if location and not is_onsite(location) and g.get("offsite_redirect") != location:
            current_app.logger.warning("refused an off-site redirect to %r", location[:200])
            response.headers["Location"] = "/"
        return response
