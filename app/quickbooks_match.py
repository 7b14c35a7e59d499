"""Each QuickBooks customer matched to one contact: by phone (any of its phones, normalised by
the contact rules), then email, then name + street address; else a new contact (source
"quickbooks") when it has a phone or an email; two candidates are never guessed between."""
import re

import phonenumbers
from flask import current_app
from sqlalchemy import func, insert, select

from app import display
from app.bulk import where_in
from app.contacts import ContactError, clean_contact, normalize_email, normalize_phone
from app.extensions import db
from app.models import Contact, ContactProperty, Property

PHONE_FIELDS = ("primary_phone", "mobile", "alternate_phone")
_STREET_WORDS = {"street": "st", "avenue": "ave", "road": "rd", "drive": "dr", "lane": "ln", "court": "ct",
                 "boulevard": "blvd", "place": "pl", "terrace": "ter", "circle": "cir", "parkway": "pkwy"}


def phones_of(customer, region="US"):
    """Every distinct phone (E.164) in the customer's phone fields, in field order. A field may
    hold free text with an extension or several numbers ("617-555-0123 / 617-555-0199")."""
    found = []
    for field in PHONE_FIELDS:
        raw = customer.get(field)
        if not raw:
            continue
        whole = normalize_phone(raw, region)
        numbers = [whole] if whole else [
            phonenumbers.format_number(m.number, phonenumbers.PhoneNumberFormat.E164)
            for m in phonenumbers.PhoneNumberMatcher(raw, region) if phonenumbers.is_valid_number(m.number)]
        for number in numbers:
            if number not in found:
                found.append(number)
    return found


def normalize_street(raw):
    """'12 Elm Street, Apt 2' -> '12 elm st apt 2': case, punctuation and common words ignored."""
    if not raw:
        return None
    words = re.sub(r"[^a-z0-9 ]", " ", str(raw).lower()).split()
    return " ".join(_STREET_WORDS.get(w, w) for w in words) or None


def _name(value):
    return re.sub(r"\s+", " ", str(value or "").strip().lower()) or None


def names_of(customer):
    """(first, last) lower-cased: GivenName/FamilyName, else the display name split at its last space."""
    first, last = _name(customer.get("given_name")), _name(customer.get("family_name"))
    if not last and customer.get("display_name"):
        parts = _name(customer["display_name"]).rsplit(" ", 1)
        first, last = (parts[0], parts[1]) if len(parts) == 2 else (None, parts[0])
    return first, last


class _Known:
    """Contacts the batch can match against, indexed by phone, email and (first, last, street)."""

    def __init__(self, customers):
        self.by_phone, self.by_email, self.by_name = {}, {}, {}
        phones = {p for c in customers for p in c["_phones"]}
        emails = {c["_email"] for c in customers if c["_email"]}
        lasts = {c["_names"][1] for c in customers if c["_names"][1]}
        columns = (Contact.id, Contact.phone, Contact.email, Contact.first_name, Contact.last_name,
                   Contact.mail_address)
        queries = [select(*columns).where(w) for w in where_in(db.session, Contact.phone, sorted(phones))]
        queries += [select(*columns).where(w) for w in where_in(db.session, Contact.email, sorted(emails))]
        lasts = sorted(lasts)
        queries += [select(*columns).where(func.lower(Contact.last_name).in_(lasts[i:i + 900]))
                    for i in range(0, len(lasts), 900)]
        rows = {}
        for query in queries:
            for row in db.session.execute(query).mappings():
                rows[row["id"]] = dict(row)
        streets = {}
        for chunk in where_in(db.session, ContactProperty.contact_id, sorted(rows)):
            for contact_id, address in db.session.execute(
                    select(ContactProperty.contact_id, Property.address)
                    .join(Property, Property.id == ContactProperty.property_id).where(chunk)):
                streets.setdefault(contact_id, set()).add(normalize_street(address))
        for row in rows.values():
            self.add(row, streets.get(row["id"], set()))

    def add(self, row, streets=()):
        if row.get("phone"):
            self.by_phone[row["phone"]] = row["id"]
        if row.get("email"):
            self.by_email.setdefault(row["email"].lower(), set()).add(row["id"])
        first, last = _name(row.get("first_name")), _name(row.get("last_name"))
        for street in {normalize_street(row.get("mail_address")), *streets} - {None}:
            if last:
                self.by_name.setdefault((first, last, street), set()).add(row["id"])


