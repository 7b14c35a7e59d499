"""Phone and email normalisation: the one place that decides what a phone number is."""
import re
from functools import lru_cache

import phonenumbers
from flask import current_app
from phonenumbers import COUNTRY_CODE_TO_REGION_CODE, PhoneMetadata
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app import bulk, display
from app.extensions import db
from app.models import Contact, utcnow
from app.names import proper_names

_NANP = re.compile(r"^\s*(?:\+?1[\s.-]?)?\(?([2-9]\d{2})\)?[\s.-]?([2-9]\d{2})[\s.-]?(\d{4})\s*$")


@lru_cache(maxsize=20_000)
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


@lru_cache(maxsize=20_000)
def _is_valid(e164):
    if e164.startswith("+1") and len(e164) == 12:
        return bool(_nanp_valid().match(e164[2:]))
    try:
        return phonenumbers.is_valid_number(phonenumbers.parse(e164, None))
    except phonenumbers.NumberParseException:
        return False


@lru_cache(maxsize=1)
def _nanp_valid():
    """phonenumbers' own validity rules for +1 numbers as one regex (~1 us instead of ~20 us).

    Valid means: some NANP region's general pattern and one of its number-type patterns match."""
    alternatives = []
    for region in COUNTRY_CODE_TO_REGION_CODE[1]:
        meta = PhoneMetadata.metadata_for_region(region)
        types = [getattr(meta, name) for name in ("premium_rate", "toll_free", "shared_cost", "voip",
                                                  "personal_number", "pager", "uan", "voicemail", "fixed_line",
                                                  "mobile")]
        patterns = [t.national_number_pattern for t in types if t is not None and t.national_number_pattern]
        if meta.general_desc and meta.general_desc.national_number_pattern and patterns:
            alternatives.append(f"(?=(?:{meta.general_desc.national_number_pattern})$)(?:{'|'.join(patterns)})$")
    return re.compile("|".join(f"(?:{a})" for a in alternatives))


def normalize_email(raw):
    """Lower-cased, trimmed email, or None when it does not look like one."""
    if not raw:
        return None
    email = str(raw).strip().lower()
    return email if re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", email) else None


# --- One contact, written through a screen, the API or a webhook ---------------------------

EDITABLE_FIELDS = ("first_name", "last_name", "phone", "email", "mail_address", "mail_city", "mail_state",
                   "mail_zip", "notes")
LABELS = {"first_name": "First name", "last_name": "Last name", "phone": "Phone", "email": "Email",
          "mail_address": "Mailing address", "mail_city": "Mailing city", "mail_state": "Mailing state",
          "mail_zip": "Mailing ZIP", "notes": "Notes"}


class ContactError(ValueError):
    """A contact that breaks a rule. errors: {field: message}; existing: the contact that
    already has this phone (duplicates only)."""

    def __init__(self, errors, existing=None):
        self.errors, self.existing = errors, existing
        super().__init__(" ".join(errors.values()))


def column_limits():
    return {c.name: c.type.length for c in Contact.__table__.columns if getattr(c.type, "length", None)}


def clean_contact(values, contact_id=None, region=None):
    """The rules every door applies to one contact before it is written.

    values: {field: raw value} (missing fields are left alone). Returns the cleaned values
    (text trimmed, empty -> None, names in proper case with name_as_received when that changed
    them, phone in E.164, email lower-cased) or raises ContactError:
    an invalid phone or email, a value over its column's length (never cut), no name, phone
    or email at all, or a phone another contact (not contact_id) already has."""
    region = region or current_app.config["DEFAULT_REGION"]
    cleaned, errors = {}, {}
    for field, value in values.items():
        value = str(value).replace("\x00", "").strip() if value is not None else None
        cleaned[field] = value or None
    proper_names(cleaned)  # "MARY O'BRIEN" -> "Mary O'Brien", the name as received kept
    limits = column_limits()
    for field, value in cleaned.items():
        if field in limits and field != "phone" and value and len(value) > limits[field]:
            errors[field] = (f"{LABELS.get(field, field)} is {len(value):,} characters long; "
                             f"the limit is {limits[field]}.")
    if cleaned.get("phone"):
        phone = normalize_phone(cleaned["phone"], region)
        if phone is None:
            errors["phone"] = (f"{cleaned['phone'][:40]!r} is not a valid phone number: write it with its area "
                               f"code, like 617-555-0123, or in international form, like +44 20 7946 0958.")
        cleaned["phone"] = phone
    if cleaned.get("email") and "email" not in errors:
        email = normalize_email(cleaned["email"])
        if email is None:
            errors["email"] = f"{cleaned['email'][:80]!r} is not an email address (like name@example.com)."
        cleaned["email"] = email
    if not errors and not any(cleaned.get(f) for f in ("first_name", "last_name", "phone", "email")):
        errors["first_name"] = "Give at least a name, a phone number or an email address."
    if errors:
        raise ContactError(errors)
    if cleaned.get("phone"):
        query = select(Contact).where(Contact.phone == cleaned["phone"])
        if contact_id is not None:
            query = query.where(Contact.id != contact_id)
        # No autoflush: a loaded contact already holding the new phone (an API PUT in E.164)
        # would be flushed by this very query and hit the unique index instead of this message.
        with db.session.no_autoflush:
            existing = db.session.scalar(query.limit(1))
        if existing is not None:
            raise ContactError({"phone": f"{display.phone(cleaned['phone'])} already belongs to {existing} (contact "
                                         f"{existing.id}): one phone, one contact."}, existing=existing)
    return cleaned


