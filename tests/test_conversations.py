"""The contact page thread, the Send text box, the Inbox, the send API and the sandbox reply."""
import html
import re

import pytest
from flask import g

from app import messages, opt_outs
from app.models import Contact, Message
from tests.conftest import csrf_token, send_queued, user_id

PHONE = "+16175550123"


@pytest.fixture
def contacts(db):
    mine = Contact(first_name="Ann", last_name="Owner", phone=PHONE, assigned_user_id=user_id("staff"))
    theirs = Contact(first_name="Bob", last_name="Other", phone="+16175550124", assigned_user_id=user_id("staff2"))
    db.session.add_all([mine, theirs])
    db.session.commit()
    return mine.id, theirs.id


def test_send_text_from_the_contact_page_reaches_openphone(app, db, client_for, post_form, run_jobs,
                                                          fake_openphone, contacts):
    staff = client_for("staff")
    page = staff.get(f"/contactview/show/{contacts[0]}").get_data(as_text=True)
    assert "Send text" in page and "Simulate reply" not in page
    response = post_form(staff, f"/conversations/send_text/{contacts[0]}", {"body": "Hi Ann 👋 <b>free quote</b>"})
    assert response.status_code == 302
    run_jobs()
    assert [m["text"] for m in fake_openphone.sent] == ["Hi Ann 👋 <b>free quote</b>"]
    for body, headers in fake_openphone.take_webhooks():
        app.test_client().post("/webhooks/openphone", data=body, headers=headers)
    run_jobs()
    page = staff.get(f"/contactview/show/{contacts[0]}").get_data(as_text=True)
    assert "Hi Ann 👋 &lt;b&gt;free quote&lt;/b&gt;" in page and "<b>free quote" not in page
    assert 'data-status="delivered"' in page


def test_send_text_form_needs_a_csrf_token(db, client_for, contacts):
    response = client_for("staff").post(f"/conversations/send_text/{contacts[0]}", data={"body": "Hi"})
    assert response.status_code == 400 and db.session.query(Message).count() == 0


def test_staff_cannot_text_another_users_contact(db, client_for, post_form, contacts):
    response = post_form(client_for("staff"), f"/conversations/send_text/{contacts[1]}", {"body": "Hi"})
    assert response.status_code == 404 and db.session.query(Message).count() == 0


def test_opted_out_phone_cannot_be_texted_through_any_path(app, db, client_for, post_form, run_jobs,
                                                         fake_openphone, contacts):
    opt_outs.opt_out(PHONE, "manual")
    db.session.commit()
    marketer = client_for("marketer")
    page = marketer.get(f"/contactview/show/{contacts[0]}").get_data(as_text=True)
    assert "Opted out" in page and 'id="send-text"' not in page
    post_form(marketer, f"/conversations/send_text/{contacts[0]}", {"body": "one-off"})
    api = marketer.post("/api/v1/conversation/send_text", json={"contact_id": contacts[0], "body": "api"},
                        headers={"X-CSRFToken": csrf_token(app, marketer)})
    assert api.status_code == 409
    with pytest.raises(opt_outs.OptedOut):
        messages.queue_text(PHONE, "direct")
    queued_before = Message(direction="outgoing", status="queued", body="queued earlier", to_phone=PHONE,
                            from_phone="+16175550100")
    db.session.add(queued_before)
    db.session.commit()
    assert send_queued(queued_before.id).status == "cancelled"
    run_jobs()
    assert fake_openphone.sent == []


def test_send_api_queues_a_text(app, db, client_for, run_jobs, fake_openphone, contacts):
    staff = client_for("staff")
    response = staff.post("/api/v1/conversation/send_text", json={"contact_id": contacts[0], "body": "From the API"},
                          headers={"X-CSRFToken": csrf_token(app, staff)})
    assert response.status_code == 202
    run_jobs()
    assert [m["text"] for m in fake_openphone.sent] == ["From the API"]


def test_send_text_queues_and_enqueues_one_text_or_stores_nothing(app, db, redis, contacts):
    from flask_appbuilder.security.sqla.models import User
    from werkzeug.exceptions import NotFound

    from app import conversations
    from app.queue import get_queue

    mine, theirs = contacts
    g.user = db.session.get(User, user_id("staff"))
    with pytest.raises(NotFound):
        conversations.send_text(theirs, "Hi Bob", g.user.id)
    with pytest.raises(messages.TextError):
        conversations.send_text(mine, "   ", g.user.id)
    assert db.session.query(Message).count() == 0 and get_queue().count == 0
    sent = conversations.send_text(mine, "Hi Ann", g.user.id)
    row = db.session.query(Message).one()
    assert (row.id, row.body, row.status, row.contact_id, row.sent_by_id) == (sent.id, "Hi Ann", "queued", mine,
                                                                              g.user.id)
    assert get_queue().job_ids == [f"send-message-{row.id}"]
    opt_outs.opt_out(PHONE, "manual")
    db.session.commit()
    with pytest.raises(opt_outs.OptedOut):
        conversations.send_text(mine, "Hi again", g.user.id)
    assert db.session.query(Message).count() == 1 and get_queue().count == 1
    g.pop("user")


