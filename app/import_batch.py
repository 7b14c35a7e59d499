"""One batch of an import: turn file rows into contacts, properties, opt-outs and outcomes,
with a handful of set-based statements per batch (never one ORM object per row)."""
import dataclasses
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

from sqlalchemy import select, text

from app.bulk import ids_by, insert_rows, stage, update_many, where_in
from app.contacts import CONTACT_FIELDS, match_contacts, normalize_email, normalize_phone, save_contacts
from app.models import Contact, ImportRow, OptOut, Property, utcnow
from app.names import proper_names
from app.opt_outs import phone_hash

FOOTER_START = "The information contained in this report"
MAX_CELL = 255


def _text(value):
    return value.strip() or None


def _integer(value):
    if value:
        try:
            return int(float(value))  # the common case, before cleaning "$1,200 "
        except ValueError:
            pass
    value = value.strip().replace(",", "").replace("$", "")
    try:
        return int(float(value)) if value else None
    except ValueError:
        return None


def _number(value):
    if value:
        try:
            return float(value)
        except ValueError:
            pass
    value = value.strip().replace(",", "").replace("$", "").replace("%", "")
    try:
        return float(value) if value else None
    except ValueError:
        return None


FLAGS = {"1": True, "0": False, "yes": True, "no": False, "true": True, "false": False}


def _flag(value):
    return FLAGS.get(value.strip().lower())


def _day(value):
    value = value.strip()
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


def _zip(value):
    value = value.strip()
    return value.zfill(5) if value.isdigit() and len(value) < 5 else (value or None)


PROPERTY_COLUMNS = {
    "Type": ("type", _text), "Address": ("address", _text), "City": ("city", _text), "ZIP": ("zip", _zip),
    "Subdivision": ("subdivision", _text), "Longitude": ("longitude", _number), "Latitude": ("latitude", _number),
    "APN": ("apn", _text), "Yr Built": ("year_built", _integer), "Purchase Date": ("purchase_date", _day),
    "Purchase Mos Since": ("purchase_months_since", _integer), "Sq Ft": ("square_feet", _integer),
    "Beds": ("beds", _integer), "Baths": ("baths", _number), "Est Value": ("estimated_value", _integer),
    "Est Equity $": ("estimated_equity", _integer), "Owner": ("owner_name", _text),
    "Mail Address": ("mail_address", _text), "Mail City": ("mail_city", _text), "Mail State": ("mail_state", _text),
    "Mail ZIP": ("mail_zip", _zip), "Owner Occ?": ("owner_occupied", _flag),
    "Listed for Sale?": ("listed_for_sale", _flag), "Listing Status": ("listing_status", _text),
    "Foreclosure?": ("foreclosure", _flag), "Est Equity %": ("estimated_equity_pct", _number),
    "High Equity?": ("high_equity", _flag),
}
EMPTY_PROPERTY = dict.fromkeys(sorted({field for field, _parse in PROPERTY_COLUMNS.values()} | {"key"}))
PEOPLE = [(1, "Primary", "primary"), (2, "Secondary", "secondary")]
PROPERTYRADAR_REQUIRED = {"APN", "Address", "Primary Name", "Primary Mobile Phone1", "Primary Email1"}


def _limits(model):
    return {c.name: c.type.length for c in model.__table__.columns if getattr(c.type, "length", None)}


PROPERTY_LIMITS, CONTACT_LIMITS = _limits(Property), _limits(Contact)
# A contacts file's person, checked in field order (its phone is checked as a phone number).
PERSON_LIMITS = {field: CONTACT_LIMITS[field] for field in CONTACT_FIELDS if field in CONTACT_LIMITS and field != "phone"}


def _too_long(values, limits):
    """The first value (in the order of limits) longer than its limit, as a reason; else None."""
    for field, limit in limits.items():
        value = values.get(field)
        if isinstance(value, str) and len(value) > limit:
            return f"{field} is {len(value)} characters long; the limit is {limit}"
    return None


def is_footer(cells):
    """PropertyRadar's licence line at the end of an export: recorded, never a data row."""
    return len(cells) == 1 and cells[0].startswith(FOOTER_START)


def _split_name(name):
    parts = (name or "").split()
    return (parts[0], " ".join(parts[1:]) or None) if parts else (None, None)


