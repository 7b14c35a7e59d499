"""When a campaign text may go out: the campaign's window, the legal window in the
recipient's local time, and the pacing of the day's quota. Pure functions of "now"."""
import math
from datetime import datetime, time, timedelta, timezone
from functools import lru_cache
from zoneinfo import ZoneInfo

from app.area_codes import ALL_ZONES, AREA_CODES, STATE_ZONES

FEDERAL = ((time(8), time(21)),) * 7  # Monday=0 .. Sunday=6
_EARLY = ((time(8), time(20)),) * 7
STATE_RULES = {
    "FL": _EARLY, "OK": _EARLY, "MD": _EARLY, "MS": _EARLY, "NJ": _EARLY,
    "CT": ((time(9), time(20)),) * 7,
    "TX": ((time(9), time(21)),) * 6 + ((time(12), time(21)),),
    "RI": ((time(9), time(18)),) * 5 + ((time(10), time(17)),) * 2,
}
# Texts per person per rolling 24 hours, where a state limits it.
DAILY_PER_PERSON = {"FL": 3}

def rule_for(state):
    return STATE_RULES.get(state, FEDERAL)


def strictest_rule(rules):
    """The intersection of several weekly rules: latest start, earliest end, per weekday."""
    return tuple((max(r[d][0] for r in rules), min(r[d][1] for r in rules)) for d in range(7))


STRICTEST = strictest_rule([FEDERAL, *STATE_RULES.values()])


def _phone_area(prefix):
    """(state or None, zones) guessed from the area code of a +1 number prefix ('+1617')."""
    return AREA_CODES.get(prefix[2:], (None, ALL_ZONES))


@lru_cache(maxsize=4096)
def recipient_location(state, phone):
    """(weekly rule, candidate zones): the property's state when known, else the phone's
    area code; where neither is known, the strictest rule in every US zone."""
    state = (state or "").upper() or None
    if state in STATE_ZONES:
        return rule_for(state), STATE_ZONES[state]
    if phone and phone.startswith("+1") and len(phone) == 12:
        phone_state, zones = _phone_area(phone[:5])
        if phone_state:
            return rule_for(phone_state), zones
        return STRICTEST, zones
    return STRICTEST, ALL_ZONES


def effective_state(state, phone):
    """The state whose rules apply: the property's, else the phone area code's, else None."""
    state = (state or "").upper() or None
    if state in STATE_ZONES:
        return state
    if phone and phone.startswith("+1") and len(phone) == 12:
        return _phone_area(phone[:5])[0]
    return None


def in_weekly_window(rule, local):
    start, end = rule[local.weekday()]
    return start <= local.time().replace(tzinfo=None) < end


def is_legal_now(state, phone, now):
    """True when a marketing text is lawful now (aware UTC datetime) for every candidate zone."""
    rule, zones = recipient_location(state, phone)
    return all(in_weekly_window(rule, now.astimezone(ZoneInfo(zone))) for zone in zones)


def campaign_window(days, start, end):
    """The campaign's own window as a weekly rule: days "0,1,2,3,4" (Monday=0), start-end."""
    open_days = {int(d) for d in str(days or "").split(",") if d.strip().isdigit()}
    return tuple((start, end) if d in open_days else (time(0), time(0)) for d in range(7))


def is_campaign_open(days, start, end, now, zone):
    return in_weekly_window(campaign_window(days, start, end), now.astimezone(ZoneInfo(zone)))


def paced_quota(daily_limit, start, end, now, zone, spread=True):
    """How many texts may have gone out by now today: the quota spread evenly over the window
    (the first at the window's start), or the whole limit at once with spread=False."""
    if not spread:
        return daily_limit
    local = now.astimezone(ZoneInfo(zone))
    window = _seconds(end) - _seconds(start)
    if window <= 0:
        return 0
    elapsed = _seconds(local.time()) - _seconds(start)
    if elapsed < 0:
        return 0
    return min(daily_limit, math.floor(daily_limit * min(elapsed, window) / window) + 1)


def day_bounds_utc(now, zone):
    """[start, end) of today in the zone, as naive UTC datetimes (how the database stores time)."""
    local = now.astimezone(ZoneInfo(zone))
    start = datetime.combine(local.date(), time(0), ZoneInfo(zone))
    end = datetime.combine(local.date() + timedelta(days=1), time(0), ZoneInfo(zone))
    return (start.astimezone(timezone.utc).replace(tzinfo=None), end.astimezone(timezone.utc).replace(tzinfo=None))


def _seconds(t):
    return t.hour * 3600 + t.minute * 60 + t.second


def utc(naive_or_aware):
    """An aware UTC datetime from the database's naive UTC or any aware datetime."""
    if naive_or_aware.tzinfo is None:
        return naive_or_aware.replace(tzinfo=timezone.utc)
    return naive_or_aware.astimezone(timezone.utc)


# --- when the texts go out: the forecast shown before Start and while running -------------

