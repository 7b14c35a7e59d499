"""Phone and email normalisation: the one place that decides what a phone number is."""
import re
from functools import lru_cache

import phonenumbers

_NANP = re.compile(r"^\s*(?:\+?1[\s.-]?)?\(?([2-9]\d{2})\)?[\s.-]?([2-9]\d{2})[\s.-]?(\d{4})\s*$")


@lru_cache(maxsize=200_000)
def normalize_phone(raw, region="US"):
    """E.164 for a valid number, else None. '617-555-0123' -> '+16175550123'."""
    if not raw:
        return None
    raw = str(raw).strip()
    if not raw:
        return None
    if region == "US":
        match = _NANP.match(raw)
        if match:
            candidate = "+1" + "".join(match.groups())
            # The fast path still asks phonenumbers once per distinct number (cached).
            return candidate if _is_valid(candidate) else None
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


@lru_cache(maxsize=200_000)
def _is_valid(e164):
    try:
        return phonenumbers.is_valid_number(phonenumbers.parse(e164, None))
    except phonenumbers.NumberParseException:
        return False


def normalize_email(raw):
    """Lower-cased, trimmed email, or None when it does not look like one."""
    if not raw:
        return None
    email = str(raw).strip().lower()
    return email if re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", email) else None
