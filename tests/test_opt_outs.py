"""What a reply means (the one classifier), and the opt-out list every door writes and every
sender reads: by phone or, for an erased contact, by its hash."""
import hashlib
from datetime import datetime

import pytest
from sqlalchemy import select

from app import opt_outs
from app.models import OptOut
from app.opt_outs import classify_opt_out, is_opted_out, opt_in, opt_out, opted_out_phones

PHONE = "+16175550123"

KEYWORD = [
    "STOP", "stop", "Stop.", " STOP!! ", "s t o p", "StopAll", "STOP ALL", "UNSUBSCRIBE", "Cancel", "END", "quit",
    "Revoke", "OPTOUT", "opt out", "Opt-Out", "REMOVE", "\"stop\"", "STOP STOP STOP", "stop stop", "Ｓｔｏｐ",
    "ＳＴＯＰ", "unsub", "Unsub!", "Stop 🛑", "STOP!!! 😡😡", "🛑 STOP", "Stopp", "STOOOOP", "sotp", "stpo",
    "unsubscibe", "Unsubcribe", "UNSUSCRIBE", "unsubscrbie!", "Stop\u0000", "stop\n", "*STOP*", "STOP.STOP", "stop, quit",
    "Parar", "PARAR", "baja", "Baja.", "Basta", "alto", "Para", "Cancelar", "DNC",
]
PHRASE = [
    "stop texting me", "Please stop texting me.", "STOP TEXTING ME!!!", "please remove me from your list",
    "Remove me", "take me off", "Take me off your list please", "don't text me again", "Do not contact me",
    "Stop please", "please stop", "Stop. Not interested", "no more texts", "unsubscribe me", "I want to opt out",
    "wrong number", "Wrong number, stop messaging", "stop sending me these", "lose my number",
    "Not interested, remove my number", "leave me alone", "Dont text this number", "do not contact",
    "Quit texting me", "I don't want these texts", "I don’t want these texts", "remove from list", "STOP NOW",
    "Stop it", "stop pls", "Pls stop!!", "No. Stop.", "No stop", "Not interested, stop", "not interested please stop",
    "Stop, I sold the house", "Please take my number off your list", "Get me off your list", "Delete my number",
    "Remove my number from your database", "You can stop texting me now, we hired someone",
    "How do I unsubscribe?", "Opt me out", "I dont want any more messages", "I really don't want texts",
    "Don't message me", "Never text this number again", "Please do not text", "Do not text or call",
    "Stop spamming me", "Stop the spam", "Enough with the texts", "I'm sick of these texts",
    "I told you to stop", "I said stop", "STOP TXTING ME", "stop msging me", "stopp texting me",
    "don't ever text me again", "Go away", "fuck off", "Leave me alone please!", "I'll report you as spam",
    "Reported as spam", "Blocking this number", "Not interested in your texts", "wrong #", "Wrong person",
    "Take us off", "Quit it", "remove me from this list 🙄", "please remove me from ur list thx",
    "Put me on your do not call list", "Do not disturb", "STOP TEXTING ME OR I WILL CALL MY LAWYER",
    "Hi, please stop texting this number. Thanks", "i dont want to be contacted", "Stop contacting me!!!!",
    "Stop calling and texting me", "Cancel subscription", "Stop bugging me", "go to hell", "I want you to stop", "please stop, thanks", "Ok stop", "Stop now please", "STOP!!!! I'm not selling",
    # Spanish
    "No me envíes más mensajes", "no me envies mas mensajes", "Por favor no me manden más mensajes",
    "Dejen de mandarme mensajes", "deja de escribirme", "Quiero darme de baja", "Dame de baja por favor",
    "Denme de baja", "No quiero recibir más mensajes", "no quiero mensajes", "Para por favor", "PARA YA",
    "Basta ya", "Ya basta de mensajes", "Sácame de su lista", "Bórrame de la lista", "Eliminame",
    "Número equivocado", "No más mensajes", "Parar, gracias", "no me escribas mas",
]
OPT_IN = ["START", "unstop", "Start.", "start!", "UNSTOP", "Ｓｔａｒｔ"]
NOT_OPT_OUT = [
    "can you stop by Friday", "end of the week works", "Can you stop by Friday?", "The crack is at the end of the wall",
    "I'd like to cancel my Tuesday appointment", "Can you remove the old stairs too?",
    "Don't stop now, the quote looks good", "When do you start?", "Yes please, how much?", "", "👍",
    "I quit smoking last year lol", "take a look at the photo", "Don't text me before 9am please, I work nights",
    "Dont text me after 8pm", "Please don't text me so early", "don't text me until Monday, I'm away",
    "Don't text me during work hours, call after 5", "Stop by anytime", "Feel free to stop in tomorrow",
    "The water won't stop coming in", "Why did you stop texting me?", "Don't stop texting me, I need the quote",
    "Can you make the leak stop?", "It's near the bus stop", "Yes", "Who is this?", "How much for a bulkhead?",
    "No thanks", "Sure, end of the month is fine", "We can meet at the end of the driveway",
    "Thanks! We'll see you Tuesday", "Call me instead, I don't text much", "I don't text much, call me",
    "Can you remove the debris after?", "Cancel the Thursday visit please, rain", "I quit my job so I'm home all day",
    "Please do the front steps too", "Great, please start Monday", "Stop the water from coming in is all I need",
    "Text me a photo of the quote", "Ok", "Lol", "Can you stop at 3?", "The crack doesn't stop at the wall",
    "I hope it stops raining", "I don't want you to stop", "No more cracks, thanks", "Nonstop rain here", "don't remove the old railing",
    "¿Para cuándo pueden venir?", "Sí, ¿cuánto cuesta?", "Está bien, gracias", "La presión del agua es baja",
    "No me escribas antes de las 9", "Hola, para mañana está bien", "Me pueden mandar el precio?",
]
UNCERTAIN = [
    "Not interested", "not interested thanks", "No estoy interesado", "No me interesa", "Is this spam?",
    "This is a scam", "I sold the house last year", "I'm not the owner", "I never signed up for this",
    "How did you get my number? This is harassment", "Stip", "Stoo", "Stopo", "🛑", "Cancel please",
    "End now", "stop i sold the house", "No tengo interés", "no more", "Enough!", "Do you want me to call my lawyer", "I no longer own that property",
]


