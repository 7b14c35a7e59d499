"""People's names in proper case: "MARY O'BRIEN" -> "Mary O'Brien", "MCDONALD" -> "McDonald".

Lists (PropertyRadar's above all) shout names in capitals; a name typed in mixed case is the
person's own spelling and is left as it is."""
import re

# Lower case inside a name ("Juan de la Cruz"), never as its first or last word.
PARTICLES = {"de", "del", "della", "la", "van", "von", "der", "den", "dos", "das", "da", "du"}
# Kept in capitals: generational suffixes and business forms.
CAPITALS = {"ii", "iii", "iv", "vi", "vii", "viii", "llc", "lp", "llp", "pc", "pllc", "usa"}
_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)
_NOT_A_NAME = re.compile(r"[^\w\s'’.,&-]|[\d_]")  # digits or symbols: a code, a formula, a typo; left alone


def is_shouted_or_flat(text):
    """True when every letter is a capital, or every one is small: nobody typed that on purpose."""
    letters = [c for c in text if c.isalpha()]
    return bool(letters) and (all(c.isupper() for c in letters) or all(c.islower() for c in letters))


def proper_name(text):
    """A name (or a whole "first last" string) in proper case; mixed case is left as typed."""
    if not text or not is_shouted_or_flat(text) or _NOT_A_NAME.search(text):
        return text
    words = text.split()
    return " ".join(_word(word, i, len(words)) for i, word in enumerate(words))


def _word(word, index, count):
    lower = word.lower()
    if lower in PARTICLES and 0 < index < count - 1:
        return lower
    if lower.rstrip(".,") in CAPITALS:
        return word.upper()
    return _WORD.sub(lambda match: _part(match.group(0)), lower)


def _part(part):
    """One run of letters (between hyphens, apostrophes and periods): "mcdonald" -> "McDonald"."""
    if part.startswith("mc") and len(part) > 3:
        return "Mc" + part[2:].capitalize()
    return part.capitalize()


def proper_names(values):
    """first_name and last_name of a contact's values in proper case, in place. The name as it came
    in is kept in name_as_received when that changed it; returns values."""
    received = " ".join(v for v in (values.get("first_name"), values.get("last_name")) if v)
    changed = False
    for field in ("first_name", "last_name"):
        if values.get(field):
            cased = proper_name(values[field])
            changed = changed or cased != values[field]
            values[field] = cased
    if changed:
        values["name_as_received"] = received
    return values
