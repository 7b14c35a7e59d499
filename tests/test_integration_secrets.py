"""Integration secrets at rest: encrypted, never shown back, audited without the value, rotated by a
second key; OpenPhone reads the stored key and webhook secret before the environment's."""
import json
import os
import time

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select

from app import messages
from app.integration_secrets import SecretUnreadable, describe, get_secret, rotate_secrets, set_secret
from app.models import AuditLog, IntegrationSecret
from tests.conftest import send_queued, user_id
from tests.test_security import config_under

KEY = "op_live_9f8e7d6c5b4a3210abcd"
URL = "/settings/integrations/"


def test_a_stored_secret_is_encrypted_and_reads_back(app, db):
    set_secret("openphone_api_key", KEY, user_id=user_id("admin"))
    db.session.commit()
    row = db.session.get(IntegrationSecret, "openphone_api_key")
    assert KEY not in row.ciphertext and row.updated_by_id == user_id("admin")
    assert Fernet(app.config["ENCRYPTION_KEY"].split(",")[0].encode()).decrypt(row.ciphertext.encode()).decode() == KEY
    assert get_secret("openphone_api_key") == KEY and describe("openphone_api_key") == "set, ends in ...abcd"
    assert get_secret("openphone_webhook_secret") is None and describe("openphone_webhook_secret") == "not set"


def test_admin_sets_the_key_on_screen_and_never_sees_it_again(app, db, client_for, post_form):
    admin = client_for("admin")
    first = admin.get(URL).get_data(as_text=True)
    assert "not set" in first
    note = first[first.index('id="secrets-note"'):first.index("</p>", first.index('id="secrets-note"'))]
    assert "a copy of the database alone does not give them away" in " ".join(note.split())
    assert "ENCRYPTION_KEY" not in note and "<code>ENCRYPTION_KEY</code>" in first
    page = post_form(admin, URL + "save", {"name": "openphone_api_key", "value": KEY},
                     follow_redirects=True).get_data(as_text=True)
    assert "set, ends in ...abcd" in page and KEY not in page and KEY[:-4] not in page
    assert get_secret("openphone_api_key") == KEY
    audit_rows = db.session.scalars(select(AuditLog).where(AuditLog.action != "login")).all()
    assert [(r.action, r.object_id, r.username) for r in audit_rows] == [
        ("secret_changed", "openphone_api_key", "admin")]
    assert all(KEY not in json.dumps([r.changes, r.detail]) for r in audit_rows)
    post_form(admin, URL + "save", {"name": "openphone_api_key", "remove": "1"})
    assert get_secret("openphone_api_key") is None
    assert db.session.scalars(select(AuditLog.action).where(AuditLog.object_type == "integration_secrets")
                              .order_by(AuditLog.id)).all() == ["secret_changed", "secret_cleared"]


@pytest.mark.parametrize("username", ["marketer", "staff"])
def test_only_admins_reach_the_integrations_screen(app, db, client_for, post_form, username):
    client = client_for(username)
    assert client.get(URL).status_code in (302, 403)
    post_form(client, URL + "save", {"name": "openphone_api_key", "value": "stolen-key-000000"})
    assert get_secret("openphone_api_key") is None


def test_texts_use_the_stored_key_before_the_environments(app, db, fake_openphone):
    fake_openphone.api_key = KEY  # the provider accepts only the stored key now
    message = messages.queue_text("+16175550111", "Hi", kind="sms")
    db.session.commit()
    assert send_queued(message.id).status == "failed"  # the environment's key is refused
    set_secret("openphone_api_key", KEY)
    db.session.commit()
    message = messages.queue_text("+16175550112", "Hi again", kind="sms")
    db.session.commit()
    assert send_queued(message.id).status == "sent"
    assert [m["to"] for m in fake_openphone.sent] == [["+16175550112"]]


def test_webhooks_are_checked_with_the_stored_secret(app, db):
    from app.fake_openphone import FakeOpenPhone

    stored = "whsec_" + "c3RvcmVkLXNlY3JldC1zdG9yZWQtc2VjcmV0"
    set_secret("openphone_webhook_secret", stored)
    db.session.commit()
    for secret, status in ((stored, 200), (app.config["OPENPHONE_WEBHOOK_SECRET"], 401)):
        fake = FakeOpenPhone(webhook_secret=secret)
        event = fake.event("message.received", {"id": f"AC{time.time_ns()}", "from": "+16175550123",
                                                 "to": ["+16175550100"], "text": "Hi", "direction": "incoming"})
        body, headers = fake.signed(event)
        fake.server.server_close()
        assert app.test_client().post("/webhooks/openphone", data=body, headers=headers).status_code == status


