"""A contact's data on request: export everything about one person; erase them, keeping only a
hashed opt-out so a re-imported phone is never texted again."""
import hashlib
import json

import pytest
from sqlalchemy import func, select

from app import campaigns, messages, opt_outs
from app.history_models import Call
from app.models import (
    AuditLog,
    CampaignRecipient,
    Contact,
    ContactList,
    ContactProperty,
    ListMember,
    Message,
    OptOut,
    Property,
    Todo,
    WebhookEvent,
)
from app.opt_outs import is_opted_out
from tests.conftest import user_id
from tests.test_campaigns import (
    NUMBER,
    TUESDAY_10AM,
    fake,  # noqa: F401  (the fixture)
    make_campaign,
    planned_and_running,
    sent_to,
)
from tests.test_imports import import_bytes

PHONE = "+16175550142"
PERSONAL = ["Rosalind", "Quarry", PHONE, "rosalind@example.com", "Basement crack on Elm", "14 Quarry Ln",
            "QUARRY,ROSALIND"]


@pytest.fixture
def rosalind(db, client_for, post_form):
    """A contact made through the screens (so the audit trail holds her values), with a property, a list,
    a text each way, a call, a todo and a raw webhook event."""
    admin = client_for("admin")
    post_form(admin, "/contactview/add", {"first_name": "Rosalind", "last_name": "Quarry", "phone": PHONE,
                                          "email": "rosalind@example.com", "mail_address": "14 Quarry Ln"})
    contact = db.session.scalars(select(Contact)).one()
    post_form(admin, f"/contactview/edit/{contact.id}", {"first_name": "Rosalind", "last_name": "Quarry",
                                                        "phone": PHONE, "email": "rosalind@example.com",
                                                        "mail_address": "14 Quarry Ln", "notes": "Basement crack on Elm"})
    home = Property(key="apn-1", apn="1", address="9 Elm St", city="Quincy", state="MA", zip="02169",
                    owner_name="QUARRY,ROSALIND", mail_address="14 Quarry Ln")
    spring = ContactList(name="Spring")
    db.session.add_all([home, spring])
    db.session.flush()
    db.session.add_all([
        ContactProperty(contact_id=contact.id, property_id=home.id, role="primary"),
        ListMember(list_id=spring.id, contact_id=contact.id),
        Message(contact_id=contact.id, direction="outgoing", status="delivered", body="Hi Rosalind, Matt here",
                from_phone=NUMBER, to_phone=PHONE),
        Message(contact_id=contact.id, direction="incoming", status="received", body="Basement crack on Elm",
                from_phone=PHONE, to_phone=NUMBER, provider_id="AC1"),
        Call(contact_id=contact.id, direction="incoming", status="completed", duration=42, phone=PHONE,
             provider_id="ACcall", summary="Asked about the basement crack"),
        Todo(title="Call Rosalind back", contact_id=contact.id),
        WebhookEvent(provider_event_id="EV1", type="message.received", status="processed",
                     body=json.dumps({"data": {"object": {"from": PHONE, "text": "Basement crack on Elm"}}})),
    ])
    db.session.commit()
    return contact.id


def test_export_holds_every_field_link_list_message_call_and_audit_row(db, client_for, rosalind):
    response = client_for("marketer").get(f"/contactview/export_data/{rosalind}")
    assert response.status_code == 200 and "attachment" in response.headers["Content-Disposition"]
    data = json.loads(response.get_data(as_text=True))
    assert data["contact"]["first_name"] == "Rosalind" and data["contact"]["email"] == "rosalind@example.com"
    assert data["contact"]["notes"] == "Basement crack on Elm" and data["contact"]["mail_address"] == "14 Quarry Ln"
    assert [(p["role"], p["owner_name"]) for p in data["properties"]] == [("primary", "QUARRY,ROSALIND")]
    assert [entry["name"] for entry in data["lists"]] == ["Spring"]
    assert [m["body"] for m in data["messages"]] == ["Hi Rosalind, Matt here", "Basement crack on Elm"]
    assert [(c["status"], c["duration"], c["summary"]) for c in data["calls"]] == [
        ("completed", 42, "Asked about the basement crack")]
    assert [t["title"] for t in data["todos"]] == ["Call Rosalind back"]
    assert [(a["action"], a["object_type"]) for a in data["audit"]][:2] == [("create", "contacts"),
                                                                           ("update", "contacts")]
    assert all("username" not in a and "ip" not in a for a in data["audit"])  # staff details are not theirs
    export = db.session.scalars(select(AuditLog).filter_by(action="export", object_id=str(rosalind))).one()
    assert export.username == "marketer" and export.object_type == "contacts" and "2 messages" in export.detail


def test_contact_page_offers_export_and_erase_by_role(db, client_for, rosalind):
    admin = client_for("admin").get(f"/contactview/show/{rosalind}").get_data(as_text=True)
    marketer = client_for("marketer").get(f"/contactview/show/{rosalind}").get_data(as_text=True)
    assert "Export this contact" in admin and "Erase this contact" in admin
    assert "Export this contact" in marketer and "Erase this contact" not in marketer


