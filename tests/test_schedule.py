"""Sending windows: the campaign's window, the legal window per state, pacing. "now" is injected."""
from datetime import datetime, time, timezone
from zoneinfo import ZoneInfo

import pytest

from app.schedule import (
    STRICTEST,
    day_bounds_utc,
    effective_state,
    is_campaign_open,
    is_legal_now,
    paced_quota,
    recipient_location,
)

BOSTON = "America/New_York"
MA_PHONE = "+16175550123"


def local(text, zone=BOSTON):
    """'2026-12-01 09:00' in zone -> aware UTC datetime."""
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(zone)).astimezone(timezone.utc)


@pytest.mark.parametrize("when, open_", [
    ("2026-12-01 08:59", False), ("2026-12-01 09:00", True), ("2026-12-01 16:59", True),
    ("2026-12-01 17:00", False), ("2026-12-05 10:00", False), ("2026-12-06 10:00", False),  # Sat, Sun
    ("2026-12-04 16:59:59", True), ("2026-12-07 09:00", True),  # Friday last second, Monday
])
def test_campaign_window_edges_and_weekends(when, open_):
    assert is_campaign_open("0,1,2,3,4", time(9), time(17), local(when), BOSTON) is open_


@pytest.mark.parametrize("when, open_", [
    # 2026-03-09 is the Monday after clocks went forward: 09:00 EDT is 13:00 UTC, not 14:00.
    ("2026-03-09T12:59:00+00:00", False), ("2026-03-09T13:00:00+00:00", True),
    ("2026-03-09T20:59:00+00:00", True), ("2026-03-09T21:00:00+00:00", False),
    # 2026-11-02 is the Monday after clocks went back: 09:00 EST is 14:00 UTC.
    ("2026-11-02T13:59:00+00:00", False), ("2026-11-02T14:00:00+00:00", True),
])
def test_campaign_window_follows_daylight_saving(when, open_):
    assert is_campaign_open("0,1,2,3,4", time(9), time(17), datetime.fromisoformat(when), BOSTON) is open_


def test_legal_window_on_the_day_clocks_change():
    # Sunday 2026-03-08: 08:00 EDT exists (02:00-03:00 does not) and is 12:00 UTC.
    assert not is_legal_now("MA", None, datetime(2026, 3, 8, 11, 59, tzinfo=timezone.utc))
    assert is_legal_now("MA", None, datetime(2026, 3, 8, 12, 0, tzinfo=timezone.utc))
    # Sunday 2026-11-01: 08:00 EST is 13:00 UTC; 12:30 UTC is 07:30 local.
    assert not is_legal_now("MA", None, datetime(2026, 11, 1, 12, 30, tzinfo=timezone.utc))
    assert is_legal_now("MA", None, datetime(2026, 11, 1, 13, 0, tzinfo=timezone.utc))


@pytest.mark.parametrize("state, zone, when, legal", [
    ("MA", BOSTON, "2026-12-01 07:59", False), ("MA", BOSTON, "2026-12-01 08:00", True),
    ("MA", BOSTON, "2026-12-01 20:59", True), ("MA", BOSTON, "2026-12-01 21:00", False),
    # Florida spans two zones: without the county, both must be inside 8-20.
    ("FL", "America/Chicago", "2026-12-01 08:00", True), ("FL", BOSTON, "2026-12-01 08:00", False),
    ("FL", BOSTON, "2026-12-01 19:59", True), ("FL", "America/Chicago", "2026-12-01 19:00", False),
    ("OK", "America/Chicago", "2026-12-01 20:00", False), ("MD", BOSTON, "2026-12-01 19:59", True),
    ("MS", "America/Chicago", "2026-12-01 20:00", False), ("NJ", BOSTON, "2026-12-01 20:00", False),
    ("CT", BOSTON, "2026-12-01 08:59", False), ("CT", BOSTON, "2026-12-01 09:00", True),
    ("CT", BOSTON, "2026-12-01 20:00", False),
    ("TX", "America/Chicago", "2026-12-05 09:00", False),  # Saturday: 09:00 Central is 08:00 in El Paso
    ("TX", "America/Denver", "2026-12-05 09:00", True), ("TX", "America/Denver", "2026-12-05 08:59", False),
    ("TX", "America/Denver", "2026-12-06 11:59", False), ("TX", "America/Denver", "2026-12-06 12:00", True),
    ("TX", "America/Chicago", "2026-12-06 20:00", True),  # 19:00 in El Paso
    ("RI", BOSTON, "2026-12-01 17:59", True), ("RI", BOSTON, "2026-12-01 18:00", False),
    ("RI", BOSTON, "2026-12-05 09:59", False), ("RI", BOSTON, "2026-12-05 10:00", True),
    ("RI", BOSTON, "2026-12-06 16:59", True), ("RI", BOSTON, "2026-12-06 17:00", False),
])
def test_state_rules_in_the_recipients_local_time(state, zone, when, legal):
    assert is_legal_now(state, None, local(when, zone)) is legal


def test_state_from_the_phone_area_code_when_the_property_is_unknown():
    assert effective_state(None, "+13055550123") == "FL"
    assert effective_state("MA", "+13055550123") == "MA"  # the property wins
    # A Florida cell phone at 20:30 Eastern: too late under Florida's 8-20 rule.
    assert not is_legal_now(None, "+13055550123", local("2026-12-01 20:30"))
    assert is_legal_now("MA", "+13055550123", local("2026-12-01 20:30"))
    # An El Paso area code resolves to Mountain time.
    assert recipient_location(None, "+19155550123")[1] == ("America/Denver",)