@dataclass(frozen=True)
class ImportSettings:
    """What every batch of one import needs to know, fixed when the import starts."""
    import_id: int
    format: str
    header: list | None  # None: a do-not-contact list without a header
    path: str
    encoding: str
    delimiter: str
    region: str
    mapping: dict = dataclasses.field(default_factory=dict)
    overwrite: frozenset = frozenset()
    list_id: int | None = None
    user_id: int | None = None
    filename: str = ""
    phone_column: int = 0  # do-not-contact lists

    @property
    def source(self):
        """Contact.source of the contacts this import creates."""
        return self.format

    @property
    def opt_out_reason(self):
        return f"do-not-contact list {self.filename}"


@dataclass(slots=True)
class Outcome:
    """What happened to one data row (person 0) or one person in it; outcome None until saved."""
    outcome: str | None
    reason: str | None = None
    contact: dict | int | None = None  # the matched contact (a dict while saving), or its id


class Batch:
    """Rows of one batch and their outcomes: parsed by the format's parse(), written in one
    transaction by its save()."""

    def __init__(self, settings, rows):
        self.settings, self.rows = settings, rows  # rows: [(line, cells)]
        self.outcomes = {}  # (line, person) -> Outcome
        self.people = []  # (line, person number, person dict)
        self.properties = {}  # line -> property values
        self.rejected = {}  # line -> cells
        self.phones = {}  # line -> phone (do-not-contact lists)
        self.property_ids = {}  # line -> id of the property saved for it

    def row(self, line, outcome, reason=None, cells=None):
        self.outcomes[(line, 0)] = Outcome(outcome, reason)
        if cells is not None and outcome in ("skipped", "error"):
            self.rejected[line] = cells

    def person(self, line, number, person, cells):
        """Queue a person for matching, or skip one with neither a valid phone nor an email."""
        proper_names(person)
        raw_phone = (person.pop("raw_phone", None) or "").strip()
        person["phone"] = normalize_phone(raw_phone, self.settings.region) if raw_phone else None
        person["email"] = normalize_email(person.get("email"))
        note = f"invalid phone number {raw_phone!r}" if raw_phone and not person["phone"] else None
        if not person["phone"] and not person["email"]:
            reason = f"{note}; no email" if note else "no phone or email"
            self.outcomes[(line, number)] = Outcome("skipped", _whose(number, person) + reason)
            self.rejected[line] = cells
            return
        note = note and _whose(number, person) + note
        self.outcomes[(line, number)] = Outcome(None, f"{note}; matched by email" if note else None)
        self.people.append((line, number, person))

    def data_rows(self):
        """Rows of this batch that count as data (PropertyRadar's licence footer does not)."""
        return sum(1 for (_line, number), o in self.outcomes.items() if number == 0 and o.outcome != "footer")

    def match(self, session):
        people = [p for _line, _number, p in self.people]
        new, changed, results = match_contacts(session, people, self.settings.overwrite)
        save_contacts(session, new, changed, self.settings.source)
        for (line, number, _person), (outcome, contact) in zip(self.people, results, strict=True):
            mine = self.outcomes[(line, number)]
            mine.outcome, mine.contact = outcome, contact
            other = self.outcomes.get((line, 3 - number))
            if number == 2 and other and other.contact is contact:
                how = "phone" if contact["phone"] else "email"
                mine.reason = f"same {how} as the primary owner: one contact for both"

    def save_outcomes(self, session):
        """Record every outcome, and link the people to their properties and the list, set-based:
        the outcomes go into one staging table that three INSERT ... SELECT statements read."""
        rows = []
        for (line, number), o in sorted(self.outcomes.items()):
            contact_id = o.contact["id"] if isinstance(o.contact, dict) else o.contact
            raw = json.dumps(self.rejected[line]) if number == 0 and line in self.rejected else None
            rows.append((line, number, o.outcome, o.reason, contact_id, raw,
                         self.property_ids.get(line) if number else None))
        if not rows:
            return
        staged = stage(session, ImportRow.__table__, STAGED_OUTCOMES, rows, extra=(("property_id", "INTEGER"),))
        columns = ", ".join(STAGED_OUTCOMES)
        session.execute(text(f"INSERT INTO import_rows (import_id, {columns}) SELECT :import_id, {columns} "
                             f"FROM {staged}"), {"import_id": self.settings.import_id})
        if not any(row[4] for row in rows):
            return
        # A person's first row (in file order) names the role they have on a property.
        session.execute(text(
            "INSERT INTO contact_properties (contact_id, property_id, role) SELECT contact_id, property_id, "
            f"CASE MIN(line * 4 + person) % 4 WHEN 1 THEN '{PEOPLE[0][2]}' ELSE '{PEOPLE[1][2]}' END FROM {staged} "
            "WHERE property_id IS NOT NULL AND contact_id IS NOT NULL GROUP BY contact_id, property_id "
            "ON CONFLICT (contact_id, property_id) DO NOTHING"))
        if self.settings.list_id:
            session.execute(text(
                f"INSERT INTO list_members (list_id, contact_id, added_at) SELECT DISTINCT :list_id, contact_id, :now "
                f"FROM {staged} WHERE contact_id IS NOT NULL ON CONFLICT (list_id, contact_id) DO NOTHING"),
                {"list_id": self.settings.list_id, "now": utcnow()})


