"""The Inbox's rules: unread per user after an inbound text or call, Done until the next inbound,
snoozes that wake, STOP filed away, assignment from the Inbox, and Staff scoping on every door."""
import re
from datetime import datetime, timedelta, timezone

import pytest
from flask import g
from flask_appbuilder.security.sqla.models import User

from app import inbox
from app.contacts import ContactError
from app.history_models import Call
from app.inbox_models import ConversationState, SavedReply
from app.models import AuditLog, Contact, Message
from tests.conftest import csrf_token, user_id

T0 = datetime(2026, 11, 24, 15, 0)  # naive UTC, as the database stores time
PHONE, OTHER = "+16175550123", "+16175550124"


def at(minutes):
    return T0 + timedelta(minutes=minutes)


@pytest.fixture
def contacts(db):
    mine = Contact(first_name="Ann", last_name="Owner", phone=PHONE, assigned_user_id=user_id("staff"))
    theirs = Contact(first_name="Bob", last_name="Other", phone=OTHER, assigned_user_id=user_id("staff2"))
    db.session.add_all([mine, theirs])
    db.session.commit()
    return mine.id, theirs.id


def text_in(db, contact_id, body, minutes, opt_out_class=None):
    db.session.add(Message(direction="incoming", status="received", body=body, contact_id=contact_id,
                           from_phone=PHONE, created_at=at(minutes), opt_out_class=opt_out_class))
    db.session.commit()


def text_out(db, contact_id, body, minutes):
    db.session.add(Message(direction="outgoing", status="sent", body=body, contact_id=contact_id,
                           to_phone=PHONE, created_at=at(minutes)))
    db.session.commit()


def call_in(db, contact_id, minutes, status="missed", voicemail=None):
    db.session.add(Call(provider_id=f"AC{contact_id}-{minutes}", contact_id=contact_id, phone=PHONE,
                        direction="incoming", status=status, voicemail_url=voicemail, created_at=at(minutes)))
    db.session.commit()


def names(uid, folder="open", minutes=100, **kwargs):
    rows = inbox.inbox(uid, folder, now=at(minutes), **kwargs)["conversations"]
    return [row["contact"].first_name for row in rows]


@pytest.fixture
def as_user(db):
    """as_user("admin"): app functions run with that user as the request's user (g.user)."""
    def use(username):
        g.user = db.session.get(User, user_id(username))
        return g.user.id

    yield use
    g.pop("user", None)


def test_a_conversation_is_unread_for_each_user_until_they_open_it(db, contacts):
    mine, _ = contacts
    admin, marketer = user_id("admin"), user_id("marketer")
    text_in(db, mine, "Is Friday OK?", 10)
    assert inbox.unread_count(admin, now=at(11)) == 1 and inbox.unread_count(marketer, now=at(11)) == 1
    inbox.mark_read(mine, admin, now=at(12))
    assert inbox.unread_count(admin, now=at(13)) == 0 and inbox.unread_count(marketer, now=at(13)) == 1
    assert names(admin) == ["Ann"]  # read, still waiting for an answer
    assert names(admin, "unread") == []
    call_in(db, mine, 20, voicemail="https://files.example/vm.mp3")
    assert inbox.unread_count(admin, now=at(21)) == 1, "a voicemail after opening makes it unread again"
    inbox.mark_read(mine, admin, now=at(22))
    text_out(db, mine, "Friday at 10 works", 23)
    assert inbox.unread_count(admin, now=at(24)) == 0, "our own reply makes nothing unread"
    assert names(admin, minutes=24) == [], "answered: no longer waiting"
    row = inbox.inbox(admin, "replied", now=at(24))["conversations"][0]
    assert row["replied"] and not row["unread"] and row["preview"] == "Voicemail"


