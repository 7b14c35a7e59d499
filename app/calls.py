"""Calls: one row per OpenPhone call, whichever door brings it (a webhook, the history import,
the nightly pull) and in whatever order. A later word about a call already stored fills in what
its row lacks (a voicemail, a recording, a summary) and never turns a finished call back into a
ringing one."""
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app.extensions import db
from app.history_models import Call, Media

# Statuses OpenPhone reports while a call is still going on: a final one always wins over them.
PROVISIONAL = ("logged", "queued", "initiated", "ringing", "in-progress")
FILLED_IN = ("contact_id", "phone", "phone_number_id", "answered_by", "recording_url", "voicemail_url",
             "voicemail_transcript", "summary", "transcript")


def call_by_provider_id(provider_id):
    return db.session.scalar(select(Call).filter_by(provider_id=str(provider_id)[:64]))


def store_call(values):
    """Insert the call or merge `values` into its row; returns (call, created). A voicemail gets a
    pending Media row for app/media.py to download. The caller commits."""
    call, created = call_by_provider_id(values["provider_id"]), False
    if call is None:
        try:
            with db.session.begin_nested():
                call = Call(**values)
                db.session.add(call)
            created = True
        except IntegrityError:  # another door stored it a moment ago
            call = call_by_provider_id(values["provider_id"])
    if not created:
        merge_call(call, values)
    if call.voicemail_url and db.session.scalar(select(Media.id).where(
            Media.call_id == call.id, Media.url == call.voicemail_url).limit(1)) is None:
        db.session.add(Media(call_id=call.id, contact_id=call.contact_id, url=call.voicemail_url,
                             content_type="audio/mpeg", status="pending"))
        db.session.flush()
    return call, created


def merge_call(call, values):
    """Fold another door's word about a stored call into its row."""
    status = values.get("status")
    if status and (status not in PROVISIONAL or call.status in PROVISIONAL):
        call.status = status
    call.duration = max(call.duration or 0, values.get("duration") or 0)
    for name in FILLED_IN:
        if values.get(name) and not getattr(call, name):
            setattr(call, name, values[name])
    return call