@pytest.mark.parametrize("username", ["marketer", "staff"])
def test_only_admins_can_erase(db, client_for, post_form, rosalind, username):
    client = client_for(username)
    post_form(client, f"/contactview/erase/{rosalind}", {"confirm": "erase"})
    assert db.session.get(Contact, rosalind) is not None


def test_staff_cannot_export_even_their_own_contact(db, client_for, rosalind):
    db.session.get(Contact, rosalind).assigned_user_id = user_id("staff")
    db.session.commit()
    assert client_for("staff").get(f"/contactview/export_data/{rosalind}").status_code in (302, 403)
    assert db.session.query(AuditLog).filter_by(action="export").count() == 0


def test_erase_asks_for_confirmation_first(db, client_for, post_form, rosalind):
    admin = client_for("admin")
    page = admin.get(f"/contactview/erase/{rosalind}").get_data(as_text=True)
    assert "cannot be undone" in page and "3 messages" in page
    post_form(admin, f"/contactview/erase/{rosalind}", {})
    assert db.session.get(Contact, rosalind) is not None


def test_erasure_removes_personal_data_and_keeps_a_hashed_opt_out(db, client_for, post_form, rosalind):
    admin = client_for("admin")
    response = post_form(admin, f"/contactview/erase/{rosalind}", {"confirm": "erase"})
    assert response.status_code == 302
    db.session.expire_all()
    assert db.session.get(Contact, rosalind) is None
    assert db.session.scalar(select(func.count()).select_from(ListMember)) == 0
    assert db.session.scalar(select(func.count()).select_from(Todo)) == 0
    left = db.session.scalars(select(Message).order_by(Message.id)).all()
    assert [(m.body, m.from_phone, m.to_phone) for m in left] == [(None, NUMBER, None), (None, None, NUMBER)]
    call = db.session.scalars(select(Call)).one()
    assert (call.contact_id, call.phone, call.summary, call.duration) == (None, None, None, 42)
    assert db.session.scalars(select(Property.owner_name)).one() is None
    suppression = db.session.scalars(select(OptOut)).one()
    assert suppression.phone is None and suppression.active and suppression.source == "erasure"
    assert suppression.phone_hash == hashlib.sha256(PHONE.encode()).hexdigest()
    assert is_opted_out(PHONE)
    everything = json.dumps([[a.changes, a.detail] for a in db.session.scalars(select(AuditLog))])
    everything += "".join(e.body for e in db.session.scalars(select(WebhookEvent)))
    assert not [value for value in PERSONAL if value in everything]
    erasure = db.session.scalars(select(AuditLog).filter_by(action="erasure")).one()
    assert (erasure.username, erasure.object_type, erasure.object_id) == ("admin", "contacts", str(rosalind))
    assert erasure.changes["messages"] == 2
    history = db.session.scalars(select(AuditLog).filter_by(object_type="contacts", object_id=str(rosalind),
                                                            action="update")).one()
    assert history.changes == {"notes": "erased"}  # what changed stays, the values do not


def test_an_erased_phone_reimported_is_never_texted(app, db, tmp_path, client_for, post_form, rosalind, fake):  # noqa: F811
    post_form(client_for("admin"), f"/contactview/erase/{rosalind}", {"confirm": "erase"})
    imp = import_bytes(tmp_path, b"First Name,Phone\nRosalind,617-555-0142\nBertha,617-555-0143\n",
                       fmt="contacts", list_name="Reimported", mapping={"First Name": "first_name", "Phone": "phone"})
    assert imp.status == "succeeded", imp.error
    again = db.session.scalars(select(Contact).filter_by(phone=PHONE)).one()  # a new contact row
    campaign = make_campaign(db, [db.session.scalars(select(ContactList).filter_by(name="Reimported")).one()])
    planned_and_running(db, campaign)
    campaigns.send_due_messages(campaign.id, now=TUESDAY_10AM)
    assert sent_to(fake) == ["+16175550143"]
    excluded = db.session.scalars(select(CampaignRecipient).filter_by(phone=PHONE)).one()
    assert excluded.exclusion_reason == "opted_out"
    with pytest.raises(opt_outs.OptedOut):
        messages.queue_text(PHONE, "Hi again", contact_id=again.id)


def test_erasure_keeps_the_owner_details_of_a_house_another_contact_shares(db, client_for, post_form, rosalind):
    home = db.session.scalars(select(Property)).one()
    spouse = Contact(first_name="Ray", last_name="Quarry", phone="+16175550177")
    db.session.add(spouse)
    db.session.flush()
    db.session.add(ContactProperty(contact_id=spouse.id, property_id=home.id, role="secondary"))
    db.session.commit()
    post_form(client_for("admin"), f"/contactview/erase/{rosalind}", {"confirm": "erase"})
    db.session.expire_all()
    assert db.session.get(Contact, rosalind) is None
    kept = db.session.get(Property, home.id)
    assert (kept.owner_name, kept.mail_address) == ("QUARRY,ROSALIND", "14 Quarry Ln")
    assert [link.contact_id for link in kept.contacts] == [spouse.id]
