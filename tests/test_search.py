"""Global search and the contact list's phone filter: a phone in any format, names, emails, street
addresses; Staff find only their own contacts, on the screen and in the API."""
import re

import pytest

from app import search
from app.contact_actions import matching_contact_ids
from app.models import Contact, ContactProperty, Property
from tests.conftest import user_id
from tests.test_campaigns import bearer

FORMATS = ["(978) 656-7092", "978-656-7092", "9786567092", "+19786567092", "+1 978.656.7092", "656-7092"]


@pytest.fixture
def book(db):
    """Mary O'Brien (Staff's, owns 954 Washington St), Bob Ray (staff2's), Ann Lee (nobody's)."""
    mary = Contact(first_name="Mary", last_name="O'Brien", phone="+19786567092", email="mary@example.com",
                   mail_address="10 Mail Rd", assigned_user_id=user_id("staff"))
    bob = Contact(first_name="Bob", last_name="Ray", phone="+16175550123", email="bob@ray.example",
                  assigned_user_id=user_id("staff2"))
    ann = Contact(first_name="Ann", last_name="Lee", phone="+16175550199", email="ann@example.com")
    house = Property(key="addr:954 WASHINGTON ST|QUINCY|02169", address="954 WASHINGTON ST", city="QUINCY",
                     zip="02169", owner_name="O'BRIEN MARY")
    shed = Property(key="addr:3 ELM ST|QUINCY|02169", address="3 ELM ST", city="QUINCY", zip="02169")
    db.session.add_all([mary, bob, ann, house, shed, ContactProperty(contact=mary, property=house),
                        ContactProperty(contact=bob, property=shed)])
    db.session.commit()
    return {"mary": mary, "bob": bob, "ann": ann, "house": house, "shed": shed}


def names(results):
    return sorted(str(c) for c in results["contacts"])


@pytest.mark.parametrize("typed", FORMATS)
def test_a_phone_in_any_format_finds_its_contact(app, book, typed):
    with app.test_request_context():
        assert names(search.search(typed)) == ["Mary O'Brien"]


@pytest.mark.parametrize("typed,found", [("mary", ["Mary O'Brien"]), ("o'brien mary", ["Mary O'Brien"]),
                                         ("RAY.EXAMPLE", ["Bob Ray"]), ("10 mail", ["Mary O'Brien"]),
                                         ("lee", ["Ann Lee"]), ("nobody", []), ("a", [])])
def test_names_emails_and_mailing_streets_find_contacts(app, book, typed, found):
    with app.test_request_context():
        assert names(search.search(typed)) == found


def test_a_street_address_finds_the_property_and_an_owner_finds_their_properties(app, book):
    with app.test_request_context():
        by_street = search.search("954 washington")
        assert [p.address for p in by_street["properties"]] == ["954 WASHINGTON ST"]
        by_owner = search.search("(978) 656-7092")
        assert [p.address for p in by_owner["properties"]] == ["954 WASHINGTON ST"]


@pytest.mark.parametrize("typed", ["quincy", "Quincy", "QUINCY", "02169", "02169-1234"])
def test_a_town_or_zip_finds_its_properties_and_their_owners(app, book, typed):
    with app.test_request_context():
        found = search.search(typed)
        assert sorted(p.address for p in found["properties"]) == ["3 ELM ST", "954 WASHINGTON ST"]
        assert names(found) == ["Bob Ray", "Mary O'Brien"]  # the owners; Ann owns nothing there
        staff = search.search(typed, user_id=user_id("staff"))
        assert names(staff) == ["Mary O'Brien"] and [p.address for p in staff["properties"]] == ["954 WASHINGTON ST"]
        assert search.search("braintree")["properties"] == [] and names(search.search("02170")) == []


def test_more_matches_than_shown_are_said_on_the_page_and_in_the_api(app, db, book, client_for):
    db.session.add_all([Property(key=f"addr:{n} OAK ST|QUINCY|02169", address=f"{n} OAK ST", city="QUINCY",
                                 zip="02169") for n in range(1, 25)])
    db.session.commit()
    with app.test_request_context():
        found = search.search("quincy")
    assert len(found["properties"]) == 20 and found["more_properties"] and not found["more_contacts"]
    page = client_for("admin").get("/search/?q=Quincy").get_data(as_text=True)
    assert 'id="property-hits">20+<' in page and "The first 20 are shown" in page and 'id="contact-hits">2<' in page
    answer = client_for("admin").get("/api/v1/search/?q=quincy", headers=bearer("admin")).get_json()
    assert answer["more_properties"] is True and answer["more_contacts"] is False


