"""Sessions that end: every browser session and JWT carries its user's security stamp, and a
session or token whose stamp is no longer the user's is refused. Logout, a password change,
deactivation and a role change give the user a new stamp, whichever door made the change
(a screen, the CLI, a job), because the stamp is changed when the user row is flushed."""
import secrets

from flask import has_request_context, request, session
from flask_appbuilder.security.sqla.models import User
from flask_login import logout_user, user_logged_in
from sqlalchemy import event, inspect, select
from sqlalchemy.orm import Session

from app import bulk
from app.extensions import db
from app.models import UserSecurity, utcnow

SESSION_KEY = "_stamp"
CLAIM = "stamp"
# A change to any of these ends the user's sessions and tokens.
WATCHED = ("password", "active", "roles", "groups")


def current_stamp(user_id):
    """The user's stamp: "" until the first change. Read on a connection of its own, so a
    request's open transaction (a snapshot, on SQLite) never hides a logout made elsewhere."""
    with db.engine.connect() as connection:
        return connection.scalar(select(UserSecurity.stamp).where(UserSecurity.user_id == user_id)) or ""


def end_sessions(user_id):
    """Give the user a new stamp now, in its own transaction (logout)."""
    with db.engine.begin() as connection:
        return _new_stamp(connection, user_id)


def _new_stamp(connection, user_id):
    stamp, now = secrets.token_hex(16), utcnow()
    statement = bulk.insert(connection, UserSecurity.__table__).values(user_id=user_id, stamp=stamp, changed_at=now)
    connection.execute(statement.on_conflict_do_update(
        index_elements=[UserSecurity.__table__.c.user_id], set_={"stamp": stamp, "changed_at": now}))
    return stamp


def _changed(user):
    state = inspect(user)
    return any(state.attrs[name].history.has_changes() for name in WATCHED if name in state.attrs)


def _before_flush(db_session, flush_context, instances):
    for user in list(db_session.dirty):
        if isinstance(user, User) and inspect(user).persistent and _changed(user):
            stamp = _new_stamp(db_session.connection(), user.id)
            if has_request_context() and session_user_id() == user.id:
                request.stamp_changed = stamp  # the session that made the change stays signed in


def session_user_id():
    try:
        return int(session.get("_user_id"))
    except (TypeError, ValueError):
        return None


def _check_session():
    """Sign out a browser whose session carries a stamp its user no longer has."""
    user_id = session_user_id()
    if user_id is None:
        return
    if session.get(SESSION_KEY) != current_stamp(user_id):
        logout_user()
        session.clear()


def _keep_own_session(response):
    stamp = getattr(request, "stamp_changed", None)
    if stamp is not None and session_user_id() is not None:
        session[SESSION_KEY] = stamp
    return response


def _stamp_the_session(sender, user, **extra):
    session[SESSION_KEY] = current_stamp(user.id)


def install_jwt(jwt_manager):
    """JWTs carry the stamp of their user when issued; a token whose stamp is stale is revoked."""
    jwt_manager.additional_claims_loader(lambda identity: {CLAIM: current_stamp(int(identity))})

    @jwt_manager.token_in_blocklist_loader
    def _revoked(header, payload):
        try:
            return payload.get(CLAIM) != current_stamp(int(payload["sub"]))
        except (KeyError, TypeError, ValueError):
            return True


_listening = False


def install(app):
    global _listening
    if not _listening:
        event.listen(Session, "before_flush", _before_flush)
        _listening = True
    user_logged_in.connect(_stamp_the_session, app)
    app.before_request(_check_session)
    app.after_request(_keep_own_session)
