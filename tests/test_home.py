"""Home: the getting-started checklist ticks itself from rows, the latest replies and yesterday's
campaign numbers are counted from rows, and Staff see only their contacts'."""
import re
from datetime import datetime, timezone

import pytest

from app import home
from app.models import Campaign, CampaignRecipient, Contact, Import, Message
from tests.conftest import user_id

# Wednesday Dec 2 2026, 10:00 in New York: "yesterday" is Tuesday Dec 1, 05:00 UTC to Dec 2, 05:00 UTC.
NOW = datetime(2026, 12, 2, 15, 0, tzinfo=timezone.utc)
YESTERDAY_NOON = datetime(2026, 12, 1, 17, 0)
TWO_DAYS_AGO = datetime(2026, 11, 30, 17, 0)
JUST_BEFORE_MIDNIGHT = datetime(2026, 12, 2, 4, 59)  # Dec 1, 23:59 in New York
JUST_AFTER_MIDNIGHT = datetime(2026, 12, 2, 5, 1)


class FixedClock(datetime):
    @classmethod
    def now(cls, tz=None):
        return NOW.astimezone(tz) if tz else NOW.replace(tzinfo=None)


@pytest.fixture
def clock(monkeypatch):
    monkeypatch.setattr("views.home.datetime", FixedClock)


def recipient(db, campaign, contact, status="sent", sent_at=None, replied_at=None, opted_out_at=None,
              delivered=False):
    row = CampaignRecipient(campaign=campaign, contact=contact, phone=contact.phone, status=status, sent_at=sent_at,
                            replied_at=replied_at, opted_out_at=opted_out_at)
    db.session.add(row)
    db.session.flush()
    db.session.add(Message(contact=contact, campaign_recipient_id=row.id, direction="outgoing", body="Hi",
                           from_phone=campaign.sending_number, to_phone=contact.phone,
                           status="delivered" if delivered else "sent", sent_at=sent_at,
                           delivered_at=sent_at if delivered else None, created_at=sent_at or TWO_DAYS_AGO))
    return row


@pytest.fixture
def yesterday(db):
    """Spring: 4 texted yesterday (3 delivered), 2 replies and 1 opt-out yesterday, plus rows from other days.
    Fall: 1 texted yesterday (Staff's contact), 1 reply. Staff's contacts: c0 (Spring) and f0 (Fall)."""
    staff = user_id("staff")
    spring, fall = (Campaign(name=n, sending_number="+16175550100", status="running") for n in ("Spring", "Fall"))
    people = [Contact(first_name=f"P{i}", last_name="Lee", phone=f"+1617555{i:04d}",
                      assigned_user_id=staff if i in (0, 9) else None) for i in range(10)]
    db.session.add_all([spring, fall, *people])
    db.session.flush()
    c = people
    recipient(db, spring, c[0], sent_at=YESTERDAY_NOON, delivered=True, replied_at=YESTERDAY_NOON)
    recipient(db, spring, c[1], sent_at=YESTERDAY_NOON, delivered=True, opted_out_at=JUST_BEFORE_MIDNIGHT)
    recipient(db, spring, c[2], sent_at=JUST_BEFORE_MIDNIGHT, delivered=True)
    recipient(db, spring, c[3], sent_at=YESTERDAY_NOON, replied_at=JUST_AFTER_MIDNIGHT)  # today's reply
    recipient(db, spring, c[4], sent_at=TWO_DAYS_AGO, delivered=True, replied_at=YESTERDAY_NOON)  # old text
    recipient(db, spring, c[5], sent_at=JUST_AFTER_MIDNIGHT, delivered=True)  # today
    recipient(db, spring, c[6], status="failed", sent_at=None)
    recipient(db, spring, c[7], status="queued")
    recipient(db, fall, c[9], sent_at=YESTERDAY_NOON, replied_at=YESTERDAY_NOON)
    db.session.commit()
    return spring, fall


def test_yesterdays_numbers_count_rows_of_yesterday_in_business_time(app, yesterday):
    spring, fall = yesterday
    with app.test_request_context():
        numbers = home.yesterday_campaigns(NOW)
        mine = home.yesterday_campaigns(NOW, user_id=user_id("staff"))
    rows = {r["name"]: {k: r[k] for k in ("sent", "delivered", "replies", "opt_outs")} for r in numbers["rows"]}
    assert rows == {"Spring": {"sent": 4, "delivered": 3, "replies": 2, "opt_outs": 1},
                    "Fall": {"sent": 1, "delivered": 0, "replies": 1, "opt_outs": 0}}
    assert numbers["total"] == {"sent": 5, "delivered": 3, "replies": 3, "opt_outs": 1}
    assert str(numbers["day"]) == "2026-12-01"
    assert {r["name"]: (r["sent"], r["replies"]) for r in mine["rows"]} == {"Spring": (1, 1), "Fall": (1, 1)}