def test_the_search_page_groups_contacts_and_properties_and_staff_see_only_theirs(app, book, client_for):
    marketer, staff = client_for("marketer"), client_for("staff")
    page = marketer.get("/search/?q=st").get_data(as_text=True)
    assert re.search(r'id="property-hits">2<', page) and re.search(r'id="contact-hits">0<', page)
    page = marketer.get("/search/?q=(978) 656-7092").get_data(as_text=True)
    assert f'href="/contactview/show/{book["mary"].id}"' in page and "954 WASHINGTON ST" in page
    assert 'id="global-search"' in page and 'name="q"' in page
    mine = staff.get("/search/?q=example").get_data(as_text=True)
    assert "Mary O&#39;Brien" in mine and "Bob Ray" not in mine and "Ann Lee" not in mine
    assert re.search(r'id="contact-hits">1<', mine)
    theirs = staff.get("/search/?q=617-555-0123").get_data(as_text=True)
    assert re.search(r'id="contact-hits">0<', theirs) and "Bob" not in theirs
    streets = staff.get("/search/?q=ST").get_data(as_text=True)
    assert "954 WASHINGTON ST" in streets and "3 ELM ST" not in streets


def test_the_search_api_is_scoped_like_the_screen(app, book, client_for):
    client = app.test_client()
    everyone = client.get("/api/v1/search/?q=example", headers=bearer("marketer")).get_json()
    assert sorted(c["name"] for c in everyone["contacts"]) == ["Ann Lee", "Bob Ray", "Mary O'Brien"]
    mine = client.get("/api/v1/search/?q=example", headers=bearer("staff")).get_json()
    assert [c["name"] for c in mine["contacts"]] == ["Mary O'Brien"]
    bob = client.get("/api/v1/search/?q=(617) 555-0123", headers=bearer("staff2")).get_json()
    assert [(c["name"], c["phone"]) for c in bob["contacts"]] == [("Bob Ray", "+16175550123")]
    assert [p["address"] for p in bob["properties"]] == ["3 ELM ST"]
    assert client.get("/api/v1/search/?q=example").status_code == 401


@pytest.mark.parametrize("typed", FORMATS)
def test_the_contact_list_filter_finds_a_phone_in_any_format(app, book, client_for, typed):
    marketer = client_for("marketer")
    page = marketer.get("/contactview/list/", query_string={"_flt_0_phone": typed}).get_data(as_text=True)
    assert f"/contactview/show/{book['mary'].id}" in page
    assert f"/contactview/show/{book['bob'].id}" not in page and f"/contactview/show/{book['ann'].id}" not in page
    api = marketer.get("/api/v1/contact/", headers=bearer("marketer"), query_string={
        "q": '{"filters":[{"col":"phone","opr":"phone","value":"%s"}]}' % typed}).get_json()
    assert [row["phone"] for row in api["result"]] == ["+19786567092"]
    with app.test_request_context():
        assert matching_contact_ids({"_flt_0_phone": [typed]}) == [book["mary"].id]


def test_bulk_actions_read_the_same_filters_as_the_screen_and_old_filter_links_keep_working(app, book, client_for):
    marketer = client_for("marketer")
    page = marketer.get("/contactview/list/?_flt_2_last_name=brie").get_data(as_text=True)  # 2: "Contains"
    assert f"/contactview/show/{book['mary'].id}" in page and f"/contactview/show/{book['ann'].id}" not in page
    contains = marketer.get("/contactview/list/?_flt_2_phone=6567").get_data(as_text=True)
    assert f"/contactview/show/{book['mary'].id}" in contains and f"/contactview/show/{book['bob'].id}" not in contains
    with app.test_request_context():
        assert matching_contact_ids({"_flt_2_last_name": ["brie"]}) == [book["mary"].id]
        assert matching_contact_ids({"_flt_2_first_name": ["o"]}, user_id=user_id("staff2")) == [book["bob"].id]
        assert matching_contact_ids({"_flt_0_phone": ["12"]}) == []  # too few digits to mean a phone
