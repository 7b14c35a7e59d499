"""MMS photos and voicemail recordings downloaded from OpenPhone: checked by content type (photos
are images, voicemails audio) and size (MEDIA_MAX_MB) before they are kept, stored in one place
(MEDIA_FOLDER, or any S3-compatible bucket when MEDIA_S3_URL is set), and served only to users
who may see the contact (app/security.py), streamed through the app on both backends."""
import functools
import logging
import os
import tempfile
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import boto3
import httpx
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from flask import current_app
from sqlalchemy import select

from app.extensions import db
from app.history_models import Media
from app.security import visible_contact

log = logging.getLogger(__name__)
EXTENSIONS = {"image/jpeg": ".jpg", "image/png": ".png", "image/gif": ".gif", "image/webp": ".webp",
              "image/heic": ".heic", "audio/mpeg": ".mp3", "audio/mp4": ".m4a", "audio/wav": ".wav",
              "audio/x-wav": ".wav", "audio/ogg": ".ogg"}
CHUNK = 65536


class MediaRefused(Exception):
    """The file is not what it should be (type) or too large; it is not kept."""


class StorageError(Exception):
    """The storage could not be written or read (a full disk, a bucket that refuses)."""


# --- where files are kept ---------------------------------------------------------------------

class FolderStorage:
    """Files under MEDIA_FOLDER (the embedded default); every worker must see the folder."""

    def __init__(self, folder):
        self.folder = Path(folder)

    def _path(self, key):
        path = (self.folder / key).resolve()
        if self.folder.resolve() not in path.parents:
            raise StorageError(f"{key!r} is outside MEDIA_FOLDER")
        return path

    def put(self, key, fileobj, content_type):
        target = self._path(key)
        partial = target.with_suffix(target.suffix + ".part")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            with open(partial, "wb") as out:
                for chunk in iter(lambda: fileobj.read(CHUNK), b""):
                    out.write(chunk)
            os.replace(partial, target)
        except OSError as exc:
            partial.unlink(missing_ok=True)
            raise StorageError(f"{type(exc).__name__}: {exc}") from exc

    def exists(self, key):
        try:
            return self._path(key).is_file()
        except StorageError:
            return False

    def delete(self, key):
        try:
            self._path(key).unlink(missing_ok=True)
        except OSError as exc:
            raise StorageError(f"{type(exc).__name__}: {exc}") from exc

    def get(self, key):
        """(chunks, size) of a stored file."""
        path = self._path(key)
        handle = open(path, "rb")  # noqa: SIM115 - closed by the generator once streamed

        def chunks():
            with handle:
                yield from iter(lambda: handle.read(CHUNK), b"")
        return chunks(), path.stat().st_size


class S3Storage:
    """Objects in an S3-compatible bucket (AWS, MinIO, Backblaze, ...), written whole with PUT."""

    def __init__(self, url):
        parts = urlsplit(url)
        if parts.scheme != "s3" or not parts.hostname or not parts.username or not parts.password:
            raise StorageError("MEDIA_S3_URL must look like s3://ACCESS:SECRET@HOST[:PORT]/BUCKET[/PREFIX]")
        bucket, _, prefix = parts.path.lstrip("/").partition("/")
        if not bucket:
            raise StorageError("MEDIA_S3_URL names no bucket")
        query = parse_qs(parts.query)
        scheme = "http" if query.get("tls", ["1"])[0] == "0" else "https"
        self.bucket, self.prefix = bucket, prefix.strip("/")
        self.client = boto3.session.Session().client(
            "s3", endpoint_url=f"{scheme}://{parts.hostname}" + (f":{parts.port}" if parts.port else ""),
            aws_access_key_id=unquote(parts.username), aws_secret_access_key=unquote(parts.password),
            region_name=query.get("region", ["us-east-1"])[0],
            config=Config(signature_version="s3v4", s3={"addressing_style": "path"}, connect_timeout=10,
                          read_timeout=30, retries={"max_attempts": 3, "mode": "standard"}))

    def _key(self, key):
        return f"{self.prefix}/{key}" if self.prefix else key

    def put(self, key, fileobj, content_type):
        try:
            self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=fileobj, ContentType=content_type)
        except (BotoCoreError, ClientError) as exc:
            raise StorageError(f"S3 refused {key}: {exc}") from exc

    def exists(self, key):
        try:
            self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise StorageError(f"S3 refused {key}: {exc}") from exc
        except BotoCoreError as exc:
            raise StorageError(f"S3 unreachable for {key}: {exc}") from exc
        return True

    def delete(self, key):
        try:
            self.client.delete_object(Bucket=self.bucket, Key=self._key(key))
        except (BotoCoreError, ClientError) as exc:
            raise StorageError(f"S3 refused to delete {key}: {exc}") from exc

    def get(self, key):
        """(chunks, size) of a stored object, streamed from the bucket."""
        try:
            found = self.client.get_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError as exc:
            raise StorageError(f"S3 refused {key}: {exc}") from exc
        except BotoCoreError as exc:
            raise StorageError(f"S3 unreachable for {key}: {exc}") from exc
        body = found["Body"]

        def chunks():
            try:
                yield from body.iter_chunks(CHUNK)
            finally:
                body.close()
        return chunks(), found["ContentLength"]


