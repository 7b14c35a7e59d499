"""Roles, users and the password policy: what `crm init` and `crm create-user` make sure exist."""
import re
import secrets
from functools import cache
from pathlib import Path

from flask import current_app

from app.extensions import appbuilder, db

ROLE_NAMES = ("Admin", "Marketer", "Staff")
MIN_PASSWORD_LENGTH = 12
_EDGES = re.compile(r"^[^a-z]+|[^a-z]+$")  # digits and symbols around a word: "Password2024!"


class WeakPassword(ValueError):
    """A password the policy refuses; the message says why."""


@cache
def common_passwords():
    path = Path(__file__).with_name("common_passwords.txt")
    return frozenset(line for line in path.read_text().split("\n") if line and not line.startswith("#"))


def password_problem(password, username=""):
    """Why the password is refused (too short, common, the user name), or None when it passes.
    Every way a password is set checks it: the screens, `crm create-user`, `crm init`."""
    password = password or ""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"Use at least {MIN_PASSWORD_LENGTH} characters (this one has {len(password)})."
    lowered = password.lower()
    word = _EDGES.sub("", lowered)
    name = (username or "").strip().lower()
    if name and len(re.sub(r"[^a-z]", "", lowered.replace(name, ""))) < 4:
        return "The password may not be the user name (with digits or symbols around it); choose another."
    if lowered in common_passwords() or word in common_passwords():
        return "This is one of the most common passwords (digits and symbols around it do not help); choose another."
    return None


def check_password(password, username=""):
    problem = password_problem(password, username)
    if problem:
        raise WeakPassword(problem)


def sync_roles():
    """Write the roles and every view's permissions to the database (Admin gets them all).

    Marketer and Staff are FAB builtin roles: their permissions are read from app/security.py."""
    sm = appbuilder.sm
    for name in (*ROLE_NAMES, current_app.config["AUTH_ROLE_PUBLIC"]):
        sm.add_role(name)
    appbuilder.add_permissions(update_perms=True)
    db.session.commit()


def ensure_user(username, password, role="Admin", email=None, first_name=None, last_name=None):
    """Create the user if missing. Returns (user, created); WeakPassword (from the security
    manager's add_user) if the policy refuses the password."""
    sm = appbuilder.sm
    user = sm.find_user(username=username)
    if user:
        return user, False
    user = sm.add_user(username, first_name or username, last_name or role, email or f"{username}@example.com",
                       sm.find_role(role), password)
    if not user:
        raise RuntimeError(f"could not create user {username!r}")
    return user, True


def ensure_admin():
    """Create the admin from ADMIN_* settings; a generated password is returned once, when created."""
    cfg = current_app.config
    password = cfg.get("ADMIN_PASSWORD") or secrets.token_urlsafe(12)
    user, created = ensure_user(cfg["ADMIN_USERNAME"], password, "Admin", email=cfg.get("ADMIN_EMAIL"))
    generated = created and not cfg.get("ADMIN_PASSWORD")
    return user, created, password if generated else None