def test_unknown_location_takes_the_most_restrictive_rule():
    rule, zones = recipient_location(None, None)
    assert rule == STRICTEST
    assert STRICTEST[0] == (time(9), time(18)) and STRICTEST[5] == (time(10), time(17))
    assert STRICTEST[6] == (time(12), time(17))
    assert len(zones) > 4
    # With no zone at all, only 19:00-22:00 UTC is 9:00-18:00 everywhere from Puerto Rico to Hawaii.
    lawful = [h for h in range(24) if is_legal_now(None, None, datetime(2026, 12, 1, h, tzinfo=timezone.utc))]
    assert lawful == [19, 20, 21]


@pytest.mark.parametrize("when, expected", [
    ("2026-12-01 08:59", 0), ("2026-12-01 09:00", 1), ("2026-12-01 09:03", 1), ("2026-12-01 09:04", 2),
    ("2026-12-01 13:00", 63), ("2026-12-01 16:59", 125), ("2026-12-01 18:00", 125),
])
def test_the_daily_quota_is_spread_across_the_window(when, expected):
    assert paced_quota(125, time(9), time(17), local(when), BOSTON) == expected


def test_unspread_quota_is_the_whole_limit():
    assert paced_quota(125, time(9), time(17), local("2026-12-01 09:00"), BOSTON, spread=False) == 125


def test_day_bounds_are_local_midnights_in_utc():
    start, end = day_bounds_utc(local("2026-12-01 23:30"), BOSTON)
    assert start == datetime(2026, 12, 1, 5, 0) and end == datetime(2026, 12, 2, 5, 0)


def test_the_area_code_table_matches_phonenumbers():
    from app.area_codes import AREA_CODES, compute

    assert AREA_CODES == compute(), "phonenumbers changed: run `python -m app.area_codes`"
    assert AREA_CODES["617"] == ("MA", ("America/New_York",))


# --- the sending forecast: when the first and the last text go out ------------------------------

def forecast(audience, now, days="0,1,2,3,4", start=time(9), end=time(17), limit=60, **kwargs):
    from app.schedule import sending_forecast

    kwargs.setdefault("locations", [("MA", MA_PHONE)])
    return sending_forecast(audience, days, start, end, limit, BOSTON, now, **kwargs)


def boston(text):
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(BOSTON))


def test_started_on_sunday_night_the_first_text_goes_out_monday_morning_and_the_last_47_sending_days_on():
    from app.schedule import describe_forecast

    now = local("2026-11-29 21:00")  # a Sunday
    plan = forecast(2792, now)
    # 2792 / 60 = 46.5: 47 weekdays from Monday Nov 30 (Christmas and New Year are weekdays too)
    assert plan == {"first": boston("2026-11-30 09:00"), "last": datetime(2027, 2, 2).date(), "sending_days": 47}
    assert describe_forecast(plan, 60, now) == ("First text goes out Monday 09:00 ET, the last about Feb 2, 2027 "
                                                "at 60 a day (47 sending days).")


def test_inside_the_window_the_first_text_goes_out_now_and_what_went_out_today_counts():
    from app.schedule import describe_forecast

    now = local("2026-12-01 10:02")  # Tuesday
    plan = forecast(100, now, sent_today=50, spread=False)
    # 10 more today (60 - 50), then 60 Wednesday, the last 30 on Thursday
    assert plan == {"first": boston("2026-12-01 10:02"), "last": datetime(2026, 12, 3).date(), "sending_days": 3}
    assert describe_forecast(plan, 60, now).startswith("First text goes out now, the last about Dec 3 at 60 a day")
    assert forecast(100, now, sent_today=60)["first"] == boston("2026-12-02 09:00")  # today's quota is spent
    # spread over the window, the 51st of 60 waits for 50/60 of 09:00-17:00: 15:40
    paced = forecast(100, now, sent_today=50)
    assert paced["first"] == boston("2026-12-01 15:40")
    assert describe_forecast(paced, 60, now, lead="Next send").startswith("Next send today 15:40 ET, the last about")


def test_quiet_hours_of_the_recipients_move_the_first_text():
    # Californians may be texted from 8:00 their time: 11:00 in Boston.
    assert forecast(10, local("2026-11-29 21:00"), locations=[("CA", "+14155550123")])["first"] == \
        boston("2026-11-30 11:00")
    # One of the audience in Boston is enough to start at 9:00.
    assert forecast(10, local("2026-11-29 21:00"), locations=[("CA", "+14155550123"), ("MA", MA_PHONE)])[
        "first"] == boston("2026-11-30 09:00")
    # A window wholly inside quiet hours never opens, and says so.
    from app.schedule import describe_forecast

    never = forecast(10, local("2026-11-29 21:00"), start=time(6), end=time(7, 30))
    assert never == {"first": None, "last": None, "sending_days": 0}
    assert "never opens" in describe_forecast(never, 60, local("2026-11-29 21:00"))


def test_the_start_date_days_and_the_daily_limit_shape_the_forecast():
    now = local("2026-11-29 21:00")
    plan = forecast(250, now, days="5", limit=125, start_date=datetime(2026, 12, 10).date())  # Saturdays only
    assert plan == {"first": boston("2026-12-12 09:00"), "last": datetime(2026, 12, 19).date(), "sending_days": 2}
    assert forecast(0, now)["first"] is None


def test_a_spread_day_waits_for_its_next_share_of_the_window():
    # 2 a day over 09:00-17:00, one sent at 09:30: the second is due at 13:00 (half the window)
    now = local("2026-12-01 09:30")
    assert forecast(1, now, limit=2, sent_today=1)["first"] == boston("2026-12-01 13:00")
    assert forecast(1, now, limit=2, sent_today=1, spread=False)["first"] == boston("2026-12-01 09:30")
    assert forecast(1, now, limit=2, sent_today=0)["first"] == boston("2026-12-01 09:30")