STAGED_OUTCOMES = ("line", "person", "outcome", "reason", "contact_id", "raw")


def _whose(number, person):
    """"primary owner Ann Lee: " for a PropertyRadar row's people; nothing for a contacts file's one."""
    if not number:
        return ""
    name = " ".join(p for p in (person.get("first_name"), person.get("last_name")) if p)
    return f"{PEOPLE[number - 1][2]} owner{' ' + name if name else ''}: "


def _common_row_checks(batch, line, cells, header):
    if cells == header:
        batch.row(line, "skipped", "repeated header row", cells)
    elif len(cells) != len(header):
        batch.row(line, "error", f"row has {len(cells)} cells; the header has {len(header)}", cells)
    else:
        return True
    return False


def parse_propertyradar(batch):
    header = batch.settings.header
    index = {name: i for i, name in enumerate(header)}
    plan = [(field, index[col], parse) for col, (field, parse) in PROPERTY_COLUMNS.items() if col in index]
    # Cells are at most MAX_CELL long by the time these are checked: only shorter limits matter.
    planned = {field for field, _i, _parse in plan}
    limits = {field: PROPERTY_LIMITS[field] for field in EMPTY_PROPERTY
              if field in planned and PROPERTY_LIMITS.get(field, MAX_CELL) < MAX_CELL}
    people = [(number, role, index[f"{prefix} Name"], index[f"{prefix} Mobile Phone1"], index[f"{prefix} Email1"])
              for number, prefix, role in PEOPLE]
    for line, cells in batch.rows:
        if is_footer(cells):
            batch.row(line, "footer")
            continue
        if not _common_row_checks(batch, line, cells, header):
            continue
        values = dict(EMPTY_PROPERTY)  # every column, so that all new rows have the same keys
        for field, i, parse in plan:
            values[field] = parse(cells[i])
        long_cell = max(map(len, cells)) > MAX_CELL and next(
            f"{header[i]} is {len(c)} characters long; the limit is {MAX_CELL}" for i, c in enumerate(cells)
            if len(c) > MAX_CELL)
        problem = long_cell or _too_long(values, limits)
        values["key"] = Property.key_for(values.get("apn"), values.get("address"), values.get("city"), values.get("zip"))
        if problem or not values["key"]:
            batch.row(line, "error", problem or "no APN and no address", cells)
            continue
        batch.properties[line] = values
        batch.row(line, None)
        for number, _role, name_at, phone_at, email_at in people:
            name, phone, email = cells[name_at].strip(), cells[phone_at], cells[email_at]
            if not (name or phone.strip() or email.strip()):
                continue
            first, last = _split_name(name)
            batch.person(line, number, {
                "first_name": first, "last_name": last, "raw_phone": phone, "email": email,
                "mail_address": values.get("mail_address"), "mail_city": values.get("mail_city"),
                "mail_state": values.get("mail_state"), "mail_zip": values.get("mail_zip")}, cells)


def save_propertyradar(session, batch):
    batch.match(session)
    batch.property_ids = _save_properties(session, batch)