FORECAST_STEP = timedelta(minutes=5)
FORECAST_MAX_DAYS = 3660  # ten years of calendar days: past that the plan says "never" rather than loop


def first_lawful(opens, closes, locations):
    """The first moment in [opens, closes) (aware) at which a marketing text is lawful for at
    least one of the locations ((state, phone) pairs), on a FORECAST_STEP grid; None if none."""
    moment = opens
    while moment < closes:
        if any(is_legal_now(state, phone, moment) for state, phone in locations):
            return moment
        moment += FORECAST_STEP
    return None


def sending_forecast(audience, days, start, end, daily_limit, zone, now, start_date=None, sent_today=0,
                     locations=((None, None),), spread=True):
    """When a campaign's texts go out, from its window (days, start-end in zone), its daily limit,
    the recipients' quiet hours (locations: (state, phone) pairs; any one lawful is enough to send)
    and the audience still to text. `now` is the clock the caller passes (aware). With spread (the
    sender's CAMPAIGN_SPREAD) today's next text waits for its share of the window (paced_quota).

    {"first": aware datetime in zone or None, "last": date or None, "sending_days": n}; first is
    None when the window never opens (no days, or quiet hours cover it)."""
    tz = ZoneInfo(zone)
    local_now = now.astimezone(tz)
    open_days = {int(d) for d in str(days or "").split(",") if d.strip().isdigit()}
    locations = tuple(locations) or ((None, None),)
    first = last = None
    sending_days, left, day, seen = 0, audience, local_now.date(), {}
    if audience <= 0 or daily_limit < 1 or not open_days or start >= end:
        return {"first": None, "last": None, "sending_days": 0}
    for _ in range(FORECAST_MAX_DAYS):
        if day.weekday() in open_days and (start_date is None or day >= start_date):
            opens, closes = datetime.combine(day, start, tz), datetime.combine(day, end, tz)
            room = daily_limit - (sent_today if day == local_now.date() else 0)
            if day == local_now.date():
                paced = timedelta(seconds=math.ceil((_seconds(end) - _seconds(start)) * sent_today / daily_limit))
                opens = max(opens, local_now, opens + paced if spread else opens)
            moment = None
            if room > 0 and opens < closes:  # weeks repeat: each weekday's shape is worked out once
                key = (day.weekday(), opens.time(), opens.utcoffset(), closes.time())
                if key not in seen:
                    found = first_lawful(opens, closes, locations)
                    seen[key] = None if found is None else found - opens
                moment = None if seen[key] is None else opens + seen[key]
            if moment is not None:
                first = first or moment
                last, sending_days, left = day, sending_days + 1, left - room
                if left <= 0:
                    break
        day += timedelta(days=1)
    if left > 0:
        last = None
    return {"first": first, "last": last, "sending_days": sending_days}


def zone_label(moment):
    """"ET" for EST/EDT, "PT" for PST/PDT ...; other zones keep their own abbreviation."""
    name = moment.strftime("%Z")
    return name[0] + name[2] if len(name) == 3 and name[1] in "SD" and name[2] == "T" else name


def describe_pace(start, end, daily_limit):
    """How the sender spreads a day's texts over the window (paced_quota), in words: a campaign
    started during the window first sends the day's share already gone, then keeps this pace."""
    every = (_seconds(end) - _seconds(start)) / daily_limit
    if every >= 90:
        minutes = every / 60
        shown = round(minutes) if minutes >= 10 else f"{minutes:.1f}".removesuffix(".0")
        pace = f"about one every {shown} minutes"
    elif every >= 1:
        pace = f"about {round(60 / every)} a minute"
    else:
        pace = "as fast as OpenPhone allows"
    return (f"Texts are spread over the window: {daily_limit} a day from {start:%H:%M} to {end:%H:%M} is {pace}. "
            "Started during the window, it first sends the part of the day's share whose time has passed.")


def describe_forecast(forecast, daily_limit, now, lead="First text goes out", soon="now"):
    """"first text goes out Monday 09:00 ET, the last about Jan 22 at 60 a day" in words; `soon`
    stands for a first text due within minutes."""
    first, last = forecast["first"], forecast["last"]
    if first is None:
        return "No text can go out: the sending window never opens (check the days, hours and start date)."
    local_now = now.astimezone(first.tzinfo)
    days_away = (first.date() - local_now.date()).days
    day = "today" if days_away == 0 else f"{first:%A}" if days_away < 7 else f"{first:%A %b} {first.day}"
    when = soon if first <= local_now + FORECAST_STEP and days_away == 0 else \
        f"{day} {first:%H:%M} {zone_label(first)}"
    text = f"{lead} {when}"
    if last is None:
        return f"{text}; at {daily_limit} a day the last would be more than ten years away."
    if last == first.date():
        return f"{text}, the last the same day ({daily_limit} a day)."
    return (f"{text}, the last about {last:%b} {last.day}{'' if last.year == local_now.year else f', {last.year}'} "
            f"at {daily_limit} a day ({forecast['sending_days']} sending days).")
