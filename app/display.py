"""How values read on screen: phones, times in the company's zone, money, window days, blanks.

Pure functions: stored values stay as they are (E.164 phones, naive UTC timestamps); these only
turn them into text for people. Views use them as Jinja filters and FAB formatters_columns."""
import re
from datetime import date, datetime, time, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

import phonenumbers

DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_NANP_E164 = re.compile(r"^\+1(\d{3})(\d{3})(\d{4})$")


def blank(value):
    """The value as text, or "" for nothing (never "None")."""
    return "" if value is None else str(value)


def phone(value):
    """'+16175550123' -> '(617) 555-0123'; other countries in international form; anything
    that is not a phone number comes back as it was."""
    if not value:
        return ""
    text = str(value)
    match = _NANP_E164.match(text)
    if match:
        return "({}) {}-{}".format(*match.groups())
    if not text.startswith("+"):
        return text
    try:
        number = phonenumbers.parse(text, None)
    except phonenumbers.NumberParseException:
        return text
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


def local_time(value, zone):
    """A naive UTC timestamp (what every DateTime column holds) as an aware time in `zone`."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(ZoneInfo(zone))


def when(value, zone, with_zone=True):
    """A naive UTC timestamp in the company's zone, to the minute: 'Nov 30, 2026 9:05 AM EST'."""
    if value is None:
        return ""
    local = local_time(value, zone)
    text = f"{day(local)} {clock(local)}"
    return f"{text} {local.tzname()}" if with_zone else text


def day(value):
    """'Nov 30, 2026'; "" for nothing."""
    if value is None:
        return ""
    return f"{value.strftime('%b')} {value.day}, {value.year}"


def overnight(since, until, zone):
    """A night as people say it: 'Fri 6:00 PM to Mon 8:00 AM' (naive UTC timestamps, shown in `zone`)."""
    start, end = local_time(since, zone), local_time(until, zone)
    return f"{start.strftime('%a')} {clock(start)} to {end.strftime('%a')} {clock(end)}"


def short_day(value):
    """'Nov 30' (a chart's label); "" for nothing."""
    if value is None:
        return ""
    return f"{value.strftime('%b')} {value.day}"


def clock(value):
    """A time of day as '9:05 AM'; "" for nothing."""
    if value is None:
        return ""
    hour = value.hour % 12 or 12
    return f"{hour}:{value.minute:02d} {'AM' if value.hour < 12 else 'PM'}"


def money(value):
    """1234 -> '$1,234.00', -5 -> '-$5.00'; "" for nothing."""
    if value is None or value == "":
        return ""
    amount = Decimal(str(value))
    sign = "-" if amount < 0 else ""
    return f"{sign}${abs(amount):,.2f}"


def reply_rate(variant):
    """A variant's reply rate with its 95% interval: '12.5% (8.1-18.7%)'; a dash until a text went
    out, since a rate of nothing sent is no rate."""
    if not variant.get("sent"):
        return "\u2013 (no texts sent yet)"
    low, rate, high = (f"{100 * variant[k]:.1f}" for k in ("ci_low", "reply_rate", "ci_high"))
    return f"{rate}% ({low}\u2013{high}%)"


RECORD_NAMES = {"ab_user": "User", "ab_role": "Role", "contact_properties": "Property owner", "messages": "Text",
                "opt_outs": "Opt-out", "qb_customers": "QuickBooks customer", "quickbooks_sync": "QuickBooks sync",
                "openphone_webhooks": "OpenPhone webhook", "integration_secrets": "Integration key",
                "media": "Photo or recording", "webhook_events": "Webhook event", "todos": "To-do"}


CONTACT_SOURCES = {"manual": "Added by hand", "propertyradar": "PropertyRadar import", "contacts": "Contacts import",
                   "dnc": "Do-not-contact import", "openphone": "OpenPhone", "inbound": "Texted or called us",
                   "quickbooks": "QuickBooks", "demo": "Demo data", "api": "API"}


def contact_source(value):
    """Where a contact came from, in words: 'propertyradar' -> 'PropertyRadar import' (stored codes stay)."""
    if not value:
        return ""
    return CONTACT_SOURCES.get(value, value.replace("_", " ").capitalize())


def record_name(table):
    """What an audit row's table holds, as people say it: 'contacts' -> 'Contact',
    'campaign_recipients' -> 'Campaign recipient', 'properties' -> 'Property'."""
    if not table:
        return ""
    if table in RECORD_NAMES:
        return RECORD_NAMES[table]
    words = table.removeprefix("ab_").replace("_", " ")
    words = words[:-3] + "y" if words.endswith("ies") else words.removesuffix("s")
    return words[:1].upper() + words[1:]


def yes_no(value):
    """True -> 'Yes', False -> 'No', None -> ''."""
    if value is None:
        return ""
    return "Yes" if value else "No"


def window_days(value):
    """Monday=0 day numbers ('0,1,2,3,4') as 'Mon-Fri'; runs of three or more days become a range,
    others are listed: '0,2,4' -> 'Mon, Wed, Fri', '0,1,2,3,4,5,6' -> 'Every day'."""
    if value is None or value == "":
        return ""
    numbers = value if isinstance(value, (list, tuple, set)) else str(value).replace(" ", "").split(",")
    days = sorted({int(n) for n in numbers if str(n).strip() != ""})
    if len(days) == 7:
        return "Every day"
    runs = []
    for number in days:
        if runs and number == runs[-1][-1] + 1:
            runs[-1].append(number)
        else:
            runs.append([number])
    parts = []
    for run in runs:
        if len(run) >= 3:
            parts.append(f"{DAY_NAMES[run[0]]}-{DAY_NAMES[run[-1]]}")
        else:
            parts.extend(DAY_NAMES[n] for n in run)
    return ", ".join(parts)


def value(item, zone):
    """Any stored value as people read it, chosen by its type (timestamps in `zone`)."""
    if item is None:
        return ""
    if isinstance(item, bool):
        return yes_no(item)
    if isinstance(item, datetime):
        return when(item, zone)
    if isinstance(item, date):
        return day(item)
    if isinstance(item, time):
        return clock(item)
    return str(item)