def test_an_answered_conversation_waits_again_when_they_write_back(db, contacts, as_user):
    mine, _ = contacts
    admin = as_user("admin")
    call_in(db, mine, 10)
    assert inbox.inbox(admin, now=at(11))["conversations"][0]["preview"] == "Missed call"
    db.session.add(Call(provider_id="AC-back", contact_id=mine, phone=PHONE, direction="outgoing",
                        status="completed", created_at=at(12)))
    db.session.commit()
    assert names(admin, minutes=13) == [] and names(admin, "replied", minutes=13) == ["Ann"]
    inbox.mark_done(mine, admin, now=at(14))
    assert names(admin, "replied", minutes=15) == [] and names(admin, "done", minutes=15) == ["Ann"]
    text_in(db, mine, "One more question", 20)
    assert names(admin, minutes=21) == ["Ann"] and inbox.unread_count(admin, now=at(21)) == 1


def test_done_files_a_conversation_until_the_next_inbound(db, contacts, as_user):
    mine, _ = contacts
    admin = as_user("admin")
    text_in(db, mine, "How much for a crack?", 10)
    inbox.mark_done(mine, admin, now=at(15))
    assert names(admin, minutes=16) == [] and names(admin, "done", minutes=16) == ["Ann"]
    assert inbox.folder_counts(admin, now=at(16)) == {"open": 0, "unread": 0, "replied": 0, "snoozed": 0,
                                                      "done": 1, "opted_out": 0}
    text_out(db, mine, "About $400", 17)
    assert names(admin, minutes=18) == [] and names(admin, "replied", minutes=18) == [], "our reply keeps it done"
    call_in(db, mine, 30)
    assert names(admin, minutes=31) == ["Ann"] and names(admin, "done", minutes=31) == []
    inbox.mark_done(mine, admin, now=at(32))
    text_in(db, mine, "Thanks!", 40)
    assert names(admin, minutes=41) == ["Ann"]
    audited = db.session.query(AuditLog).filter_by(object_type="conversation_states").order_by(AuditLog.id).all()
    assert [row.action for row in audited] == ["create", "update"]
    assert audited[0].changes["done_by_id"] == admin and audited[1].changes["done_at"] == [at(15).isoformat(),
                                                                                            at(32).isoformat()]


def test_a_snooze_wakes_at_its_time_or_at_the_next_inbound(db, contacts, as_user):
    mine, theirs = contacts
    admin = as_user("admin")
    text_in(db, mine, "Call me next week", 10)
    text_in(db, theirs, "Call me tomorrow", 11)
    inbox.snooze(mine, "3h", admin, now=at(12))
    inbox.snooze(theirs, "3h", admin, now=at(12))
    assert names(admin, minutes=13) == [] and names(admin, "snoozed", minutes=13) == ["Bob", "Ann"]
    text_in(db, theirs, "Actually, today works", 20)
    assert names(admin, minutes=21) == ["Bob"], "a new text wakes the snooze early"
    assert names(admin, minutes=12 + 179) == ["Bob"]
    assert names(admin, minutes=12 + 180) == ["Bob", "Ann"], "the snooze runs out after 3 hours"
    assert inbox.unread_count(admin, now=at(12 + 180)) == 2


def test_snooze_choices_are_times_in_the_company_zone(app, db):
    monday_noon_boston = datetime(2026, 11, 23, 17, 0, tzinfo=timezone.utc)
    zone = "America/New_York"
    assert inbox.snooze_until("3h", monday_noon_boston, zone) == datetime(2026, 11, 23, 20, 0)
    assert inbox.snooze_until("tomorrow", monday_noon_boston, zone) == datetime(2026, 11, 24, 14, 0)
    assert inbox.snooze_until("monday", monday_noon_boston, zone) == datetime(2026, 11, 30, 14, 0)
    assert inbox.snooze_until("2026-11-25T08:30", monday_noon_boston, zone) == datetime(2026, 11, 25, 13, 30)
    assert inbox.snooze_choices(monday_noon_boston, zone)["monday"] == "Monday Nov 30, 9:00"
    assert inbox.snooze_choices(datetime(2026, 11, 29, 17, 0, tzinfo=timezone.utc), zone)["monday"] == "Monday Nov 30, 9:00"
    for bad, message in (("2026-11-23T11:00", "future"), ("soon", "choice from the list"),
                         ("2028-01-01T09:00", "at most a year")):
        with pytest.raises(inbox.InboxError, match=message):
            inbox.snooze_until(bad, monday_noon_boston, zone)


