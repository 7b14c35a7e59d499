"""MMS photos and voicemail recordings downloaded from OpenPhone into MEDIA_FOLDER: checked by
content type (photos are images, voicemails audio) and size (MEDIA_MAX_MB) before they are kept,
and served only to users who may see the contact (app/security.py)."""
import logging
import os
from pathlib import Path

import httpx
from flask import current_app
from sqlalchemy import select

from app.extensions import db
from app.history_models import Media
from app.security import visible_contact

log = logging.getLogger(__name__)
EXTENSIONS = {"image/jpeg": ".jpg", "image/png": ".png", "image/gif": ".gif", "image/webp": ".webp",
              "image/heic": ".heic", "audio/mpeg": ".mp3", "audio/mp4": ".m4a", "audio/wav": ".wav",
              "audio/x-wav": ".wav", "audio/ogg": ".ogg"}


class MediaRefused(Exception):
    """The file is not what it should be (type) or too large; it is not kept."""


def folder():
    return Path(current_app.config["MEDIA_FOLDER"])


def _expected(media):
    return "audio/" if media.call_id else "image/"


def download(media):
    """Fetch one Media row's file; sets status stored / rejected / failed with the reason. The
    caller commits."""
    limit = int(current_app.config["MEDIA_MAX_MB"] * 1024 * 1024)
    try:
        with httpx.stream("GET", media.url, timeout=30, follow_redirects=True) as response:
            if response.status_code != 200:
                raise httpx.HTTPStatusError(f"HTTP {response.status_code}", request=response.request,
                                            response=response)
            kind = response.headers.get("content-type", "").split(";")[0].strip().lower()
            if not kind.startswith(_expected(media)) or kind not in EXTENSIONS:
                raise MediaRefused(f"{kind or 'no content type'} is not an accepted "
                                   f"{'audio' if media.call_id else 'image'} type")
            declared = int(response.headers.get("content-length") or 0)
            if declared > limit:
                raise MediaRefused(f"{declared / 1048576:.1f} MB is over MEDIA_MAX_MB "
                                   f"({current_app.config['MEDIA_MAX_MB']} MB)")
            relative = Path(str(media.contact_id or "none")) / f"{media.id}{EXTENSIONS[kind]}"
            target = folder() / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            size = 0
            partial = target.with_suffix(target.suffix + ".part")
            with open(partial, "wb") as out:
                for chunk in response.iter_bytes(65536):
                    size += len(chunk)
                    if size > limit:
                        raise MediaRefused(f"over MEDIA_MAX_MB ({current_app.config['MEDIA_MAX_MB']} MB)")
                    out.write(chunk)
            os.replace(partial, target)
    except MediaRefused as exc:
        _cleanup(media)
        media.status, media.error = "rejected", str(exc)
        return media
    except (httpx.HTTPError, OSError) as exc:
        _cleanup(media)
        media.status, media.error = "failed", f"{type(exc).__name__}: {exc}"[:500]
        return media
    media.status, media.error, media.content_type, media.size, media.path = "stored", None, kind, size, str(relative)
    return media


def _cleanup(media):
    for found in folder().glob(f"{media.contact_id or 'none'}/{media.id}.*"):
        found.unlink(missing_ok=True)


def download_pending(contact_id=None, limit=200):
    """Download the pending media (of one contact, or all); returns the rows handled."""
    query = select(Media).where(Media.status == "pending").order_by(Media.id).limit(limit)
    if contact_id is not None:
        query = query.where(Media.contact_id == contact_id)
    rows = db.session.scalars(query).all()
    for media in rows:
        download(media)
    return rows


def media_for(message_ids=(), call_ids=()):
    """{("message", id) or ("call", id): [Media]} for a thread."""
    found = {}
    if message_ids:
        for m in db.session.scalars(select(Media).where(Media.message_id.in_(list(message_ids)))):
            found.setdefault(("message", m.message_id), []).append(m)
    if call_ids:
        for m in db.session.scalars(select(Media).where(Media.call_id.in_(list(call_ids)))):
            found.setdefault(("call", m.call_id), []).append(m)
    return found


def stored_path(media):
    """The file of a stored media row (None when it is not stored)."""
    if media.status != "stored" or not media.path:
        return None
    path = (folder() / media.path).resolve()
    return path if path.is_file() and folder().resolve() in path.parents else None


def visible_media(media_id):
    """A stored media row and its file, for a user who may see its contact; None otherwise
    (a missing row, a file not stored, or another user's contact: all answer 404 alike)."""
    media = db.session.get(Media, media_id)
    if media is None or media.contact_id is None:
        return None
    visible_contact(media.contact_id)  # aborts 404 for a contact this user may not see
    path = stored_path(media)
    return (media, path) if path is not None else None
