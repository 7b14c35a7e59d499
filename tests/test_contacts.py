"""One contact per phone, every phone in E.164, at least a name, phone or email, no value cut
without a word: the same rule (app.contacts.clean_contact) at every door: the contact form
(add and edit), the REST API (POST and PUT), the importer and an inbound text."""
import pytest
from flask_jwt_extended import create_access_token
from sqlalchemy import func, select

from app import campaigns
from app.contacts import ContactError, clean_contact
from app.models import Contact, ContactList, ListMember
from tests.conftest import user_id
from tests.test_campaigns import TUESDAY_10AM, fake, make_campaign, planned_and_running, sent_to  # noqa: F401
from tests.test_imports import import_bytes
from tests.test_webhooks import deliver, received, signer  # noqa: F401

TYPED = "+1 617 555 3020"
E164 = "+16175553020"


def contacts(db):
    db.session.expire_all()
    return db.session.scalars(select(Contact).order_by(Contact.id)).all()


def api(app, username):
    token = create_access_token(identity=str(user_id(username)), fresh=True)

    def call(method, url, body):  # a client per call, like curl: no cookies between calls
        return app.test_client().open(url, method=method, json=body, headers={"Authorization": f"Bearer {token}"})

    return call


# --- the rule itself ---------------------------------------------------------------------------

@pytest.mark.parametrize("values, field, reason", [
    ({"first_name": "Ann", "phone": "call me"}, "phone", "not a valid phone number"),
    ({"first_name": "Ann", "phone": "555-3020"}, "phone", "area code"),
    ({"first_name": "Ann", "email": "ann at example"}, "email", "not an email address"),
    ({"first_name": "x" * 5000}, "first_name", "5,000 characters long; the limit is 100"),
    ({"first_name": "Ann", "mail_state": "Mass"}, "mail_state", "the limit is 2"),
    ({"first_name": "  ", "phone": "", "email": None, "notes": "no one"}, "first_name", "at least a name"),
])
def test_clean_contact_refuses_with_the_reason(db, values, field, reason):
    with pytest.raises(ContactError) as refused:
        clean_contact(values)
    assert reason in refused.value.errors[field]


def test_clean_contact_normalises(db):
    assert clean_contact({"first_name": " Ann ", "phone": "(617) 555-3020", "email": " Ann@Example.COM "}) == {
        "first_name": "Ann", "phone": E164, "email": "ann@example.com"}


# --- the form ----------------------------------------------------------------------------------

def test_form_stores_the_phone_in_e164(db, client_for, post_form):
    post_form(client_for("marketer"), "/contactview/add", {"first_name": "Ann", "phone": TYPED, "email": "ANN@X.COM"})
    assert [(c.phone, c.email) for c in contacts(db)] == [(E164, "ann@x.com")]


@pytest.mark.parametrize("data, message", [
    ({"first_name": "Ann", "phone": "call me"}, "is not a valid phone number"),
    ({"first_name": "A" * 5000}, "the limit is 100"),
    ({"notes": "who?"}, "Give at least a name, a phone number or an email address."),
])
def test_form_refuses_a_bad_contact_and_says_why(db, client_for, post_form, data, message):
    page = post_form(client_for("marketer"), "/contactview/add", data)
    assert page.status_code == 200 and message in page.get_data(as_text=True)
    assert contacts(db) == []


def test_form_refuses_a_second_contact_with_the_same_phone_and_links_the_first(db, client_for, post_form):
    first = Contact(first_name="Ann", last_name="Lee", phone=E164)
    db.session.add(first)
    db.session.commit()
    page = post_form(client_for("marketer"), "/contactview/add", {"first_name": "Annie", "phone": "617-555-3020"})
    html = page.get_data(as_text=True)
    assert f'<a href="/contactview/show/{first.id}">Ann Lee</a>' in html and "one phone, one contact" in html
    assert [c.first_name for c in contacts(db)] == ["Ann"]


def test_form_edit_keeps_the_rule(db, client_for, post_form):
    ann, bob = Contact(first_name="Ann", phone=E164), Contact(first_name="Bob", phone="+16175553021")
    db.session.add_all([ann, bob])
    db.session.commit()
    marketer = client_for("marketer")
    page = post_form(marketer, f"/contactview/edit/{bob.id}", {"first_name": "Bob", "phone": "(617) 555 3020"})
    assert "(617) 555-3020 already belongs to" in page.get_data(as_text=True)
    post_form(marketer, f"/contactview/edit/{ann.id}", {"first_name": "Ann", "phone": TYPED, "notes": "kept"})
    post_form(marketer, f"/contactview/edit/{bob.id}", {"first_name": "Bob", "phone": "617.555.3099"})
    assert [(c.first_name, c.phone, c.notes) for c in contacts(db)] == [
        ("Ann", E164, "kept"), ("Bob", "+16175553099", None)]