def test_a_bad_snooze_changes_nothing(db, contacts, as_user):
    mine, _ = contacts
    admin = as_user("admin")
    text_in(db, mine, "Hello", 10)
    with pytest.raises(inbox.InboxError):
        inbox.snooze(mine, "yesterday", admin, now=at(11))
    assert db.session.query(ConversationState).count() == 0 and names(admin, minutes=12) == ["Ann"]


def test_stop_conversations_are_filed_under_opted_out(db, contacts):
    mine, theirs = contacts
    admin = user_id("admin")
    text_in(db, mine, "Do you do foundations?", 10)
    text_in(db, mine, "STOP", 11, opt_out_class="keyword")
    text_in(db, theirs, "can you stop by Friday", 12)
    assert names(admin, minutes=13) == ["Bob"] and names(admin, "opted_out", minutes=13) == ["Ann"]
    assert inbox.unread_count(admin, now=at(13)) == 1, "a STOP is not counted as unread"
    call_in(db, mine, 20)
    assert names(admin, minutes=21) == ["Ann", "Bob"], "calling after a STOP brings the conversation back"


def test_staff_see_and_count_only_their_contacts(db, contacts):
    mine, theirs = contacts
    text_in(db, mine, "Mine", 10)
    text_in(db, theirs, "Theirs", 11)
    call_in(db, theirs, 12)
    staff, admin = user_id("staff"), user_id("admin")
    assert names(staff) == ["Ann"] and inbox.unread_count(staff, now=at(13)) == 1
    assert names(admin) == ["Bob", "Ann"] and inbox.unread_count(admin, now=at(13)) == 2
    assert names(admin, assigned=str(user_id("staff2"))) == ["Bob"]
    assert inbox.inbox(staff, now=at(13))["assignees"] == []


def test_assigning_from_the_inbox_gives_staff_the_conversation(db, contacts, as_user):
    mine, theirs = contacts
    text_in(db, theirs, "Who is my contact?", 10)
    staff = user_id("staff")
    assert names(staff) == []
    as_user("marketer")
    inbox.assign(theirs, staff, user_id("marketer"))
    assert names(staff) == ["Bob"]
    change = db.session.query(AuditLog).filter_by(object_type="contacts", object_id=str(theirs), action="update").one()
    assert change.changes["assigned_user_id"] == [user_id("staff2"), staff]
    as_user("staff")
    with pytest.raises(ContactError):
        inbox.assign(theirs, user_id("staff2"), staff)
    assert db.session.get(Contact, theirs).assigned_user_id == staff


# --- through the web: the screen, its refresh, the menu badge, the REST API -------------------

def badge(page):
    """The unread count on the Inbox menu item (hidden at 0)."""
    counts = set(re.findall(r'class="badge inbox-unread"[^>]*>(\d+)</span>', page))
    assert len(counts) == 1, counts
    return int(counts.pop())


def test_staff_see_only_their_conversations_on_every_door(app, db, client_for, post_form, contacts):
    mine, theirs = contacts
    text_in(db, mine, "Is Friday OK?", 10)
    text_in(db, theirs, "How much?", 11)
    staff = client_for("staff")
    page = staff.get("/inbox/").get_data(as_text=True)
    assert "Is Friday OK?" in page and "How much?" not in page and badge(page) == 1
    assert 'data-folder="open">1<' in page and 'action="/inbox/assign/' not in page
    rows = staff.get("/inbox/rows?folder=open").get_data(as_text=True)
    assert "Is Friday OK?" in rows and "How much?" not in rows and 'data-unread="1"' in rows
    api = staff.get("/api/v1/inbox/").get_json()
    assert [c["name"] for c in api["conversations"]] == ["Ann Owner"] and api["counts"]["open"] == 1
    assert staff.get(f"/conversations/thread/{theirs}").status_code == 404
    assert staff.get(f"/conversations/thread_part/{theirs}").status_code == 404
    for url in (f"/inbox/done/{theirs}", f"/inbox/snooze/{theirs}"):
        assert post_form(staff, url, {"until": "3h"}).status_code == 404
    assert db.session.query(ConversationState).count() == 0
    refused = post_form(staff, f"/inbox/assign/{theirs}", {"user": str(user_id("staff"))})
    assert refused.status_code in (302, 403)
    assert db.session.get(Contact, theirs).assigned_user_id == user_id("staff2")
    admin = client_for("admin").get("/api/v1/inbox/").get_json()
    assert [c["name"] for c in admin["conversations"]] == ["Bob Other", "Ann Owner"]