def _decide(customer, known):
    """(match, contact id or None, detail, candidates) from the contacts known so far."""
    phones, email = customer["_phones"], customer["_email"]
    ids = sorted({known.by_phone[p] for p in phones if p in known.by_phone})
    if len(ids) == 1:
        phone = next(p for p in phones if known.by_phone.get(p) == ids[0])
        return "phone", ids[0], f"phone {display.phone(phone)}", None
    if len(ids) > 1:
        return "ambiguous", None, f"its phones belong to {len(ids)} different contacts", ids
    ids = sorted(known.by_email.get(email, ())) if email else []
    if len(ids) == 1:
        return "email", ids[0], f"email {email}", None
    if len(ids) > 1:
        return "ambiguous", None, f"{len(ids)} contacts have the email {email}", ids
    first, last = customer["_names"]
    street = normalize_street(customer.get("bill_line1"))
    ids = sorted(known.by_name.get((first, last, street), ())) if last and street else []
    if len(ids) == 1:
        return "name_address", ids[0], f"name and street ({customer.get('bill_line1')})", None
    if len(ids) > 1:
        return "ambiguous", None, f"{len(ids)} contacts named {first or ''} {last} at {street}".replace("  ", " "), ids
    return None, None, None, None


def _new_contact(customer):
    """Values for a contact made from the customer, through the contact rules (phone checked by
    the caller against every known phone); ContactError when the rules refuse it."""
    first, last = customer.get("given_name"), customer.get("family_name")
    if not (first or last):
        first, last = (customer.get("display_name") or "").rsplit(" ", 1) if " " in (
            customer.get("display_name") or "") else (None, customer.get("display_name"))
    values = {"first_name": first, "last_name": last, "email": customer["_email"],
              "mail_address": customer.get("bill_line1"), "mail_city": customer.get("bill_city"),
              "mail_state": (customer.get("bill_state") or "")[:2] or None, "mail_zip": customer.get("bill_zip")}
    cleaned = clean_contact(values)
    cleaned["phone"] = customer["_phones"][0] if customer["_phones"] else None
    return cleaned


def match_customers(customers):
    """Match customer rows (dicts with qb_id and the QbCustomer columns) to contacts, creating
    contacts where the rules say so. Returns {qb_id: {contact_id, match, match_detail, candidates}}
    and the ids of the contacts created."""
    region = current_app.config["DEFAULT_REGION"]
    for customer in customers:
        customer["_phones"] = phones_of(customer, region)
        customer["_email"] = normalize_email(customer.get("email"))
        customer["_names"] = names_of(customer)
    known = _Known(customers)
    outcomes, new_rows = {}, []
    for customer in customers:
        match, contact_id, detail, candidates = _decide(customer, known)
        if match is None and not (customer["_phones"] or customer["_email"]):
            match, detail = "no_phone_or_email", "no phone or email to match or create a contact with"
        elif match is None:
            try:
                values = _new_contact(customer)
            except ContactError as exc:
                match, detail = "error", str(exc)
            else:
                new_rows.append({**values, "source": "quickbooks"})
                contact_id = -len(new_rows)  # stands for the contact until the batch is inserted
                known.add({"id": contact_id, **values})
                match, detail = "created", "new contact from QuickBooks"
        outcomes[customer["qb_id"]] = {"contact_id": contact_id, "match": match, "match_detail": detail,
                                       "candidates": candidates}
    created = _insert_contacts(new_rows)
    real = {-(i + 1): contact_id for i, contact_id in enumerate(created)}
    for outcome in outcomes.values():
        outcome["contact_id"] = real.get(outcome["contact_id"], outcome["contact_id"])
        if outcome["candidates"]:
            outcome["candidates"] = [real.get(c, c) for c in outcome["candidates"]]
    return outcomes, created


def _insert_contacts(rows):
    """Insert new contacts in one statement; their ids, in order."""
    if not rows:
        return []
    table = Contact.__table__
    columns = sorted({key for row in rows for key in row})
    rows = [{c: row.get(c) for c in columns} for row in rows]
    result = db.session.execute(insert(table).returning(table.c.id, sort_by_parameter_order=True), rows)
    return [row_id for (row_id,) in result]