def test_staff_are_told_of_a_duplicate_without_seeing_the_other_contact(db, client_for, post_form):
    theirs = Contact(first_name="Theodora", phone=E164, assigned_user_id=user_id("staff2"))
    mine = Contact(first_name="Minnie", phone="+16175553021", assigned_user_id=user_id("staff"))
    db.session.add_all([theirs, mine])
    db.session.commit()
    page = post_form(client_for("staff"), f"/contactview/edit/{mine.id}", {"first_name": "Minnie", "phone": TYPED})
    html = page.get_data(as_text=True)
    assert "assigned to someone else" in html and "Theodora" not in html
    assert contacts(db)[1].phone == "+16175553021"


# --- the REST API ------------------------------------------------------------------------------

def test_api_post_stores_e164_and_refuses_a_duplicate_with_the_existing_id(app, db):
    post = api(app, "marketer")
    created = post("POST", "/api/v1/contact/", {"first_name": "Ann", "phone": TYPED})
    assert created.status_code == 201 and created.get_json()["result"]["phone"] == E164
    again = post("POST", "/api/v1/contact/", {"first_name": "Annie", "phone": "(617) 555-3020"})
    assert again.status_code == 409
    assert again.get_json()["existing_id"] == created.get_json()["id"]
    assert "(617) 555-3020 already belongs to Ann" in again.get_json()["message"]["phone"][0]
    assert len(contacts(db)) == 1


@pytest.mark.parametrize("body, field, message", [
    ({"first_name": "Ann", "phone": "call me"}, "phone", "not a valid phone number"),
    ({"first_name": "Ann", "email": "nope"}, "email", "not an email address"),
    ({"notes": "who?"}, "first_name", "at least a name"),
])
def test_api_post_refuses_a_bad_contact_with_422_and_the_reason(app, db, body, field, message):
    response = api(app, "marketer")("POST", "/api/v1/contact/", body)
    assert response.status_code == 422 and message in str(response.get_json()["message"][field])
    assert contacts(db) == []


def test_api_refuses_an_overlong_name_naming_the_limit(app, db):
    response = api(app, "marketer")("POST", "/api/v1/contact/", {"first_name": "A" * 5000, "phone": TYPED})
    assert response.status_code == 422 and "100" in str(response.get_json()["message"])
    assert contacts(db) == []


def test_api_put_keeps_the_rule(app, db):
    ann, bob = Contact(first_name="Ann", phone=E164), Contact(first_name="Bob", phone="+16175553021")
    db.session.add_all([ann, bob])
    db.session.commit()
    put = api(app, "admin")
    clash = put("PUT", f"/api/v1/contact/{bob.id}", {"phone": "617 555 3020"})
    assert clash.status_code == 409 and clash.get_json()["existing_id"] == ann.id
    clash = put("PUT", f"/api/v1/contact/{bob.id}", {"phone": E164})  # already E.164: no unique-index 500
    assert clash.status_code == 409 and clash.get_json()["existing_id"] == ann.id
    assert put("PUT", f"/api/v1/contact/{bob.id}", {"phone": "bad"}).status_code == 422
    ok = put("PUT", f"/api/v1/contact/{bob.id}", {"phone": "(617) 555-3099", "email": "BOB@X.COM"})
    assert ok.status_code == 200
    assert [(c.phone, c.email) for c in contacts(db)] == [(E164, None), ("+16175553099", "bob@x.com")]


# --- the importer and an inbound text reach the same contact -----------------------------------

def test_typed_contact_imported_again_is_one_contact_texted_once(app, db, client_for, post_form, tmp_path, fake):  # noqa: F811
    """The issue's scenario: typed "+1 617 555 3020" on the form, imported as +16175553020."""
    post_form(client_for("marketer"), "/contactview/add", {"first_name": "Ann", "phone": TYPED})
    imp = import_bytes(tmp_path, f"First Name,Last Name,Mobile\nAnn,Lee,{E164}\nBob,Ray,617-555-3021\n".encode(),
                       name="people.csv", list_name="Spring")
    assert imp.status == "succeeded", imp.error
    assert [(c.first_name, c.last_name, c.phone) for c in contacts(db)] == [
        ("Ann", "Lee", E164), ("Bob", "Ray", "+16175553021")]
    lst = db.session.scalar(select(ContactList).filter_by(name="Spring"))
    assert db.session.scalar(select(func.count()).select_from(ListMember).where(ListMember.list_id == lst.id)) == 2
    campaign = make_campaign(db, [lst])
    planned_and_running(db, campaign)
    campaigns.send_due_messages(campaign.id, now=TUESDAY_10AM)
    assert sent_to(fake) == [E164, "+16175553021"]


def test_a_reply_from_a_typed_number_attaches_to_the_typed_contact(app, db, client_for, post_form, signer,  # noqa: F811
                                                                  run_jobs):
    post_form(client_for("marketer"), "/contactview/add", {"first_name": "Ann", "phone": TYPED})
    deliver(app, signer, received(signer, "Yes, how much?", phone="617-555-3020"))
    run_jobs()
    found = contacts(db)
    assert len(found) == 1 and [m.body for m in found[0].messages] == ["Yes, how much?"]