def _save_properties(session, batch):
    """Insert new properties, update changed ones (non-empty file values win); line -> property id."""
    table = Property.__table__
    keys = sorted({v["key"] for v in batch.properties.values()})
    existing = {}
    for condition in where_in(session, table.c.key, keys):
        for row in session.execute(select(table).where(condition)).mappings():
            existing[row["key"]] = dict(row)
    now, new, changed = utcnow(), {}, {}
    for line, values in batch.properties.items():
        current = existing.get(values["key"]) or new.get(values["key"])
        if current is None:
            new[values["key"]] = dict(values)
            outcome = "created"
        else:
            diff = {f: v for f, v in values.items() if v is not None and current.get(f) != v}
            current.update(diff)
            if diff and "id" in current:
                changed.setdefault(current["id"], {"id": current["id"], "updated_at": now}).update(diff)
            outcome = "updated" if diff else "unchanged"
        batch.outcomes[(line, 0)].outcome = outcome
    ids = {key: row["id"] for key, row in existing.items()}
    ids.update(insert_rows(session, table, list(new.values()), conflict=["key"], returning=("key", "id"),
                           same={"created_at": now, "updated_at": now}))
    update_many(session, table, list(changed.values()))
    missing = [key for key in new if key not in ids]  # inserted meanwhile by another import
    ids.update(ids_by(session, table, table.c.key, missing))
    return {line: ids[values["key"]] for line, values in batch.properties.items()}




def parse_contacts_file(batch):
    header, mapping = batch.settings.header, batch.settings.mapping
    index = {field: header.index(column) for column, field in mapping.items() if field and column in header}
    for line, cells in batch.rows:
        if not _common_row_checks(batch, line, cells, header):
            continue
        values = {field: cells[i].strip() or None for field, i in index.items()}
        if values.get("name") and not (values.get("first_name") or values.get("last_name")):
            values["first_name"], values["last_name"] = _split_name(values["name"])
        values.pop("name", None)
        person = {f: values.get(f) for f in CONTACT_FIELDS}
        person["raw_phone"] = person.pop("phone") or ""
        problem = _too_long(person, PERSON_LIMITS)
        if problem:
            batch.row(line, "error", problem, cells)
            continue
        batch.person(line, 0, person, cells)


def save_contacts_file(session, batch):
    batch.match(session)


def parse_dnc(batch):
    header = batch.settings.header
    column = batch.settings.phone_column
    for line, cells in batch.rows:
        if header and cells == header:
            batch.row(line, "skipped", "repeated header row", cells)
            continue
        raw = cells[column].strip() if column < len(cells) else ""
        phone = normalize_phone(raw, batch.settings.region) if raw else None
        if not phone:
            batch.row(line, "skipped", f"invalid phone number {raw!r}" if raw else "no phone number", cells)
            continue
        batch.phones[line] = phone


def save_dnc(session, batch):
    """Opt-outs keyed by the phone's hash, like app.opt_outs.opt_out: an erased contact's
    opt-out (hash only) counts as already there."""
    phones = batch.phones
    table = OptOut.__table__
    hashes = {phone: phone_hash(phone) for phone in set(phones.values())}
    existing = {}
    for condition in where_in(session, table.c.phone_hash, sorted(hashes.values())):
        existing.update(session.execute(select(table.c.phone_hash, table.c.active).where(condition)).all())
    fresh, revived = {}, set()
    for line, phone in phones.items():
        hashed = hashes[phone]
        if hashed not in existing and phone not in fresh:
            fresh[phone] = {"phone": phone, "phone_hash": hashed, "active": True, "source": "dnc",
                            "reason": batch.settings.opt_out_reason, "created_by_id": batch.settings.user_id, "created_at": utcnow()}
            batch.row(line, "created")
        elif existing.get(hashed) is False and hashed not in revived:
            revived.add(hashed)
            batch.row(line, "updated", "opt-out was revoked; active again")
        else:
            batch.row(line, "unchanged", "already on the opt-out list")
    insert_rows(session, table, list(fresh.values()), conflict=["phone_hash"])
    if revived:
        session.execute(table.update().where(table.c.phone_hash.in_(sorted(revived)))
                        .values(active=True, revoked_at=None, source="dnc"))


@dataclass(frozen=True)
class Format:
    """A kind of import file: parse turns a batch's file rows into values (pure Python, can run
    ahead in the reader); save writes those values to the database in the batch's transaction."""
    name: str
    parse: Callable[[Batch], None]
    save: Callable[[object, Batch], None]


FORMATS = {f.name: f for f in (Format("propertyradar", parse_propertyradar, save_propertyradar),
                               Format("contacts", parse_contacts_file, save_contacts_file),
                               Format("dnc", parse_dnc, save_dnc))}
PHONE_HEADER = re.compile(r"phone|mobile|cell|number|tel", re.I)