def test_the_home_page_shows_yesterdays_campaigns_and_latest_replies_scoped_for_staff(app, db, yesterday, clock,
                                                                                       client_for):
    contacts = db.session.query(Contact).order_by(Contact.id).all()
    for i, contact in enumerate(contacts[:3]):
        db.session.add(Message(contact=contact, direction="incoming", body=f"Reply number {i}", status="received",
                               from_phone=contact.phone, created_at=datetime(2026, 12, 2, 14, i)))
    db.session.commit()
    page = client_for("marketer").get("/").get_data(as_text=True)
    table = re.search(r'id="yesterday-campaigns">(.*?)</table>', page, re.S).group(1)
    cells = [re.sub(r"<[^>]+>|\s+", " ", row).split() for row in re.findall(r"<tr[^>]*>(.*?)</tr>", table, re.S)[1:]]
    assert cells == [["Fall", "1", "0", "1", "0"], ["Spring", "4", "3", "2", "1"], ["All", "campaigns", "5", "3", "3",
                                                                                    "1"]]
    replies = re.search(r'id="recent-replies">(.*?)</ul>', page, re.S).group(1)
    assert re.findall(r"Reply number \d", replies) == ["Reply number 2", "Reply number 1", "Reply number 0"]
    staff = client_for("staff").get("/").get_data(as_text=True)
    replies = re.search(r'id="recent-replies">(.*?)</ul>', staff, re.S).group(1)
    assert re.findall(r"Reply number \d", replies) == ["Reply number 0"]
    table = re.search(r'id="yesterday-campaigns">(.*?)</table>', staff, re.S).group(1)
    assert "/campaignview/show" not in table and "yesterday-total" in table


def test_the_checklist_ticks_itself_from_rows_and_goes_when_everything_is_done(app, db, client_for, monkeypatch):
    monkeypatch.setitem(app.config, "OPENPHONE_API_KEY", "")
    admin = client_for("admin")

    def steps():
        page = admin.get("/").get_data(as_text=True)
        return dict(re.findall(r'data-step="(\w+)" data-done="(\w+)"', page))

    assert steps() == {"import": "no", "openphone": "no", "campaign": "no"}
    db.session.add(Import(filename="a.csv", size=1, sha256="x", stored_path="/x", format="contacts", status="failed"))
    db.session.add(Campaign(name="First", sending_number="+16175550100"))
    db.session.commit()
    assert steps() == {"import": "no", "openphone": "no", "campaign": "yes"}
    db.session.add(Import(filename="b.csv", size=1, sha256="y", stored_path="/y", format="contacts",
                          status="succeeded"))
    db.session.commit()
    assert steps() == {"import": "yes", "openphone": "no", "campaign": "yes"}
    monkeypatch.setitem(app.config, "OPENPHONE_API_KEY", "key-from-the-environment")
    assert steps() == {}
    assert 'id="getting-started"' not in client_for("staff").get("/").get_data(as_text=True)


def test_home_shows_phones_as_people_write_them(app, db, yesterday, clock, client_for):
    """A reply from a contact without a name reads as its phone; today's sending number and the
    running campaigns' numbers are written (617) 555-0100, never +16175550100."""
    nameless = Contact(phone="+16175552035")
    db.session.add(nameless)
    db.session.flush()
    db.session.add(Message(contact=nameless, direction="incoming", body="Thanks!", status="received",
                           from_phone=nameless.phone, created_at=datetime(2026, 12, 2, 14, 30)))
    db.session.commit()
    page = client_for("marketer").get("/").get_data(as_text=True)
    replies = re.sub(r"<[^>]+>|\s+", " ", re.search(r'id="recent-replies">(.*?)</ul>', page, re.S).group(1))
    assert "(617) 555-2035" in replies and "+1617" not in replies
    numbers = re.sub(r"<[^>]+>|\s+", " ", re.search(r'id="dashboard-numbers">(.*?)</table>', page, re.S).group(1)).split()
    assert numbers[:4] == ["(617)", "555-0100", "1", "of"]
    running = re.search(r'id="dashboard-campaigns">(.*?)</ul>', page, re.S).group(1)
    assert "Spring</a> ((617) 555-0100)" in running and "+1617" not in running