def test_opening_a_conversation_reads_it_for_that_user_only(app, db, client_for, contacts):
    mine, _ = contacts
    text_in(db, mine, "Is Friday OK?", 10)
    staff = client_for("staff")
    assert badge(staff.get("/inbox/").get_data(as_text=True)) == 1
    thread = staff.get(f"/conversations/thread/{mine}").get_data(as_text=True)
    assert "Is Friday OK?" in thread and badge(thread) == 0
    assert 'inbox-unread" title="Unread conversations" style="display:none">0<' in thread, "no badge at 0"
    assert badge(client_for("admin").get("/inbox/").get_data(as_text=True)) == 1
    admin = client_for("admin")
    assert badge(admin.get(f"/contactview/show/{mine}").get_data(as_text=True)) == 0, "the contact page reads it"


def test_done_snooze_and_back_from_the_screen_are_audited(app, db, client_for, post_form, contacts):
    mine, _ = contacts
    text_in(db, mine, "Is Friday OK?", 10)
    staff = client_for("staff")
    response = post_form(staff, f"/inbox/done/{mine}", {"next": "/inbox/"})
    assert response.status_code == 302 and response.headers["Location"].endswith("/inbox/")
    page = staff.get("/inbox/").get_data(as_text=True)
    assert "Is Friday OK?" not in page and "comes back when they text or call again" in page
    assert "Is Friday OK?" in staff.get("/inbox/?folder=done").get_data(as_text=True)
    post_form(staff, f"/inbox/snooze/{mine}", {"until": "last week"})
    assert "Not snoozed: Pick when" in staff.get("/inbox/?folder=done").get_data(as_text=True)
    post_form(staff, f"/inbox/snooze/{mine}", {"until": "tomorrow"})
    assert "Is Friday OK?" in staff.get("/inbox/?folder=snoozed").get_data(as_text=True)
    post_form(staff, f"/inbox/reopen/{mine}")
    assert "Is Friday OK?" in staff.get("/inbox/").get_data(as_text=True)
    rows = db.session.query(AuditLog).filter_by(object_type="conversation_states").order_by(AuditLog.id).all()
    assert [r.action for r in rows] == ["create", "update", "update"] and {r.username for r in rows} == {"staff"}


def test_marketer_assigns_a_conversation_from_the_inbox(app, db, client_for, post_form, contacts):
    _, theirs = contacts
    text_in(db, theirs, "Who do I talk to?", 10)
    marketer = client_for("marketer")
    page = marketer.get("/inbox/").get_data(as_text=True)
    assert f'action="/inbox/assign/{theirs}"' in page
    post_form(marketer, f"/inbox/assign/{theirs}", {"user": str(user_id("staff"))})
    assert db.session.get(Contact, theirs).assigned_user_id == user_id("staff")
    change = db.session.query(AuditLog).filter_by(object_type="contacts", action="update").one()
    assert change.username == "marketer"
    assert "Who do I talk to?" in client_for("staff").get("/inbox/").get_data(as_text=True)


def test_saved_replies_are_managed_by_marketers_and_used_by_staff_with_merge_fields(app, db, client_for, post_form,
                                                                                   contacts):
    mine, _ = contacts
    marketer = client_for("marketer")
    bad = post_form(marketer, "/savedreplyview/add", {"title": "Quote", "body": "Hi {frist_name}"})
    assert "Unknown token {frist_name}" in bad.get_data(as_text=True)
    assert db.session.query(SavedReply).count() == 0
    post_form(marketer, "/savedreplyview/add", {"title": "Quote", "body": "Hi {first_name|there}, Friday at 10?"})
    reply = db.session.query(SavedReply).one()
    assert reply.created_by_id == user_id("marketer")
    staff = client_for("staff")
    assert staff.get("/savedreplyview/list/").status_code in (302, 403)
    assert post_form(staff, f"/savedreplyview/delete/{reply.id}").status_code in (302, 403)
    assert db.session.query(SavedReply).count() == 1
    page = staff.get(f"/conversations/thread/{mine}").get_data(as_text=True)
    assert 'data-body="Hi Ann, Friday at 10?"' in page


