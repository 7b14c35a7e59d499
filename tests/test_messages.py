"""The outbox and the one sender against the fake OpenPhone; opt-out rules."""
import os
import signal
import subprocess
import sys
import time
from datetime import date, timedelta
from datetime import time as dtime

import pytest

from app import messages
from app.messages import queue_text
from app.models import Campaign, CampaignRecipient, Contact, Message, OptOut, utcnow
from app.opt_outs import OptedOut, is_opted_out, opt_in, opt_out
from tests.conftest import send_queued

PHONE = "+16175550123"

def test_opted_out_phone_cannot_be_queued(db):
    opt_out(PHONE, "manual")
    db.session.commit()
    with pytest.raises(OptedOut):
        queue_text("617-555-0123", "Hi")
    assert db.session.query(Message).count() == 0


def test_opt_in_lifts_the_opt_out_and_keeps_the_history(db):
    opt_out(PHONE, "keyword", reason="STOP")
    db.session.commit()
    opt_in(PHONE)
    db.session.commit()
    row = db.session.query(OptOut).one()
    assert not is_opted_out(PHONE) and row.revoked_at is not None and row.reason == "STOP"


def test_bad_texts_are_refused_with_a_reason(db):
    for phone, body, reason in ((PHONE, "  ", "empty"), ("12", "Hi", "not a valid phone"),
                                (PHONE, "x" * 1601, "at most 1600")):
        with pytest.raises(messages.TextError, match=reason):
            queue_text(phone, body)


def _queued(db, body="Hi there", **kwargs):
    message = queue_text(PHONE, body, **kwargs)
    db.session.commit()
    return message.id


def test_send_queued_sends_once_and_records_the_provider_id(db, fake_openphone):
    message_id = _queued(db)
    assert send_queued(message_id).status == "sent"
    again = send_queued(message_id)  # a duplicate job finds nothing to claim
    assert again.status == "sent" and again.provider_id == fake_openphone.sent[0]["id"]
    assert len(fake_openphone.sent) == 1


def test_opt_out_between_queue_and_send_cancels_the_text(db, fake_openphone):
    message_id = _queued(db)
    opt_out(PHONE, "manual")
    db.session.commit()
    assert send_queued(message_id).status == "cancelled"
    assert fake_openphone.sent == []


@pytest.mark.parametrize("body", ["Hi 👋 from Quincy 🏠", "<script>alert('x')</script> & <b>bold</b>", "long " * 320])
def test_emoji_html_and_long_bodies_are_sent_as_written(db, fake_openphone, body):
    message = send_queued(_queued(db, body=body))
    assert message.status == "sent" and fake_openphone.sent[0]["text"] == body.strip() == message.body


def test_provider_refusal_fails_the_message_with_its_reason(db, fake_openphone):
    fake_openphone.api_key = "rotated"
    message = send_queued(_queued(db))
    assert message.status == "failed" and "401" in message.error


def test_rate_limited_send_waits_and_sends_once(db, fake_openphone):
    fake_openphone.configure(fail_next=[429])
    assert send_queued(_queued(db)).status == "sent"
    assert len(fake_openphone.sent) == 1


def test_provider_down_puts_the_text_back_in_the_queue(app, db):
    message = send_queued(_queued(db))  # conftest points OpenPhone at a closed port
    assert message.status == "queued" and "connect" in message.error


def test_server_error_is_never_resent_and_ends_in_review(db, fake_openphone):
    fake_openphone.configure(fail_next=[500])
    message = send_queued(_queued(db))
    assert message.status == "unknown"
    assert messages.recover_sending(older_than=0) == 1
    message = db.session.get(Message, message.id)
    assert message.status == "review" and "Check the conversation" in message.error
    assert fake_openphone.sent == []


@pytest.mark.parametrize("fault", ["lose_next", "timeout_next"])
def test_accepted_but_unanswered_send_is_reconciled_as_sent(app, db, fake_openphone, fault):
    app.config["OPENPHONE_TIMEOUT_SECONDS"] = 0.5
    fake_openphone.hang_seconds = 2
    try:
        fake_openphone.configure(**{fault: 1})
        message = send_queued(_queued(db))
    finally:
        app.config["OPENPHONE_TIMEOUT_SECONDS"] = 15.0
    assert message.status == "sent" and message.provider_id == fake_openphone.sent[0]["id"]
    assert len(fake_openphone.sent) == 1


