"""Finding contacts and properties: the global search box, and the contact list's filters (a phone
in any format, "(978) 656-7092", "978-656-7092", "9786567092" or "+19786567092", finds the same
contact), which bulk actions and exports of "every contact matching the filter" read too."""
import re

from flask import current_app
from flask_appbuilder.models.filters import BaseFilter
from flask_appbuilder.models.sqla.filters import FilterStartsWith, SQLAFilterConverter
from flask_appbuilder.models.sqla.interface import SQLAInterface
from sqlalchemy import and_, exists, false, func, or_, select

from app.contacts import normalize_phone
from app.extensions import db
from app.models import Contact, ContactProperty, Property
from app.security import scope_clause, user_scope

MIN_PHONE_DIGITS = 4  # fewer digits than this would match most of the book
FILTER_ARG = re.compile(r"_flt_(\d+)_(.+)")


def phone_clause(column, text):
    """Rows whose phone is the number typed in any format, or contains its digits ("656-7092");
    None when the text holds too few digits to mean a phone."""
    e164 = normalize_phone(text, current_app.config["DEFAULT_REGION"])
    if e164:
        return column == e164
    digits = re.sub(r"\D", "", text or "")
    if len(digits) < MIN_PHONE_DIGITS:
        return None
    return column.like(f"%{digits}%")


class PhoneMatches(BaseFilter):
    """The contact list's phone filter: the number in any format, or a part of it."""

    name = "Matches"
    arg_name = "phone"

    def apply(self, query, value):
        clause = phone_clause(getattr(self.model, self.column_name), value)
        return query.filter(false() if clause is None else clause)


class ContactFilterConverter(SQLAFilterConverter):
    """FAB's filters, except that a phone column's first one ("Starts with", useless on "+1...") matches
    the number in any format. The others keep their places, so links with _flt_<n>_ stay valid."""

    def convert(self, col_name):
        filters = super().convert(col_name) or []
        if col_name == "phone" and filters and isinstance(filters[0], FilterStartsWith):
            return [PhoneMatches(col_name, self.datamodel), *filters[1:]]
        return filters


class ContactSearchInterface(SQLAInterface):
    """The contact list's filter choices, shared by the screen and by "every contact matching the filter"."""

    filter_converter_class = ContactFilterConverter


def matching_contacts(search_args, user_id=None):
    """SELECT contacts.id for every contact matching the contact list's filter arguments
    ({"_flt_0_first_name": ["Ann"]}), among those the acting user may see."""
    filters = ContactSearchInterface(Contact, db.session).get_filters()
    for arg, values in (search_args or {}).items():
        match = FILTER_ARG.fullmatch(arg)
        if match:
            filters.add_filter_index(match.group(2), int(match.group(1)), list(values))
    return scoped(filters.apply_all(select(Contact.id)), Contact, user_id)


def scoped(query, model, user_id):
    scope = user_scope(user_id)
    return query if scope is None else query.where(scope_clause(model, scope))


def describe_filter(search_args):
    """The filter in words, for an export's name: "first_name contains Ann, phone matches 978"."""
    words = []
    for arg, values in sorted((search_args or {}).items()):
        match = FILTER_ARG.fullmatch(arg)
        if match:
            words.append(f"{match.group(2)} {', '.join(values)}")
    return "; ".join(words) or "every contact"


def _contains(column, term):
    return column.ilike(f"%{term}%")


def _contact_clause(q):
    """A contact whose phone is the number typed (in any format); else, for digits alone, whose phone
    holds them or whose mailing street does; else whose name (every word), email or mailing street
    matches the text. One kind of clause per query keeps each on its own index."""
    phone = phone_clause(Contact.phone, q)
    if phone is not None and normalize_phone(q, current_app.config["DEFAULT_REGION"]):
        return phone
    if phone is not None and not re.search(r"[^\d\s().+-]", q):
        return or_(phone, _contains(Contact.mail_address, q))
    terms = q.split()
    name = and_(*(or_(_contains(Contact.first_name, t), _contains(Contact.last_name, t)) for t in terms))
    return or_(name, _contains(Contact.email, q), _contains(Contact.mail_address, q))


def _places(q):
    """Property conditions for a town ("needham", "West Roxbury": the case it is stored in) or a ZIP
    ("02492", "02492-1234") the text names; [] when it names neither. Equalities, so each reads
    the b-tree index on its column."""
    if re.fullmatch(r"\d{5}(-\d{4})?", q):
        return [Property.zip.in_(sorted({q, q[:5]}))]
    if re.search(r"\d", q):
        return []
    return [Property.city.in_(sorted({q, q.title(), q.upper(), q.lower()}))]


def search(q, user_id=None, limit=20):
    """{"contacts": [...], "properties": [...], "more_contacts": bool, "more_properties": bool}: up to
    `limit` of each that match the text, among those the user (None: everyone) may see, and whether
    there are more. A contact matches by name (every word), phone in any format, email or mailing
    street, or as an owner of a property in the town or ZIP typed; a property by its street address,
    town or ZIP, or as a property of a contact found."""
    q = " ".join((q or "").split())[:200]
    if len(q) < 2:
        return {"contacts": [], "properties": [], "q": q, "more_contacts": False, "more_properties": False}
    places = _places(q)
    # Sorting on lower() (no index has it) lets the database filter first, then sort the few matches.
    by_name = (func.lower(Contact.last_name), func.lower(Contact.first_name), Contact.id)
    contacts = db.session.scalars(scoped(select(Contact).where(_contact_clause(q)), Contact, user_id)
                                  .order_by(*by_name).limit(limit + 1)).all()
    if places and len(contacts) <= limit:  # owners of the town's properties, after the name matches
        owns = exists().where(ContactProperty.contact_id == Contact.id, Property.id == ContactProperty.property_id,
                              or_(*places))
        owners = select(Contact).where(owns, Contact.id.not_in([c.id for c in contacts] or [-1]))
        contacts += db.session.scalars(scoped(owners, Contact, user_id).order_by(*by_name)
                                       .limit(limit + 1 - len(contacts))).all()
    owned = select(ContactProperty.property_id).where(ContactProperty.contact_id.in_([c.id for c in contacts[:limit]]))
    properties = select(Property).where(or_(_contains(Property.address, q), Property.apn == q, *places,
                                            Property.id.in_(owned)))
    properties = db.session.scalars(scoped(properties, Property, user_id).order_by(
        func.lower(Property.address), Property.id).limit(limit + 1)).all()
    return {"contacts": contacts[:limit], "properties": properties[:limit], "q": q,
            "more_contacts": len(contacts) > limit, "more_properties": len(properties) > limit}