def apply_contact_rules(contact):
    """clean_contact on an ORM contact (the screen's and the API's hook), in place."""
    values = {f: getattr(contact, f) for f in EDITABLE_FIELDS}
    for field, value in clean_contact(values, contact_id=contact.id).items():
        if getattr(contact, field) != value:
            setattr(contact, field, value)
    return contact


def contact_for_phone(phone, source="inbound"):
    """The contact with this phone (any format), or one new contact, even under races.
    None when the phone is not a valid number (a short code, say)."""
    phone = normalize_phone(phone)
    if phone is None:
        return None
    contact = db.session.scalar(select(Contact).filter_by(phone=phone))
    if contact is not None:
        return contact
    try:
        with db.session.begin_nested():
            contact = Contact(phone=phone, source=source)
            db.session.add(contact)
        return contact
    except IntegrityError:  # another delivery created it a moment ago
        return db.session.scalar(select(Contact).filter_by(phone=phone))


# --- Matching and merging many people at once (imports) ---------------------------------

CONTACT_FIELDS = ("first_name", "last_name", "phone", "email", "mail_address", "mail_city", "mail_state", "mail_zip",
                  "name_as_received")


def _fetch_contacts(session, people):
    """Existing contacts, as dicts, that share a phone or an email with the people given."""
    phones = sorted({p["phone"] for p in people if p.get("phone")})
    emails = sorted({p["email"] for p in people if p.get("email")})
    query = select(Contact.id, *(getattr(Contact, f) for f in CONTACT_FIELDS))
    conditions = bulk.where_in(session, Contact.phone, phones) + bulk.where_in(session, Contact.email, emails)
    found = {}
    for row in bulk.select_in(session, query, *conditions):
        found.setdefault(row["id"], dict(row))
    return sorted(found.values(), key=lambda c: c["id"])


def _merge(contact, person, overwrite):
    """Fill the contact's empty fields from the person (or overwrite chosen ones). True if changed."""
    changed = False
    for field in CONTACT_FIELDS[:-1]:
        value = person.get(field)
        if value and value != contact.get(field) and (not contact.get(field) or field in overwrite):
            contact[field] = value
            contact.setdefault("_changed", set()).add(field)
            changed = True
    if person.get("name_as_received") and contact.get("_changed", set()) & {"first_name", "last_name"}:
        contact["name_as_received"] = person["name_as_received"]  # follows the name it came with
        contact["_changed"].add("name_as_received")
    return changed


def match_contacts(session, people, overwrite=()):
    """Match each person (phone in E.164, else email) to one contact and merge fields.

    Returns (new_contacts, changed_contacts, results): new and changed contacts are dicts to
    write; results[i] is [outcome, contact dict] for people[i], with outcome created,
    updated or unchanged. The caller has already skipped people with neither phone nor email.
    """
    by_phone, by_email = {}, {}
    for contact in _fetch_contacts(session, people):
        if contact["phone"]:
            by_phone[contact["phone"]] = contact
        if contact["email"]:
            by_email.setdefault(contact["email"], contact)
    new, results = [], []
    for person in people:
        phone, email = person.get("phone"), person.get("email")
        contact = by_phone.get(phone) if phone else by_email.get(email)
        if contact is None and phone and email in by_email and not by_email[email]["phone"]:
            contact = by_email[email]  # an email-only contact gains its phone
        if contact is None:
            contact = dict(person, id=None, _new=True)  # a person holds the CONTACT_FIELDS
            new.append(contact)
            outcome = "created"
        else:
            outcome = "updated" if _merge(contact, person, overwrite) else "unchanged"
        if contact["phone"]:
            by_phone[contact["phone"]] = contact
        if contact["email"]:
            by_email.setdefault(contact["email"], contact)
        results.append([outcome, contact])
    changed = [c for c in by_phone.values() if not c.get("_new") and c.get("_changed")]
    changed += [c for c in by_email.values() if not c.get("_new") and c.get("_changed") and not c["phone"]]
    return new, changed, results


def save_contacts(session, new, changed, source):
    """Write matched contacts: insert the new ones (ids filled in), update the changed ones."""
    now = utcnow()
    table = Contact.__table__
    inserted = bulk.insert_rows(session, table, new, columns=CONTACT_FIELDS, conflict=["phone"],
                                returning=("id", "phone", "email"),
                                same={"source": source, "created_at": now, "updated_at": now})
    ids = {}
    for contact_id, phone, email in inserted:
        ids.setdefault(phone or email, contact_id)
    # Rows another transaction inserted first (ON CONFLICT DO NOTHING) come back only from a look-up.
    phones = [c["phone"] for c in new if c["phone"] and c["phone"] not in ids]
    emails = [c["email"] for c in new if not c["phone"] and c["email"] not in ids]
    for value, contact_id in bulk.ids_by(session, table, table.c.phone, phones).items():
        ids.setdefault(value, contact_id)
    for value, contact_id in bulk.ids_by(session, table, table.c.email, emails, table.c.phone.is_(None)).items():
        ids.setdefault(value, contact_id)
    for contact in new:
        contact["id"] = ids[contact["phone"] or contact["email"]]
    bulk.update_many(session, table, [{"id": c["id"], "updated_at": now, **{f: c[f] for f in c["_changed"]}}
                                      for c in changed])