@pytest.mark.parametrize("text", KEYWORD)
def test_keyword_only_messages_opt_out(text):
    assert classify_opt_out(text) == "keyword"


@pytest.mark.parametrize("text", PHRASE)
def test_clear_requests_opt_out(text):
    assert classify_opt_out(text) == "phrase"


@pytest.mark.parametrize("text", OPT_IN)
def test_start_opts_back_in(text):
    assert classify_opt_out(text) == "opt_in"


@pytest.mark.parametrize("text", NOT_OPT_OUT)
def test_ordinary_sentences_are_not_opt_outs(text):
    assert classify_opt_out(text) is None


@pytest.mark.parametrize("text", UNCERTAIN)
def test_unclear_replies_go_to_a_person(text):
    assert classify_opt_out(text) == "uncertain"


def test_the_tables_are_large_and_cover_both_languages():
    assert len(KEYWORD) + len(PHRASE) >= 150 and len(NOT_OPT_OUT) >= 50 and len(UNCERTAIN) >= 15
    spanish = [t for t in PHRASE + NOT_OPT_OUT if any(w in t.lower() for w in ("mensajes", "baja", "para", "me "))]
    assert len(spanish) >= 20


# --- the list: every writer fills the hash, every reader honours it ------------------------------

def test_opt_out_normalises_the_phone_and_fills_its_hash(db):
    row = opt_out("(617) 555-0123", "manual", reason="called the office")
    db.session.commit()
    assert row.phone == PHONE and row.phone_hash == hashlib.sha256(PHONE.encode()).hexdigest()
    assert is_opted_out("617.555.0123")


def test_opt_out_refuses_what_is_not_a_phone(db):
    with pytest.raises(opt_outs.InvalidPhone, match="not a valid phone number"):
        opt_out("call me", "manual")
    assert db.session.scalar(select(OptOut.id)) is None


def test_a_hashed_only_opt_out_still_blocks(db):
    """An erased contact keeps only the hash of its phone: it must still never be texted."""
    db.session.add(OptOut(phone=None, phone_hash=opt_outs.phone_hash(PHONE), source="keyword"))
    db.session.commit()
    assert is_opted_out(PHONE) and opted_out_phones([PHONE, "+16175550124"]) == {PHONE}
    again = opt_out(PHONE, "manual")  # the same phone opting out again finds that row
    db.session.commit()
    assert db.session.scalar(select(OptOut.id)) == again.id and db.session.query(OptOut).count() == 1


@pytest.mark.parametrize("source, lifted", [("keyword", True), ("phrase", True), ("manual", False), ("dnc", False),
                                            ("api", False), ("bulk", False)])
