"""Photos and voicemails from OpenPhone: checked by type and size, kept in MEDIA_FOLDER or in an
S3-compatible bucket (a real S3 server over real HTTP: moto's), and served only to users who may
see the contact, on both backends."""
from datetime import datetime, timezone
from urllib.parse import quote

import boto3
import pytest
from botocore.exceptions import ClientError
from moto.server import ThreadedMotoServer
from sqlalchemy import func, select

from app.extensions import db as _db
from app.fake_history import MP3, PNG
from app.history import import_history
from app.history_models import HistoryItem, Media
from app.media import S3Storage, StorageError
from app.models import Message
from app.openphone import OpenPhone
from tests.conftest import free_port, user_id

NUMBER = "+16175550100"
SECRET = "s3cret/with+signs"  # URL-encoded in MEDIA_S3_URL


@pytest.fixture(scope="module")
def s3_server():
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture(params=["folder", "s3"])
def media_store(request, app, tmp_path):
    """Where this test's media go; returns read(key) -> bytes, asked of the storage directly."""
    app.config["MEDIA_FOLDER"] = str(tmp_path / "media")
    if request.param == "folder":
        yield lambda key: (tmp_path / "media" / key).read_bytes()
        return
    endpoint = request.getfixturevalue("s3_server")
    bucket = f"media-{request.node.name.split('[')[0][-20:].replace('_', '-')}".lower()
    s3 = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="crm", aws_secret_access_key=SECRET,
                      region_name="us-east-1")
    s3.create_bucket(Bucket=bucket)
    app.config["MEDIA_S3_URL"] = f"s3://crm:{quote(SECRET, safe='')}@{endpoint[len('http://'):]}/{bucket}/crm?tls=0"
    yield lambda key: s3.get_object(Bucket=bucket, Key=f"crm/{key}")["Body"].read()
    app.config["MEDIA_S3_URL"] = ""
    for listed in s3.list_objects_v2(Bucket=bucket).get("Contents", []):
        s3.delete_object(Bucket=bucket, Key=listed["Key"])
    s3.delete_bucket(Bucket=bucket)


def client(fake, redis):
    return OpenPhone("test-key", fake.url, redis=redis, rate=10, retries_429=20)


def _photo_message(fake, phone, media_url, kind="image/png"):
    return fake.history.add_message(NUMBER, phone, "Here is the crack", "incoming", datetime.now(timezone.utc),
                                    media=[(media_url, kind)])


def test_photos_are_checked_by_type_and_size_and_voicemails_kept(app, db, redis, fake_openphone, media_store,
                                                                tmp_path):
    fake = fake_openphone
    _photo_message(fake, "+16175558001", fake.history.add_media("image/png", PNG))
    _photo_message(fake, "+16175558002", fake.history.add_media("image/jpeg", size=50 * 1024 * 1024, body=b""))
    _photo_message(fake, "+16175558003", fake.history.add_media("text/html", b"<html>not a photo</html>"))
    _photo_message(fake, "+16175558004", fake.history.add_media(missing=True))
    fake.history.add_call(NUMBER, "+16175558005", "incoming", "missed", datetime.now(timezone.utc),
                          voicemail="Call me about the wall")
    run = import_history(client=client(fake, redis))
    assert run.status == "done", run.error
    rows = {m.contact.phone if m.contact_id else None: m for m in _db.session.scalars(select(Media))}
    assert rows["+16175558001"].status == "stored" and rows["+16175558001"].size == len(PNG)
    assert media_store(rows["+16175558001"].path) == PNG
    assert rows["+16175558002"].status == "rejected" and "MEDIA_MAX_MB" in rows["+16175558002"].error
    assert rows["+16175558003"].status == "rejected" and "text/html" in rows["+16175558003"].error
    assert rows["+16175558004"].status == "failed" and "404" in rows["+16175558004"].error
    assert rows["+16175558005"].status == "stored" and rows["+16175558005"].content_type == "audio/mpeg"
    assert media_store(rows["+16175558005"].path) == MP3
    kept = sorted(str(p.relative_to(tmp_path / "media")) for p in (tmp_path / "media").rglob("*") if p.is_file())
    on_disk = [] if app.config["MEDIA_S3_URL"] else sorted([rows["+16175558001"].path, rows["+16175558005"].path])
    assert kept == on_disk  # nothing partial or refused is left; with a bucket, nothing on disk
    for refused in ("+16175558002", "+16175558003", "+16175558004"):
        assert rows[refused].path is None
    assert _db.session.scalar(select(func.count()).select_from(Message)) == 4  # a refused photo keeps its text
    outcomes = dict(_db.session.execute(select(HistoryItem.outcome, func.count()).where(HistoryItem.kind == "media")
                                        .group_by(HistoryItem.outcome)).all())
    assert outcomes == {"stored": 2, "rejected": 2, "failed": 1}