@functools.cache
def _storage(s3_url, folder):
    return S3Storage(s3_url) if s3_url else FolderStorage(folder)


def storage():
    """The one place media are kept, chosen by configuration: MEDIA_S3_URL, else MEDIA_FOLDER."""
    return _storage(current_app.config["MEDIA_S3_URL"], current_app.config["MEDIA_FOLDER"])


# --- downloading from OpenPhone ---------------------------------------------------------------

def _expected(media):
    return "audio/" if media.call_id else "image/"


def _fetch(media, buffer):
    """Stream the file into `buffer`, refusing a wrong type or a size over MEDIA_MAX_MB; returns
    (content type, size)."""
    limit = int(current_app.config["MEDIA_MAX_MB"] * 1024 * 1024)
    over = f"over MEDIA_MAX_MB ({current_app.config['MEDIA_MAX_MB']} MB)"
    with httpx.stream("GET", media.url, timeout=30, follow_redirects=True) as response:
        if response.status_code != 200:
            raise httpx.HTTPStatusError(f"HTTP {response.status_code}", request=response.request, response=response)
        kind = response.headers.get("content-type", "").split(";")[0].strip().lower()
        if not kind.startswith(_expected(media)) or kind not in EXTENSIONS:
            raise MediaRefused(f"{kind or 'no content type'} is not an accepted "
                               f"{'audio' if media.call_id else 'image'} type")
        declared = int(response.headers.get("content-length") or 0)
        if declared > limit:
            raise MediaRefused(f"{declared / 1048576:.1f} MB is {over}")
        size = 0
        for chunk in response.iter_bytes(CHUNK):
            size += len(chunk)
            if size > limit:
                raise MediaRefused(over)
            buffer.write(chunk)
    return kind, size


def download(media):
    """Fetch one Media row's file into storage; sets status stored / rejected / failed with the
    reason. Nothing is kept of a refused or failed file. The caller commits."""
    try:
        with tempfile.SpooledTemporaryFile(max_size=1024 * 1024) as buffer:
            kind, size = _fetch(media, buffer)
            buffer.seek(0)
            key = f"{media.contact_id or 'none'}/{media.id}{EXTENSIONS[kind]}"
            storage().put(key, buffer, kind)
    except MediaRefused as exc:
        media.status, media.error = "rejected", str(exc)
        return media
    except (httpx.HTTPError, OSError, StorageError) as exc:
        media.status, media.error = "failed", f"{type(exc).__name__}: {exc}"[:500]
        return media
    media.status, media.error, media.content_type, media.size, media.path = "stored", None, kind, size, key
    return media


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


def visible_media(media_id):
    """(media row, chunks, size) of a stored file, for a user who may see its contact; None
    otherwise (a missing row, a file not stored, or another user's contact: all answer 404 alike)."""
    media = db.session.get(Media, media_id)
    if media is None or media.contact_id is None:
        return None
    visible_contact(media.contact_id)  # aborts 404 for a contact this user may not see
    if media.status != "stored" or not media.path:
        return None
    try:
        chunks, size = storage().get(media.path)
    except (StorageError, OSError) as exc:
        log.warning("media %s (%s) cannot be read: %s", media.id, media.path, exc)
        return None
    return media, chunks, size