def test_start_lifts_only_a_keyword_or_phrase_opt_out(db, source, lifted):
    opt_out(PHONE, source, reason="why")
    db.session.commit()
    assert (opt_in(PHONE) is not None) == lifted
    db.session.commit()
    assert is_opted_out(PHONE) != lifted


def test_the_planner_and_the_sender_skip_a_hashed_only_opt_out(db, fake_openphone):
    from datetime import time

    from app import campaigns
    from app.messages import queue_text, send_message
    from app.models import Campaign, CampaignRecipient, CampaignVariant, Contact, ContactList, ListMember, Message

    queued = queue_text(PHONE, "Your quote is ready")  # queued before the erasure
    lst = ContactList(name="L")
    contact = Contact(first_name="Ann", phone=PHONE)
    db.session.add_all([lst, contact, ListMember(list=lst, contact=contact)])
    campaign = Campaign(name="C", sending_number="+16175550100", lists=[lst], window_start=time(9),
                        window_end=time(17), variants=[CampaignVariant(label="A", template="Hi")])
    db.session.add_all([campaign, OptOut(phone=None, phone_hash=opt_outs.phone_hash(PHONE), source="keyword")])
    db.session.commit()
    campaigns.change_status(campaign.id, "scheduled")
    assert campaigns.plan_audience(campaign.id) == {"opted_out": 1}
    assert db.session.scalar(select(CampaignRecipient.exclusion_reason)) == "opted_out"
    assert send_message(queued.id) == "cancelled" and fake_openphone.sent == []
    assert db.session.get(Message, queued.id, populate_existing=True).status == "cancelled"


def test_every_door_that_opts_out_fills_the_hash(app, db, tmp_path):
    from app.contact_actions import opt_out_contacts
    from app.imports import create_import, run_import
    from app.models import Contact

    dnc = tmp_path / "dnc.csv"
    dnc.write_text("phone\n617-555-0101\n")
    with open(dnc, "rb") as f:
        imp = create_import(f, "dnc.csv", fmt="dnc")
    run_import(imp.id)
    contact = Contact(phone="+16175550102")
    db.session.add(contact)
    db.session.commit()
    opt_out_contacts([contact.id])
    opt_out("617 555 0103", "manual")
    db.session.commit()
    rows = db.session.execute(select(OptOut.phone, OptOut.phone_hash).order_by(OptOut.phone)).all()
    assert [r.phone for r in rows] == ["+16175550101", "+16175550102", "+16175550103"]
    assert all(r.phone_hash == opt_outs.phone_hash(r.phone) for r in rows)


# --- the doors: the Opt-outs screen, its API, "Do not text", Possible opt-outs ------------------

def _flashes(client):
    with client.session_transaction() as session:
        return [message for _, message in session.pop("_flashes", [])]


def test_opt_outs_plus_saves_a_manual_opt_out_with_who_and_why(db, client_for, post_form):
    from tests.conftest import user_id

    marketer = client_for("marketer")
    response = post_form(marketer, "/optoutview/add", {"phone": "(617) 555-0123", "reason": "called the office"})
    row = db.session.scalars(select(OptOut)).one()
    assert response.status_code == 302 and response.location.endswith(f"/optoutview/show/{row.id}")  # the saved one
    assert (row.phone, row.source, row.reason, row.created_by_id, row.active) == (
        PHONE, "manual", "called the office", user_id("marketer"), True)
    assert row.phone_hash == opt_outs.phone_hash(PHONE)
    assert not any("SQL" in str(m) or "constraint" in str(m) for m in _flashes(marketer))
    listing = marketer.get("/optoutview/list/").get_data(as_text=True)
    assert "(617) 555-0123" in listing and "called the office" in listing and "marketer" in listing


def test_opt_outs_plus_refuses_a_bad_phone_and_revives_a_lifted_one(db, client_for, post_form):
    marketer = client_for("marketer")
    page = post_form(marketer, "/optoutview/add", {"phone": "call me", "reason": "x"}).get_data(as_text=True)
    assert "is not a valid phone number" in page and db.session.scalar(select(OptOut.id)) is None
    opt_out(PHONE, "keyword")
    opt_in(PHONE)
    db.session.commit()
    again = post_form(marketer, "/optoutview/add", {"phone": "617 555 0123", "reason": "asked again by phone"})
    db.session.expire_all()
    row = db.session.scalars(select(OptOut)).one()
    assert row.active and row.source == "manual" and row.reason == "asked again by phone"
    assert again.location.endswith(f"/optoutview/show/{row.id}")


