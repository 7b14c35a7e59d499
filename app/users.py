"""Roles and users: what `crm init` and `crm create-admin` make sure exist."""
import secrets

from flask import current_app

from app.extensions import appbuilder, db

ROLE_NAMES = ("Admin", "Marketer", "Staff")


def sync_roles():
    """Write the roles and every view's permissions to the database (Admin gets them all).

    Marketer and Staff are FAB builtin roles: their permissions are read from app/security.py."""
    sm = appbuilder.sm
    for name in (*ROLE_NAMES, current_app.config["AUTH_ROLE_PUBLIC"]):
        sm.add_role(name)
    appbuilder.add_permissions(update_perms=True)
    db.session.commit()


def ensure_user(username, password, role="Admin", email=None, first_name=None, last_name=None):
    """Create the user if missing. Returns (user, created)."""
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
