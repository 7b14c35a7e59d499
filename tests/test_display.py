"""How values read on screen: the pure functions, then the list, show and save screens."""
import re
from datetime import date, datetime, time
from decimal import Decimal
from html import unescape

import pytest
from flask_appbuilder.security.sqla.models import User
from sqlalchemy import select

from app import analytics, display
from app.models import Campaign, CampaignRecipient, Contact, ContactList
from tests.conftest import user_id


@pytest.mark.parametrize("stored, shown", [
    ("+16175550123", "(617) 555-0123"),
    ("+19786567092", "(978) 656-7092"),
    ("+442079460958", "+44 20 7946 0958"),
    ("12345", "12345"),  # a short code stays as it is
    ("PN123abc", "PN123abc"),
    (None, ""),
    ("", ""),
])
def test_phone_for_people(stored, shown):
    assert display.phone(stored) == shown


@pytest.mark.parametrize("stored, zone, shown", [
    (datetime(2026, 11, 30, 14, 5, 59, 123456), "America/New_York", "Nov 30, 2026 9:05 AM EST"),
    (datetime(2026, 7, 4, 16, 0), "America/New_York", "Jul 4, 2026 12:00 PM EDT"),
    (datetime(2026, 7, 4, 4, 30), "America/New_York", "Jul 4, 2026 12:30 AM EDT"),
    (datetime(2026, 1, 1, 3, 0), "America/New_York", "Dec 31, 2025 10:00 PM EST"),
    (datetime(2026, 1, 1, 3, 0), "America/Los_Angeles", "Dec 31, 2025 7:00 PM PST"),
])
def test_times_in_the_company_zone_to_the_minute(stored, zone, shown):
    assert display.when(stored, zone) == shown
    assert display.when(stored, zone, with_zone=False) == shown.rsplit(" ", 1)[0]


@pytest.mark.parametrize("amount, shown", [
    (1234, "$1,234.00"), (Decimal("1234.5"), "$1,234.50"), (0, "$0.00"), (Decimal("-5"), "-$5.00"),
    (1234567.891, "$1,234,567.89"), (None, ""),
])
def test_money(amount, shown):
    assert display.money(amount) == shown


@pytest.mark.parametrize("days, shown", [
    ("0,1,2,3,4", "Mon-Fri"), ("0,2,4", "Mon, Wed, Fri"), ("5,6", "Sat, Sun"), ("0,1,2,3,4,5,6", "Every day"),
    ("0,1,2,4,5", "Mon-Wed, Fri, Sat"), ("4,3,2,1,0", "Mon-Fri"), ("", ""), (None, ""), ([1, 2, 3], "Tue-Thu"),
])
def test_window_days(days, shown):
    assert display.window_days(days) == shown


@pytest.mark.parametrize("stored, shown", [
    (None, ""), (True, "Yes"), (False, "No"), (date(2026, 3, 9), "Mar 9, 2026"), (time(17, 0), "5:00 PM"),
    (time(0, 15), "12:15 AM"), ("text", "text"), (42, "42"),
])
def test_any_value_by_its_type(stored, shown):
    assert display.value(stored, "America/New_York") == shown


def visible_text(html):
    """What a person reads: no scripts, no tags, no attribute values."""
    html = re.sub(r"(?s)<script.*?</script>|<style.*?</style>", " ", html)
    return re.sub(r"\s+", " ", unescape(re.sub(r"(?s)<[^>]*>", " ", html)))


def add_contact(db, **values):
    contact = Contact(source="manual", **values)
    db.session.add(contact)
    db.session.commit()
    return contact


def test_contact_list_and_page_show_people_not_storage(db, client_for):
    contact = add_contact(db, first_name="Ann", last_name="Lee", phone="+16175550123",
                          created_at=datetime(2026, 11, 30, 14, 5, 7, 999))
    admin = client_for("admin")
    page = admin.get("/contactview/list/").get_data(as_text=True)
    assert "(617) 555-0123" in page and "+16175550123" not in page
    assert "Nov 30, 2026 9:05 AM" in page and "14:05" not in page
    assert "None" not in visible_text(page)
    assert "List Contact" not in page and '<h4 class="panel-title">Contacts</h4>' in page
    page = admin.get(f"/contactview/show/{contact.id}").get_data(as_text=True)
    assert "(617) 555-0123" in page and "Nov 30, 2026 9:05 AM EST" in page
    assert "None" not in visible_text(page)