def test_opt_out_api_lists_and_creates_for_marketers_and_refuses_staff(app, db):
    from tests.test_contacts import api

    marketer, staff = api(app, "marketer"), api(app, "staff")
    created = marketer("POST", "/api/v1/optout/", {"phone": "617-555-0123", "reason": "email request"})
    assert created.status_code == 201 and created.get_json()["result"]["phone"] == PHONE
    bad = marketer("POST", "/api/v1/optout/", {"phone": "12"})
    assert bad.status_code == 422 and "not a valid phone number" in bad.get_json()["message"]["phone"][0]
    listed = marketer("GET", "/api/v1/optout/", None).get_json()
    assert listed["count"] == 1
    assert {k: listed["result"][0][k] for k in ("phone", "source", "reason", "active")} == {
        "phone": PHONE, "source": "api", "reason": "email request", "active": True}
    assert "created_at" in listed["result"][0]
    assert staff("GET", "/api/v1/optout/", None).status_code == 403
    assert staff("POST", "/api/v1/optout/", {"phone": "617-555-0124"}).status_code == 403
    assert db.session.query(OptOut).count() == 1


def test_staff_mark_their_own_contact_do_not_text_and_the_page_says_why(db, client_for, post_form):
    from app.models import AuditLog, Contact
    from tests.conftest import user_id

    mine = Contact(first_name="Minnie", phone=PHONE, assigned_user_id=user_id("staff"))
    theirs = Contact(first_name="Theo", phone="+16175550124", assigned_user_id=user_id("staff2"))
    db.session.add_all([mine, theirs])
    db.session.commit()
    staff = client_for("staff")
    assert 'id="do-not-text"' in staff.get(f"/contactview/show/{mine.id}").get_data(as_text=True)
    assert post_form(staff, f"/contactview/do_not_text/{theirs.id}", {"reason": "x"}).status_code == 404
    post_form(staff, f"/contactview/do_not_text/{mine.id}", {"reason": "asked on the phone"})
    row = db.session.scalars(select(OptOut)).one()
    assert (row.phone, row.source, row.created_by_id) == (PHONE, "manual", user_id("staff"))
    audit = db.session.scalars(select(AuditLog).where(AuditLog.action == "do_not_text")).one()
    assert audit.object_id == str(mine.id) and audit.username == "staff"
    page = staff.get(f"/contactview/show/{mine.id}").get_data(as_text=True)
    assert "Opted out" in page and "recorded by hand by staff" in page and "asked on the phone" in page
    assert "A START reply does not lift it" in page and 'id="send-text"' not in page


def _uncertain_reply(db, contact, body):
    from app.models import Message

    message = Message(direction="incoming", status="received", body=body, from_phone=contact.phone,
                      contact_id=contact.id, opt_out_class="uncertain")
    db.session.add(message)
    db.session.commit()
    return message.id


def test_possible_opt_outs_are_decided_by_a_person(db, client_for, post_form):
    from app.models import Contact, Message
    from tests.conftest import user_id

    mine = Contact(first_name="Minnie", phone=PHONE, assigned_user_id=user_id("staff"))
    theirs = Contact(first_name="Theo", phone="+16175550124", assigned_user_id=user_id("staff2"))
    db.session.add_all([mine, theirs])
    db.session.commit()
    keep, drop = _uncertain_reply(db, mine, "Not interested"), _uncertain_reply(db, theirs, "Is this spam?")
    staff_page = client_for("staff").get("/possibleoptoutview/list/").get_data(as_text=True)
    assert "Not interested" in staff_page and "Is this spam?" not in staff_page
    marketer = client_for("marketer")
    page = marketer.get("/possibleoptoutview/list/").get_data(as_text=True)
    assert "Not interested" in page and "Is this spam?" in page
    post_form(marketer, "/possibleoptoutview/action_post", {"action": "confirm_opt_out", "rowid": keep})
    post_form(marketer, "/possibleoptoutview/action_post", {"action": "dismiss_opt_out", "rowid": drop})
    db.session.expire_all()
    assert is_opted_out(PHONE) and not is_opted_out("+16175550124")
    assert db.session.scalars(select(OptOut)).one().message_id == keep
    assert all(m.opt_out_reviewed_at for m in db.session.scalars(select(Message)))
    assert "Not interested" not in marketer.get("/possibleoptoutview/list/").get_data(as_text=True)


def test_the_opt_out_note_gives_the_day_in_the_company_zone(app, db):
    row = OptOut(phone="+16175550177", source="dnc", active=True, created_at=datetime(2026, 12, 1, 3, 0))  # Nov 30, 22:00 ET
    assert opt_outs.describe(row) == "Opted out Nov 30, 2026: on a do-not-contact file. A START reply does not lift it."