def _incoming(db, contact_id, body):
    db.session.add(Message(direction="incoming", status="received", body=body, contact_id=contact_id,
                           from_phone=PHONE))
    db.session.commit()


def test_inbox_lists_unanswered_conversations_scoped_and_filtered(app, db, client_for, contacts):
    mine, theirs = contacts
    _incoming(db, mine, "Is Friday OK?")
    _incoming(db, theirs, "<i>How much?</i>")
    staff = client_for("staff").get("/inbox/").get_data(as_text=True)
    assert "Is Friday OK?" in staff and "How much" not in staff
    g.pop("_login_user", None)  # the test's app context outlives a request; forget the previous user
    admin = client_for("admin")
    everyone = admin.get("/inbox/").get_data(as_text=True)
    assert "Is Friday OK?" in everyone and "&lt;i&gt;How much?&lt;/i&gt;" in everyone
    filtered = admin.get(f"/inbox/?assigned={user_id('staff2')}").get_data(as_text=True)
    assert "Is Friday OK?" not in filtered and "How much" in filtered
    messages.queue_text(PHONE, "Yes, Friday at 10")
    db.session.commit()
    assert "Is Friday OK?" not in admin.get("/inbox/").get_data(as_text=True)


def test_sandbox_simulate_reply_lands_in_the_inbox(app, db, client_for, post_form, run_jobs, fake_openphone,
                                                  contacts):
    saved = app.config["OPENPHONE_API_KEY"], app.config["SANDBOX_PORT"]
    app.config["OPENPHONE_API_KEY"], app.config["SANDBOX_PORT"] = "", fake_openphone.server.server_address[1]
    fake_openphone.api_key = "sandbox"
    try:
        staff = client_for("staff")
        assert "Simulate reply" in staff.get(f"/contactview/show/{contacts[0]}").get_data(as_text=True)
        post_form(staff, f"/conversations/simulate_reply/{contacts[0]}", {"body": "Sure, come Friday"})
        for body, headers in fake_openphone.take_webhooks():
            assert app.test_client().post("/webhooks/openphone", data=body, headers=headers).status_code == 200
        run_jobs()
    finally:
        app.config["OPENPHONE_API_KEY"], app.config["SANDBOX_PORT"] = saved
    assert "Sure, come Friday" in staff.get("/inbox/").get_data(as_text=True)


def test_the_dashboard_counts_exactly_the_conversations_the_inbox_lists(app, db, client_for, contacts):
    """One definition of "waiting": an inbound text is the last text; an opt-out waits for nobody."""
    import re

    from app.models import utcnow

    mine, theirs = contacts
    stopper = Contact(first_name="Cy", phone="+16175550125", assigned_user_id=user_id("staff"))
    answered = Contact(first_name="Di", phone="+16175550126", assigned_user_id=user_id("staff"))
    db.session.add_all([stopper, answered])
    db.session.commit()
    _incoming(db, mine, "Is Friday OK?")
    _incoming(db, theirs, "How much?")
    db.session.add(Message(contact_id=stopper.id, direction="incoming", kind="sms", body="STOP", status="received",
                           from_phone=stopper.phone, opt_out_class="keyword", created_at=utcnow()))
    _incoming(db, answered.id, "Call me")
    messages.queue_text(answered.phone, "Calling you at 3")
    db.session.commit()
    for username, expected in (("admin", {"Is Friday OK?", "How much?"}), ("staff", {"Is Friday OK?"})):
        g.pop("_login_user", None)
        client = client_for(username)
        inbox = client.get("/inbox/").get_data(as_text=True)
        listed = {text for text in ("Is Friday OK?", "How much?", "STOP", "Call me") if text in inbox}
        assert listed == expected
        home = client.get("/").get_data(as_text=True)
        assert re.search(rf'id="dashboard-waiting">\s*{len(expected)}\s*<', home), username


def test_a_nameless_contact_reads_as_its_phone_once_in_the_inbox(app, db, client_for):
    nameless = Contact(phone="+16175552029")
    db.session.add(nameless)
    db.session.commit()
    _incoming(db, nameless.id, "Voicemail: call me back")
    page = client_for("admin").get("/inbox/").get_data(as_text=True)
    assert page.count("(617) 555-2029") == 1 and "+16175552029" not in page


def test_the_thread_says_each_texts_direction_and_time_and_a_status_only_when_it_tells_something(
        app, db, client_for, contacts):
    mine, _ = contacts
    _incoming(db, mine, "Is Friday OK?")
    db.session.add(Message(contact_id=mine, direction="outgoing", status="delivered", body="Yes", to_phone=PHONE))
    db.session.commit()
    thread = client_for("admin").get(f"/conversations/thread/{mine}").get_data(as_text=True)
    text = " ".join(html.unescape(re.sub(r"<[^>]+>", " ", thread)).split())
    assert "received" in text and text.count("received") == 1
    assert "\u2192 delivered \u00b7" in text