def test_staff_cannot_fetch_media_of_another_users_contact(app, db, redis, fake_openphone, media_store, client_for):
    _photo_message(fake_openphone, "+16175558101", fake_openphone.history.add_media("image/png", PNG))
    assert import_history(client=client(fake_openphone, redis)).status == "done"
    photo = _db.session.scalar(select(Media))
    photo.contact.assigned_user_id = user_id("staff")
    _db.session.commit()
    url = f"/media/{photo.id}"
    mine = client_for("staff").get(url)
    assert mine.status_code == 200 and mine.data == PNG and mine.mimetype == "image/png"
    assert mine.headers["Cache-Control"] == "private, max-age=3600"
    assert client_for("staff2").get(url).status_code == 404
    assert client_for("admin").get(url).data == PNG
    assert client_for("marketer").get(url).data == PNG
    page = client_for("staff").get(f"/conversations/thread/{photo.contact_id}").get_data(as_text=True)
    assert f'src="{url}"' in page
    assert client_for("staff2").get(f"/conversations/thread/{photo.contact_id}").status_code == 404
    assert app.test_client().get(url).status_code in (302, 401)  # signed out: to the login page


def test_a_file_gone_from_storage_answers_404_not_an_error(app, db, redis, fake_openphone, media_store, client_for,
                                                           tmp_path):
    _photo_message(fake_openphone, "+16175558201", fake_openphone.history.add_media("image/png", PNG))
    assert import_history(client=client(fake_openphone, redis)).status == "done"
    photo = _db.session.scalar(select(Media))
    photo.path = f"{photo.contact_id}/elsewhere.png"
    _db.session.commit()
    assert client_for("admin").get(f"/media/{photo.id}").status_code == 404


@pytest.mark.parametrize("url", ["https://bucket.example.com/x", "s3://host/bucket", "s3://key:secret@host:9000",
                                 "s3://key:secret@/bucket"])
def test_a_malformed_media_s3_url_is_refused_with_its_shape(url):
    with pytest.raises(StorageError, match="MEDIA_S3_URL"):
        S3Storage(url)


def test_a_bucket_that_refuses_marks_the_photo_failed_and_keeps_the_text(app, db, redis, fake_openphone, s3_server,
                                                                         tmp_path):
    app.config["MEDIA_S3_URL"] = f"s3://crm:{quote(SECRET, safe='')}@{s3_server[len('http://'):]}/no-such-bucket?tls=0"
    try:
        _photo_message(fake_openphone, "+16175558301", fake_openphone.history.add_media("image/png", PNG))
        assert import_history(client=client(fake_openphone, redis)).status == "done"
    finally:
        app.config["MEDIA_S3_URL"] = ""
    photo = _db.session.scalar(select(Media))
    assert photo.status == "failed" and "NoSuchBucket" in photo.error and photo.path is None
    assert _db.session.scalar(select(func.count()).select_from(Message)) == 1


def test_erasing_a_contact_deletes_their_photos_and_recordings_from_storage(app, db, redis, fake_openphone,
                                                                            media_store, client_for, post_form):
    fake = fake_openphone
    _photo_message(fake, "+16175558301", fake.history.add_media("image/png", PNG))
    fake.history.add_call(NUMBER, "+16175558301", "incoming", "missed", datetime.now(timezone.utc),
                          voicemail="Call me about the wall")
    _photo_message(fake, "+16175558302", fake.history.add_media("image/png", PNG))  # someone else's
    assert import_history(client=client(fake, redis)).status == "done"
    theirs = _db.session.scalars(select(Media).join(Media.contact).where(Media.status == "stored")).all()
    erased = [m for m in theirs if m.contact.phone == "+16175558301"]
    kept = [m for m in theirs if m.contact.phone == "+16175558302"]
    assert len(erased) == 2 and len(kept) == 1
    paths, contact_id = [m.path for m in erased], erased[0].contact_id
    for path in paths:
        assert media_store(path)  # stored before
    response = post_form(client_for("admin"), f"/contactview/erase/{contact_id}", {"confirm": "erase"})
    assert response.status_code == 302
    _db.session.expire_all()
    for path in paths:
        with pytest.raises((FileNotFoundError, ClientError)):  # gone from the folder or the bucket
            media_store(path)
    rows = _db.session.scalars(select(Media).where(Media.id.in_([m.id for m in erased]))).all()
    assert {(m.status, m.path, m.url) for m in rows} == {("erased", None, "")}
    assert media_store(kept[0].path) == PNG  # another person's photo stays
    assert client_for("admin").get(f"/media/{rows[0].id}").status_code == 404