def test_one_off_texts_keep_the_quiet_hours_on_the_form_and_the_api(app, db, client_for, post_form, monkeypatch,
                                                                    contacts):
    from app import campaigns

    mine, _ = contacts
    late = datetime(2026, 11, 25, 2, 30, tzinfo=timezone.utc)  # 21:30 in Boston
    monkeypatch.setattr(campaigns, "sender_now", lambda now=None: late)
    staff = client_for("staff")
    post_form(staff, f"/conversations/send_text/{mine}", {"body": "Are you free tomorrow?"})
    page = staff.get(f"/contactview/show/{mine}").get_data(as_text=True)
    assert "Not sent: It is outside the hours a text may reach (617) 555-0123 (MA)" in page
    assert "Send it from Wednesday 25 Nov at 08:00 (EST)" in page
    api = staff.post("/api/v1/conversation/send_text", json={"contact_id": mine, "body": "Hi"},
                     headers={"X-CSRFToken": csrf_token(app, staff)})
    assert api.status_code == 400 and "outside the hours" in api.get_json()["message"]
    assert db.session.query(Message).filter_by(direction="outgoing").count() == 0
    monkeypatch.setattr(campaigns, "sender_now", lambda now=None: late + timedelta(hours=11))  # 8:30
    post_form(staff, f"/conversations/send_text/{mine}", {"body": "Are you free tomorrow?"})
    assert db.session.query(Message).filter_by(direction="outgoing").one().status == "queued"


def test_the_contact_page_has_the_name_edit_open_panels_and_one_conversation(app, db, client_for, contacts):
    from app.models import ContactList, ContactProperty, ListMember, Property

    mine, _ = contacts
    home = Property(key="k1", address="12 ELM ST", city="QUINCY", state="MA")
    lst = ContactList(name="Quincy owners")
    db.session.add_all([home, lst])
    db.session.flush()
    db.session.add_all([ContactProperty(contact_id=mine, property_id=home.id, role="owner"),
                        ListMember(contact_id=mine, list_id=lst.id)])
    db.session.commit()
    text_in(db, mine, "Is Friday OK?", 10)
    call_in(db, mine, 20, voicemail="https://files.example/vm.mp3")
    text_out(db, mine, "Friday at 10", 30)
    page = client_for("staff").get(f"/contactview/show/{mine}").get_data(as_text=True)
    assert re.search(r'<h1 id="contact-name">\s*Ann Owner\s*</h1>', page)
    assert f'href="/contactview/edit/{mine}"' in page
    assert f'<a href="/propertyview/show/{home.id}">12 ELM ST, QUINCY</a>' in page
    assert 'id="ContactPropertyView_href" class="panel-collapse collapse in"' in page
    assert 'id="ListMemberView_href" class="panel-collapse collapse in"' in page
    assert page.count('id="conversation"') == 1 and page.count("Is Friday OK?") == 1
    order = [page.index(s) for s in ("Is Friday OK?", "call-missed", "Friday at 10")]
    assert order == sorted(order), "texts and calls in the order they happened"


def test_home_counts_exactly_the_conversations_the_inbox_shows_waiting(app, db, client_for, post_form, contacts):
    mine, theirs = contacts
    text_in(db, mine, "Is Friday OK?", 10)
    call_in(db, theirs, 11)

    def numbers(client):
        home = client.get("/").get_data(as_text=True)
        page = client.get("/inbox/").get_data(as_text=True)
        waiting = re.search(r'id="dashboard-waiting">\s*(\d+)\s*<', home).group(1)
        return int(waiting), int(re.search(r'data-folder="open">(\d+)<', page).group(1))

    admin, staff = client_for("admin"), client_for("staff")
    assert numbers(admin) == (2, 2) and numbers(staff) == (1, 1)
    post_form(admin, f"/inbox/done/{mine}")
    assert numbers(admin) == (1, 1) and numbers(staff) == (0, 0)
