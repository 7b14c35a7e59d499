"""The morning screen's overnight activity: texts, calls and campaign replies since the close of
the last business day, counted by hand, scoped for Staff, each linked to its rows."""
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from app import analytics
from app.history_models import Call
from app.models import Campaign, CampaignRecipient, Contact, Message
from tests.conftest import user_id

BOSTON = ZoneInfo("America/New_York")
MONDAY_MIDDAY = datetime(2026, 11, 30, 17, 30)  # 12:30 in Boston, naive UTC as stored


@pytest.mark.parametrize("now, since", [
    (datetime(2026, 11, 30, 9, 0, tzinfo=BOSTON), datetime(2026, 11, 27, 18, 0, tzinfo=BOSTON)),  # Monday: Friday
    (datetime(2026, 12, 1, 7, 30, tzinfo=BOSTON), datetime(2026, 11, 30, 18, 0, tzinfo=BOSTON)),  # Tuesday: Monday
    (datetime(2026, 12, 6, 12, 0, tzinfo=BOSTON), datetime(2026, 12, 4, 18, 0, tzinfo=BOSTON)),  # Sunday: Friday
])
def test_overnight_begins_at_the_close_of_the_last_business_day(now, since):
    assert analytics.overnight_since(now, "America/New_York") == since.astimezone(timezone.utc).replace(tzinfo=None)


@pytest.mark.parametrize("now, until", [
    (datetime(2026, 11, 30, 13, 0, tzinfo=BOSTON), datetime(2026, 11, 30, 8, 0, tzinfo=BOSTON)),  # Monday midday
    (datetime(2026, 11, 30, 7, 15, tzinfo=BOSTON), datetime(2026, 11, 30, 7, 15, tzinfo=BOSTON)),  # before opening
    (datetime(2026, 12, 6, 12, 0, tzinfo=BOSTON), datetime(2026, 12, 6, 12, 0, tzinfo=BOSTON)),  # Sunday: now
])
def test_overnight_ends_when_the_business_day_begins(now, until):
    assert analytics.overnight_until(now, "America/New_York") == until.astimezone(timezone.utc).replace(tzinfo=None)


@pytest.fixture
def night(db):
    """Last night seen from Monday 2026-11-30 09:00 in Boston began Friday 18:00 (23:00 UTC)."""
    since = datetime(2026, 11, 27, 23, 0)
    ann = Contact(first_name="Ann", phone="+16175550201", assigned_user_id=user_id("staff"))
    bob = Contact(first_name="Bob", phone="+16175550202")
    campaign = Campaign(name="Fall", sending_number="+16175550100")
    db.session.add_all([ann, bob, campaign])
    db.session.flush()
    db.session.add_all([
        Message(direction="incoming", status="received", body="Friday afternoon", contact=ann,
                created_at=since - timedelta(hours=1)),  # before the close: not overnight
        Message(direction="incoming", status="received", body="Saturday question", contact=ann,
                created_at=since + timedelta(hours=20)),
        Message(direction="incoming", status="received", body="Sunday photo", contact=bob,
                created_at=since + timedelta(hours=40)),
        Message(direction="outgoing", status="sent", body="Answer", contact=ann, created_at=since + timedelta(hours=21),
                sent_at=since + timedelta(hours=21)),
        Call(provider_id="AC1", contact=bob, phone=bob.phone, direction="incoming", status="missed",
             created_at=since + timedelta(hours=2)),
        Call(provider_id="AC2", contact=ann, phone=ann.phone, direction="incoming", status="completed", duration=60,
             created_at=since + timedelta(hours=3)),
        CampaignRecipient(campaign_id=campaign.id, contact=bob, phone=bob.phone, status="sent",
                          replied_at=since + timedelta(hours=30)),
        CampaignRecipient(campaign_id=campaign.id, contact=ann, phone=ann.phone, status="sent",
                          replied_at=since - timedelta(days=2)),
        # Monday 12:30, after the business day began: daytime, not overnight
        Message(direction="incoming", status="received", body="Monday lunch reply", contact=bob,
                created_at=MONDAY_MIDDAY),
        Message(direction="outgoing", status="sent", body="Campaign text", contact=bob, created_at=MONDAY_MIDDAY,
                sent_at=MONDAY_MIDDAY),
        CampaignRecipient(campaign_id=campaign.id, contact=ann, phone="+16175550203", status="sent",
                          replied_at=MONDAY_MIDDAY),
    ])
    db.session.commit()
    return datetime(2026, 11, 30, 9, 0, tzinfo=BOSTON)


def test_overnight_counts_match_the_rows_by_hand(app, night):
    counts = analytics.overnight_activity(night, "America/New_York")
    assert {k: v for k, v in counts.items() if k not in ("since", "until")} == {
        "texts_in": 2, "texts_out": 1, "calls": 2, "missed_calls": 1, "campaign_replies": 1}
    staff = analytics.overnight_activity(night, "America/New_York", user_id("staff"))  # Ann's rows only
    assert {k: v for k, v in staff.items() if k not in ("since", "until")} == {
        "texts_in": 1, "texts_out": 1, "calls": 1, "missed_calls": 0, "campaign_replies": 0}


def test_monday_midday_counts_only_the_night_not_the_morning(app, night):
    """Seen at 13:00 on Monday, the night is still Friday 18:00 to Monday 08:00: the campaign text
    sent at 12:30 and the reply to it are today's, not overnight."""
    counts = analytics.overnight_activity(night.replace(hour=13), "America/New_York")
    assert {k: v for k, v in counts.items() if k not in ("since", "until")} == {
        "texts_in": 2, "texts_out": 1, "calls": 2, "missed_calls": 1, "campaign_replies": 1}


def test_the_home_page_links_overnight_texts_to_exactly_those_rows(app, night, client_for, monkeypatch):
    monkeypatch.setattr(analytics, "overnight_since", lambda now, zone: datetime(2026, 11, 27, 23, 0))
    monkeypatch.setattr(analytics, "overnight_until", lambda now, zone: datetime(2026, 11, 30, 13, 0))
    home = client_for("admin").get("/").get_data(as_text=True)
    assert "Fri 6:00 PM to Mon 8:00 AM" in home
    assert "2 texts in" in home and "1 out" in home and "2 calls, 1 missed or voicemail" in home
    link = home.split('id="overnight-texts-in" href="')[1].split('"')[0].replace("&amp;", "&")
    listed = client_for("admin").get(link).get_data(as_text=True)
    assert "Saturday question" in listed and "Sunday photo" in listed and "Friday afternoon" not in listed
    assert "Monday lunch reply" not in listed
    staff_home = client_for("staff").get("/").get_data(as_text=True)
    assert "1 text in" in staff_home and "0 campaign replies" in staff_home