def _recipient(db):
    campaign = Campaign(name="Spring", status="running", sending_number="+16175550100", window_start=dtime(9), window_end=dtime(18),
                        start_date=date.today())
    db.session.add(campaign)
    db.session.flush()
    recipient = CampaignRecipient(campaign_id=campaign.id, phone=PHONE, status="sending")
    db.session.add(recipient)
    db.session.flush()
    return recipient


def test_campaign_recipient_gets_the_same_outcome(db, fake_openphone):
    recipient = _recipient(db)
    message = send_queued(_queued(db, campaign_recipient_id=recipient.id))
    db.session.refresh(recipient)
    assert message.status == recipient.status == "sent" and recipient.sent_at == message.sent_at


def test_lost_one_off_job_is_enqueued_again(app, db, redis, run_jobs, fake_openphone):
    message_id = _queued(db)
    db.session.query(Message).filter_by(id=message_id).update({"created_at": utcnow() - timedelta(minutes=5)})
    db.session.commit()
    assert messages.recover_sending() == 1
    run_jobs()
    assert db.session.get(Message, message_id, populate_existing=True).status == "sent"
    assert len(fake_openphone.sent) == 1


def test_one_off_job_a_killed_worker_left_started_is_enqueued_again(app, db, redis, run_jobs, fake_openphone):
    from rq.job import Job, JobStatus

    message_id = _queued(db)
    db.session.query(Message).filter_by(id=message_id).update({"created_at": utcnow() - timedelta(minutes=5)})
    db.session.commit()
    assert messages.recover_sending() == 1  # Redis lost the job
    assert messages.recover_sending() == 0  # queued again: left alone
    # A worker took the job and was SIGKILLed before it claimed the message: RQ still says "started".
    Job.fetch(f"send-message-{message_id}", connection=redis).set_status(JobStatus.STARTED)
    assert messages.recover_sending() == 1
    run_jobs()  # the id is on the queue twice now; the claim lets one run send
    assert db.session.get(Message, message_id, populate_existing=True).status == "sent"
    assert len(fake_openphone.sent) == 1


@pytest.mark.slow
def test_worker_killed_mid_send_never_texts_twice(app, db, redis, fake_openphone):
    """SIGKILL a real worker while OpenPhone holds the request; recovery reconciles, never resends."""
    contact = Contact(phone=PHONE, first_name="Ann")
    db.session.add(contact)
    db.session.commit()
    message_id = _queued(db, contact_id=contact.id)
    messages.enqueue_send(message_id)
    fake_openphone.configure(latency=30)  # the fake records the text, then takes its time to answer
    env = dict(os.environ, DATABASE_URL=app.config["DATABASE_URL"], REDIS_URL=app.config["REDIS_URL"],
               INSTANCE_DIR=str(app.config["INSTANCE_DIR"]), OPENPHONE_API_KEY=app.config["OPENPHONE_API_KEY"],
               OPENPHONE_BASE_URL=fake_openphone.url, SECRET_KEY="test", WORKER_TICK_SECONDS="3600",
               QUEUE_NAME=app.config["QUEUE_NAME"])
    worker = subprocess.Popen([sys.executable, "-m", "run", "worker", "--burst"], env=env,
                              cwd=str(app.config["BASE_DIR"]), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not fake_openphone.sent and time.monotonic() < deadline and worker.poll() is None:
            time.sleep(0.05)
        assert len(fake_openphone.sent) == 1, "the worker never reached OpenPhone"
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
    finally:
        if worker.poll() is None:
            worker.kill()
    fake_openphone.configure(latency=0)
    db.session.expire_all()
    assert db.session.get(Message, message_id).status == "sending"  # killed before recording it
    messages.recover_sending(older_than=0)
    messages.recover_sending(older_than=0)
    message = db.session.get(Message, message_id, populate_existing=True)
    assert message.status == "sent" and message.provider_id == fake_openphone.sent[0]["id"]
    assert len(fake_openphone.sent) == 1
