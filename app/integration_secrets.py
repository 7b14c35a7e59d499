"""Integration credentials at rest (the OpenPhone API key and webhook secret, QuickBooks tokens):
Fernet-encrypted with ENCRYPTION_KEY, never shown back, and audited when changed without the value.

ENCRYPTION_KEY is a comma-separated list of Fernet keys (ENCRYPTION_KEY_OLD is appended to it): the
first encrypts, every one decrypts, so a key is rotated by putting the new one first, running
`crm rotate-secrets`, then dropping the old one."""
import logging

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from flask import current_app
from sqlalchemy import select

from app import audit
from app.extensions import db
from app.models import IntegrationSecret, utcnow

log = logging.getLogger(__name__)
# What the Settings -> Integrations screen can set: stored name -> label.
KNOWN = {
    "openphone_api_key": "OpenPhone API key",
    "openphone_webhook_secret": "OpenPhone webhook signing secret",
}
# A secret that is useless, or harmful, without another: stored name -> (the other's stored name,
# its environment setting). A live OpenPhone key without a signing secret would switch texting on
# while every reply, STOP included, is refused at the webhook.
REQUIRES = {"openphone_api_key": ("openphone_webhook_secret", "OPENPHONE_WEBHOOK_SECRET")}
_fernets = {}


class SecretRefused(ValueError):
    """Storing (or removing) this secret would leave an integration half set up."""


class SecretUnreadable(Exception):
    """A stored secret cannot be decrypted with any key in ENCRYPTION_KEY / ENCRYPTION_KEY_OLD."""


def encryption_keys(config=None):
    config = config if config is not None else current_app.config
    raw = ",".join(v for v in (config["ENCRYPTION_KEY"], config["ENCRYPTION_KEY_OLD"]) if v)
    return [key.strip() for key in raw.split(",") if key.strip()]


def fernet(config=None):
    """The MultiFernet for the configured keys (first key encrypts)."""
    keys = tuple(encryption_keys(config))
    if keys not in _fernets:
        if not keys:
            raise RuntimeError("ENCRYPTION_KEY is empty: set it to a Fernet key (`crm generate-key` prints one)")
        try:
            _fernets[keys] = MultiFernet([Fernet(key.encode()) for key in keys])
        except ValueError as exc:
            raise RuntimeError(f"ENCRYPTION_KEY holds a key that is not a Fernet key ({exc}); "
                               "`crm generate-key` prints a valid one") from exc
    return _fernets[keys]


def generate_key():
    return Fernet.generate_key().decode()


def get_secret(name):
    """The stored value, or None when nothing is stored. Raises SecretUnreadable for a wrong key."""
    ciphertext = db.session.scalar(select(IntegrationSecret.ciphertext).where(IntegrationSecret.name == name))
    if ciphertext is None:
        return None
    try:
        return fernet().decrypt(ciphertext.encode()).decode()
    except InvalidToken as exc:
        raise SecretUnreadable(f"the stored {KNOWN.get(name, name)} cannot be decrypted with ENCRYPTION_KEY; "
                               "put the key it was stored with in ENCRYPTION_KEY_OLD, or set it again") from exc


def is_stored(name):
    return db.session.scalar(select(IntegrationSecret.name).where(IntegrationSecret.name == name)) is not None


def describe(name):
    """What a screen may show about a secret: 'not set', 'set, ends in ...abcd', or why it is unreadable."""
    try:
        value = get_secret(name)
    except SecretUnreadable:
        return "set, but it cannot be decrypted with the current ENCRYPTION_KEY: set it again"
    if value is None:
        return "not set"
    return f"set, ends in ...{value[-4:]}" if len(value) >= 12 else "set"


def set_secret(name, value, user_id=None, reason=None):
    """Store (or with an empty value, remove) a secret, audited without its value (`reason`: why,
    in the audit row's words). The caller commits."""
    value = (value or "").strip()
    check_requirements(name, value)
    row = db.session.get(IntegrationSecret, name)
    if not value:
        if row is not None:
            db.session.delete(row)
            audit.record("secret_cleared", "integration_secrets", name,
                         detail=reason or f"{KNOWN.get(name, name)} removed")
        return
    ciphertext = fernet().encrypt(value.encode()).decode()
    if row is None:
        db.session.add(IntegrationSecret(name=name, ciphertext=ciphertext, updated_by_id=user_id))
    else:
        row.ciphertext, row.updated_by_id, row.updated_at = ciphertext, user_id, utcnow()
    audit.record("secret_changed", "integration_secrets", name, detail=reason or f"{KNOWN.get(name, name)} set")


def check_requirements(name, value):
    """Raise SecretRefused when storing `value` under `name` (empty: removing it) would leave a
    secret without the one it needs (REQUIRES), stored or in the environment."""
    def available(needed, setting):
        return bool(current_app.config.get(setting)) or is_stored(needed)

    if value and name in REQUIRES and not available(*REQUIRES[name]):
        needed = REQUIRES[name][0]
        raise SecretRefused(f"Set the {KNOWN.get(needed, needed)} first: without it every webhook "
                            f"(replies and STOP requests included) would be refused once the "
                            f"{KNOWN.get(name, name)} switches texting on.")
    for other, (needed, setting) in REQUIRES.items():
        if not value and name == needed and is_stored(other) and not current_app.config.get(setting):
            raise SecretRefused(f"Remove the {KNOWN.get(other, other)} first: it needs the "
                                f"{KNOWN.get(name, name)}.")


def rotate_secrets():
    """Re-encrypt every stored secret with the first ENCRYPTION_KEY. Returns how many; the caller commits."""
    rows = db.session.scalars(select(IntegrationSecret)).all()
    for row in rows:
        row.ciphertext = fernet().rotate(row.ciphertext.encode()).decode()
    return len(rows)