def test_a_new_contact_lands_on_its_page_with_a_plain_message(db, client_for, post_form):
    admin = client_for("admin")
    admin.get("/contactview/list/")
    response = post_form(admin, "/contactview/add", {"first_name": "Ann", "last_name": "Lee",
                                                     "phone": "617 555 0199"})
    contact = db.session.scalar(select(Contact).filter_by(phone="+16175550199"))
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/contactview/show/{contact.id}")
    page = admin.get(response.headers["Location"]).get_data(as_text=True)
    assert "Contact saved" in page and "Added Row" not in page


def test_an_edited_list_lands_on_the_list(db, client_for, post_form):
    saved = ContactList(name="Quincy owners")
    db.session.add(saved)
    db.session.commit()
    admin = client_for("admin")
    admin.get("/contactview/list/")
    response = post_form(admin, f"/listview/edit/{saved.id}", {"name": "Quincy owners 2026"})
    assert response.headers["Location"].endswith(f"/listview/show/{saved.id}")
    page = admin.get(response.headers["Location"]).get_data(as_text=True)
    assert "Quincy owners 2026" in page and "saved" in page and "Changed Row" not in page


def test_a_new_user_lands_on_that_user(db, client_for, post_form):
    admin = client_for("admin")
    admin.get("/users/userinfo/")
    role_id = db.session.execute(select(User).filter_by(username="staff")).scalar().roles[0].id
    response = post_form(admin, "/users/add", {
        "first_name": "Rita", "last_name": "Moreno", "username": "rita", "email": "rita@example.com",
        "active": "y", "roles": str(role_id), "password": "badminton-court-9", "conf_password": "badminton-court-9"})
    new_id = user_id("rita")
    try:
        assert new_id is not None
        assert response.headers["Location"].endswith(f"/users/show/{new_id}")
        page = admin.get(response.headers["Location"]).get_data(as_text=True)
        assert "rita@example.com" in page and "User saved" in page
    finally:
        db.session.delete(db.session.get(User, new_id))
        db.session.commit()


def test_a_reply_rate_is_shown_only_once_texts_went_out():
    assert display.reply_rate({"sent": 0, "reply_rate": 0.0, "ci_low": 0.0, "ci_high": 0.0}) == "\u2013 (no texts sent yet)"
    assert display.reply_rate({"sent": 40, "reply_rate": 0.125, "ci_low": 0.0545, "ci_high": 0.2614}) == \
        "12.5% (5.5\u201326.1%)"


@pytest.mark.parametrize(("table", "shown"), [
    ("contacts", "Contact"), ("properties", "Property"), ("campaign_recipients", "Campaign recipient"),
    ("ab_user", "User"), ("history_imports", "History import"), ("opt_outs", "Opt-out"), (None, "")])
def test_an_audit_rows_record_is_named_as_people_say_it(table, shown):
    assert display.record_name(table) == shown


def test_the_empty_assigned_to_choice_reads_nobody(db, client_for):
    for path in ("/contactview/add", "/todoview/add"):
        page = client_for("admin").get(path).get_data(as_text=True)
        assert '<option selected value="__None">Nobody</option>' in page and ">__None<" not in page


def test_a_contacts_source_reads_in_words_and_is_stored_as_its_code(db, client_for):
    contact = Contact(first_name="Ann", phone="+16175550160", source="propertyradar")
    db.session.add(contact)
    db.session.commit()
    admin = client_for("admin")
    for path in ("/contactview/list/", f"/contactview/show/{contact.id}"):
        page = admin.get(path).get_data(as_text=True)
        assert "PropertyRadar import" in page and ">propertyradar<" not in page
    assert db.session.get(Contact, contact.id).source == "propertyradar"


def test_the_texts_per_day_chart_labels_read_as_days(db):
    campaign = Campaign(name="Fall", sending_number="+16175550100")
    db.session.add(campaign)
    db.session.flush()
    # UTC: 15:00 and 16:00 are 10 and 11 AM in Boston; Dec 1 02:30 UTC is 9:30 PM on Nov 30 there
    sent_at = (datetime(2026, 11, 30, 15, 0), datetime(2026, 11, 30, 16, 0), datetime(2026, 12, 1, 2, 30),
               datetime(2026, 12, 1, 15, 0))
    for i, sent in enumerate(sent_at):
        db.session.add(CampaignRecipient(campaign_id=campaign.id, phone=f"+1617555017{i}", status="sent", sent_at=sent))
    db.session.commit()
    assert analytics.texts_per_day(campaign.id) == [("Nov 30", 3), ("Dec 1", 1)]