def test_a_second_key_decrypts_old_secrets_and_rotation_moves_them_to_the_new_key(app, db, monkeypatch):
    old = app.config["ENCRYPTION_KEY"]
    set_secret("openphone_api_key", KEY)
    db.session.commit()
    new = Fernet.generate_key().decode()
    monkeypatch.setitem(app.config, "ENCRYPTION_KEY", new)
    with pytest.raises(SecretUnreadable):
        get_secret("openphone_api_key")
    assert "cannot be decrypted" in describe("openphone_api_key")
    monkeypatch.setitem(app.config, "ENCRYPTION_KEY_OLD", old)
    assert get_secret("openphone_api_key") == KEY
    assert rotate_secrets() == 1
    db.session.commit()
    monkeypatch.setitem(app.config, "ENCRYPTION_KEY_OLD", "")
    assert get_secret("openphone_api_key") == KEY  # the new key alone reads it now


def test_production_refuses_to_start_without_an_encryption_key(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "ENCRYPTION_KEY"}
    result = config_under({**env, "CRM_ENV": "production", "INSTANCE_DIR": str(tmp_path), "SECRET_KEY": "x" * 32})
    assert result.returncode != 0 and "ENCRYPTION_KEY must be set" in result.stderr


def test_the_embedded_run_generates_a_key_once_into_the_instance_folder(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "ENCRYPTION_KEY"}
    code = "import config; print(config.ENCRYPTION_KEY)"
    import subprocess
    import sys

    runs = [subprocess.run([sys.executable, "-c", code], env={**env, "INSTANCE_DIR": str(tmp_path)},
                           capture_output=True, text=True, cwd=os.path.dirname(os.path.dirname(__file__)))
            for _ in range(2)]
    assert runs[0].stdout == runs[1].stdout and Fernet(runs[0].stdout.strip().encode())
    assert (tmp_path / "encryption_key").stat().st_mode & 0o077 == 0


def test_a_key_no_configured_key_can_read_keeps_texts_queued_and_webhooks_retried(app, db, monkeypatch):
    set_secret("openphone_api_key", KEY)
    set_secret("openphone_webhook_secret", "whsec_" + "c3RvcmVkLXNlY3JldC1zdG9yZWQtc2VjcmV0")
    db.session.commit()
    monkeypatch.setitem(app.config, "ENCRYPTION_KEY", Fernet.generate_key().decode())
    message = messages.queue_text("+16175550113", "Hi", kind="sms")
    db.session.commit()
    unsent = send_queued(message.id)
    assert unsent.status == "queued" and "ENCRYPTION_KEY" in unsent.error
    headers = {"webhook-id": "msg_1", "webhook-timestamp": str(int(time.time())), "webhook-signature": "v1,x"}
    assert app.test_client().post("/webhooks/openphone", data=b"{}", headers=headers).status_code == 503


def test_a_live_key_is_refused_without_a_webhook_signing_secret(app, db, client_for, post_form, monkeypatch):
    """A key alone would switch texting on while every reply, STOP included, is refused."""
    monkeypatch.setitem(app.config, "OPENPHONE_WEBHOOK_SECRET", "")
    admin = client_for("admin")
    page = post_form(admin, URL + "save", {"name": "openphone_api_key", "value": KEY},
                     follow_redirects=True).get_data(as_text=True)
    assert "Set the OpenPhone webhook signing secret first" in page
    assert get_secret("openphone_api_key") is None
    post_form(admin, URL + "save", {"name": "openphone_webhook_secret", "value": "whsec_c2lnbmluZy1zZWNyZXQ="})
    post_form(admin, URL + "save", {"name": "openphone_api_key", "value": KEY})
    assert get_secret("openphone_api_key") == KEY
    page = post_form(admin, URL + "save", {"name": "openphone_webhook_secret", "remove": "1"},
                     follow_redirects=True).get_data(as_text=True)
    assert "Remove the OpenPhone API key first" in page
    assert get_secret("openphone_webhook_secret") == "whsec_c2lnbmluZy1zZWNyZXQ="
