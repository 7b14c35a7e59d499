"""Lists: who is on one (names with phones, a page at a time), how many (counted from rows), and
which lists people see (a campaign's hand-picked contacts are a list of its own, kept out of sight)."""
from flask_appbuilder.models.filters import BaseFilter
from sqlalchemy import func, select

from app.extensions import db
from app.models import OWN_LISTS, Contact, ContactList, ListMember
from app.search import scoped

MEMBERS_PER_PAGE = 50


class OwnListsOnly(BaseFilter):
    """Base filter of the list screens and API: lists people made, not a campaign's picked contacts."""

    name = "Lists people made"
    arg_name = "own"

    def apply(self, query, value):
        if self.model is ListMember:
            return query.filter(ListMember.list.has(OWN_LISTS))
        return query.filter(OWN_LISTS)


def members_page(list_id, page=0, per_page=MEMBERS_PER_PAGE, user_id=None):
    """{"count", "page", "pages", "rows"}: one page of a list's members by name (id, name, phone, email),
    among the contacts the user may see; count is every such member, from the rows."""
    members = scoped(select(Contact).join(ListMember).where(ListMember.list_id == list_id), Contact, user_id)
    count = db.session.scalar(select(func.count()).select_from(members.subquery()))
    pages = max(1, -(-count // per_page))
    page = min(max(page, 0), pages - 1)
    rows = db.session.scalars(members.order_by(func.lower(Contact.last_name), func.lower(Contact.first_name),
                                               Contact.id).limit(per_page).offset(page * per_page)).all()
    return {"count": count, "page": page, "pages": pages, "rows": rows}


def own_list(list_id):
    """The list with this id if people see it (not a campaign's picked contacts), else None."""
    return db.session.scalar(select(ContactList).where(ContactList.id == list_id, OWN_LISTS))


def own_list_ids(list_ids):
    """The ids among these of lists people see (a campaign preselected from a list's page)."""
    if not list_ids:
        return []
    return list(db.session.scalars(select(ContactList.id).where(ContactList.id.in_(list_ids), OWN_LISTS)
                                   .order_by(ContactList.id)))
