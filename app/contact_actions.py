"""Bulk actions on contacts: add to or remove from a list, assign, opt out, export, text."""
import io

from flask import current_app
from flask_appbuilder.security.sqla.models import User
from sqlalchemy import delete, select, update

from app import audit
from app.campaigns import add_draft_variant
from app.contacts import ContactError
from app.exports import export_contacts
from app.extensions import db
from app.models import OWN_LISTS, Campaign, Contact, ContactList, ListMember, utcnow
from app.opt_outs import opt_out
from app.queue import enqueue
from app.search import matching_contacts
from app.security import ASSIGN_REFUSED, user_scope

CHUNK = 1000


def add_to_list(contact_ids, list_id):
    present = set(db.session.scalars(select(ListMember.contact_id).where(
        ListMember.list_id == list_id, ListMember.contact_id.in_(contact_ids))))
    rows = [{"list_id": list_id, "contact_id": cid, "added_at": utcnow()} for cid in contact_ids if cid not in present]
    if rows:
        db.session.execute(ListMember.__table__.insert(), rows)
    return len(rows)


def remove_from_list(contact_ids, list_id):
    return db.session.execute(delete(ListMember).where(ListMember.list_id == list_id,
                                                       ListMember.contact_id.in_(contact_ids))).rowcount


def assign(contact_ids, user_id):
    return db.session.execute(update(Contact).where(Contact.id.in_(contact_ids))
                              .values(assigned_user_id=user_id, updated_at=utcnow())).rowcount


def opt_out_contacts(contact_ids, user_id=None):
    phones = db.session.scalars(select(Contact.phone).where(Contact.id.in_(contact_ids), Contact.phone.is_not(None)))
    count = 0
    for phone in phones:
        opt_out(phone, "bulk", reason="bulk action on contacts", user_id=user_id)
        count += 1
    return count


def export_csv(contact_ids):
    """The selected contacts as CSV, through the one exporter (formula cells neutralised)."""
    out = io.StringIO()
    export_contacts(out, contact_ids=contact_ids)
    return out.getvalue()


def text_selected(contact_ids, user_id=None, sending_number=None):
    """A draft campaign whose audience is exactly these contacts: a list of its own, which Lists and
    the list pickers do not show and which goes when the campaign is deleted. The campaign's send
    rules (opt-outs, the frequency cap, legal hours) apply to it as to any list."""
    campaign = Campaign(name=f"Text {len(contact_ids)} selected contacts", created_by_id=user_id,
                        sending_number=sending_number or current_app.config["OPENPHONE_FROM"])
    db.session.add(add_draft_variant(campaign))
    db.session.flush()
    picked = ContactList(name=f"Picked for campaign {campaign.id}", campaign_id=campaign.id, created_by_id=user_id,
                         description=f"{len(contact_ids)} contacts picked by hand")
    db.session.add(picked)
    db.session.flush()
    add_to_list(contact_ids, picked.id)
    campaign.lists = [picked]
    return campaign


def _argument_words(action, argument):
    """What a bulk action's audit row says it was given: "list 4", "user 7", "nobody"."""
    noun = {"add_to_list": "list", "remove_from_list": "list", "assign": "user"}.get(action)
    if noun is None:
        return None
    return f"{noun} {argument}" if argument else "nobody"


def apply(action, contact_ids, argument=None, user_id=None):
    """Run one bulk action on contact ids; the caller commits. Returns a count or a result.

    ContactError when user_id (the acting user) may not assign contacts."""
    contact_ids = list(contact_ids)
    if action == "assign" and user_scope(user_id) is not None:
        raise ContactError({"assigned_user": ASSIGN_REFUSED})
    actions = {
        "add_to_list": lambda: add_to_list(contact_ids, int(argument)),
        "remove_from_list": lambda: remove_from_list(contact_ids, int(argument)),
        "assign": lambda: assign(contact_ids, int(argument) if argument else None),
        "opt_out": lambda: opt_out_contacts(contact_ids, user_id),
    }
    result = actions[action]()
    audit.record_bulk(f"bulk_{action}", "contacts", contact_ids, detail=_argument_words(action, argument))
    return result


def matching_contact_ids(search_args, user_id=None):
    """Ids of every contact matching the contact list's filter arguments ({"_flt_0_first_name": ["Ann"]}),
    among those the acting user may see."""
    return list(db.session.scalars(matching_contacts(search_args, user_id).order_by(Contact.id)))


def apply_to_matching(action, search_args, argument=None, user_id=None):
    """The "everything matching the filter" selection: runs in a job, chunk by chunk."""
    ids = matching_contact_ids(search_args, user_id)
    with audit.acting_as(user_id, "bulk"):
        for start in range(0, len(ids), CHUNK):
            apply(action, ids[start:start + CHUNK], argument, user_id)
            db.session.commit()
    return len(ids)


def enqueue_apply_to_matching(action, search_args, argument, user_id):
    """Queue apply_to_matching as a job (a filter can match more contacts than a request should touch)."""
    return enqueue("jobs.contact_actions.apply_to_matching_contacts", action, search_args, argument, user_id)


def choices(kind):
    """(id, name) rows a bulk action's form offers: every list ("list") or every active user ("user")."""
    if kind == "list":
        return db.session.execute(select(ContactList.id, ContactList.name).where(OWN_LISTS)
                                  .order_by(ContactList.name)).all()
    if kind == "user":
        return db.session.execute(select(User.id, User.username).where(User.active.is_(True))
                                  .order_by(User.username)).all()
    return []
