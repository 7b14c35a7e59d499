"""A contact's data on request: everything the CRM holds about one person as one JSON document,
and erasure, which keeps only a hashed opt-out so the phone is never texted again."""
from datetime import date, datetime, time
from decimal import Decimal

from sqlalchemy import delete, inspect, or_, select, update

from app import audit
from app.extensions import db
from app.history_models import Call, Media
from app.media import storage
from app.models import (
    AuditLog,
    Campaign,
    CampaignRecipient,
    Contact,
    ContactList,
    ContactProperty,
    ImportRow,
    ListMember,
    Message,
    OptOut,
    Property,
    Todo,
    WebhookEvent,
)
from app.opt_outs import opt_out, phone_hash

ERASED = "erased"
# Property columns that describe the owner rather than the house.
OWNER_COLUMNS = ("owner_name", "mail_address", "mail_city", "mail_state", "mail_zip")


def _plain(value):
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    return value


def _row(obj, skip=()):
    """Every column of an ORM row as JSON-ready values."""
    return {attr.key: _plain(getattr(obj, attr.key)) for attr in inspect(obj).mapper.column_attrs
            if attr.key not in skip}


def messages_of(contact):
    """The contact's messages and calls: linked to the contact, or to or from their phone."""
    condition = Message.contact_id == contact.id
    if contact.phone:
        condition = or_(condition, Message.from_phone == contact.phone, Message.to_phone == contact.phone)
    return db.session.scalars(select(Message).where(condition).order_by(Message.created_at, Message.id)).all()


def calls_of(contact):
    """The contact's calls: linked to the contact, or with their phone."""
    condition = Call.contact_id == contact.id
    if contact.phone:
        condition = or_(condition, Call.phone == contact.phone)
    return db.session.scalars(select(Call).where(condition).order_by(Call.created_at, Call.id)).all()


def _related_ids(contact_id, messages):
    """Ids of the rows hanging off a contact whose audit rows are about them too."""
    return {
        "messages": [m.id for m in messages],
        "calls": list(db.session.scalars(select(Call.id).where(Call.contact_id == contact_id))),
        "todos": list(db.session.scalars(select(Todo.id).where(Todo.contact_id == contact_id))),
        "properties": list(db.session.scalars(select(ContactProperty.property_id)
                                              .where(ContactProperty.contact_id == contact_id))),
    }


def _audit_condition(contact_id, ids):
    """Audit rows about the contact, their messages and todos, their property and list links, and
    their properties (whose owner columns name them)."""
    cid = str(contact_id)
    return or_(
        (AuditLog.object_type == "contacts") & (AuditLog.object_id == cid),
        (AuditLog.object_type == "messages") & AuditLog.object_id.in_([str(i) for i in ids["messages"]]),
        (AuditLog.object_type == "calls") & AuditLog.object_id.in_([str(i) for i in ids["calls"]]),
        (AuditLog.object_type == "todos") & AuditLog.object_id.in_([str(i) for i in ids["todos"]]),
        (AuditLog.object_type == "properties") & AuditLog.object_id.in_([str(i) for i in ids["properties"]]),
        (AuditLog.object_type == "contact_properties") & AuditLog.object_id.like(f"{cid}/%"),
        (AuditLog.object_type == "list_members") & AuditLog.object_id.like(f"%/{cid}"),
    )


def export_contact(contact_id):
    """Everything held about one contact, as a dict ready for json.dumps; audited as an export.
    Audit rows say when and what changed, not which employee did it or from where."""
    contact = db.session.get(Contact, contact_id)
    messages = messages_of(contact)
    links = db.session.execute(select(ContactProperty.role, Property).join(Property)
                               .where(ContactProperty.contact_id == contact_id).order_by(Property.id)).all()
    lists = db.session.execute(select(ContactList.name, ListMember.added_at).join(ListMember)
                               .where(ListMember.contact_id == contact_id).order_by(ContactList.name)).all()
    recipients = db.session.execute(select(Campaign.name, CampaignRecipient).join(Campaign).where(
        CampaignRecipient.contact_id == contact_id).order_by(CampaignRecipient.id)).all()
    history = db.session.scalars(select(AuditLog).where(_audit_condition(contact_id, _related_ids(contact_id, messages)))
                                 .order_by(AuditLog.id)).all()
    data = {
        "contact": _row(contact),
        "properties": [{"role": role, **_row(prop)} for role, prop in links],
        "lists": [{"name": name, "added_at": _plain(added)} for name, added in lists],
        "messages": [_row(m) for m in messages],
        "calls": [_row(c) for c in calls_of(contact)],
        "campaigns": [{"campaign": name, **_row(r, skip=("campaign_id",))} for name, r in recipients],
        "opt_outs": [_row(o) for o in _opt_outs(contact.phone)],
        "todos": [_row(t) for t in db.session.scalars(select(Todo).where(Todo.contact_id == contact_id))],
        "imports": [_row(r) for r in db.session.scalars(select(ImportRow).where(ImportRow.contact_id == contact_id))],
        "audit": [_row(a, skip=("user_id", "username", "ip")) for a in history],
    }
    audit.record_export("contacts", 1, object_id=contact_id,
                        detail="everything held about this contact: " + ", ".join(
                            f"{len(v)} {k}" for k, v in data.items() if isinstance(v, list)))
    return data


def _opt_outs(phone):
    if not phone:
        return []
    return db.session.scalars(select(OptOut).where(or_(OptOut.phone == phone,
                                                       OptOut.phone_hash == phone_hash(phone)))).all()


def erase_contact(contact_id, user_id=None):
    """Erase a contact on request: the phone is kept only as the hash of an opt-out (so a re-import
    is never texted), message bodies and the person's phone on them are blanked, queued texts are
    cancelled, owner details on their properties and the values in older audit rows are removed,
    and the contact row is deleted. One audit row records that an erasure happened, without data.
    Returns the counts of what was erased; the caller commits."""
    contact = db.session.get(Contact, contact_id)
    phone = contact.phone
    ids = _related_ids(contact_id, messages_of(contact))
    with audit.bulk():  # the change audit would copy the very values being erased
        if phone:
            suppression = opt_out(phone, "erasure", user_id=user_id)
            suppression.phone, suppression.reason = None, None
        db.session.flush()
        counts = {"messages": len(ids["messages"]), "calls": len(ids["calls"]), "opt_out": "kept as a hash" if phone else "no phone",
                  "audit_rows_redacted": _redact_history(contact_id, ids),
                  "media_files_deleted": _erase_media(contact_id, ids)}
        _erase_rows(contact_id, phone, ids["messages"])
        db.session.execute(delete(Contact).where(Contact.id == contact_id))
        db.session.expunge(contact)
    audit.record("erasure", "contacts", contact_id, changes=counts, detail="contact erased on request")
    return counts


def _erase_media(contact_id, ids):
    """Their photos and voicemail recordings: each stored file is deleted from storage (MEDIA_FOLDER
    or the bucket) and its row keeps only that it was erased. A file storage cannot delete now stops
    the erasure with an error (nothing is committed), so no photo outlives an erasure unnoticed."""
    rows = db.session.scalars(select(Media).where(or_(
        Media.contact_id == contact_id, Media.message_id.in_(ids["messages"] or [-1]),
        Media.call_id.in_(ids["calls"] or [-1])))).all()
    store, deleted = storage(), 0
    for media in rows:
        if media.path:
            store.delete(media.path)
            deleted += 1
    db.session.execute(update(Media).where(Media.id.in_([m.id for m in rows] or [-1]))
                       .values(path=None, url="", status="erased", error=None, size=None))
    return deleted


def _erase_rows(contact_id, phone, message_ids):
    """Core statements, past the audit listener on purpose (see erase_contact)."""
    run = db.session.execute
    run(update(Message).where(Message.id.in_(message_ids), Message.status == "queued")
        .values(status="cancelled", error="contact erased"))
    run(update(Message).where(Message.id.in_(message_ids)).values(body=None, error=None))
    calls = Call.contact_id == contact_id
    if phone:
        calls = or_(calls, Call.phone == phone)
    run(update(Call).where(calls).values(phone=None, voicemail_transcript=None, summary=None, transcript=None))
    if phone:
        run(update(Message).where(Message.from_phone == phone).values(from_phone=None))
        run(update(Message).where(Message.to_phone == phone).values(to_phone=None))
        run(update(WebhookEvent).where(WebhookEvent.body.contains(phone)).values(body="{}"))
    recipients = CampaignRecipient.contact_id == contact_id
    if phone:
        recipients = or_(recipients, CampaignRecipient.phone == phone)
    run(update(CampaignRecipient).where(recipients, CampaignRecipient.status == "queued")
        .values(status="skipped", exclusion_reason=ERASED))
    run(update(CampaignRecipient).where(recipients).values(phone=None, error=None))
    # Owner columns go only where the erased person is the property's one contact: on a house they
    # share, the owner name and mailing address are the other owners' data too.
    shared = select(ContactProperty.property_id).where(ContactProperty.contact_id != contact_id)
    owned = (select(ContactProperty.property_id).where(ContactProperty.contact_id == contact_id)
             .where(ContactProperty.property_id.not_in(shared)))
    run(update(Property).where(Property.id.in_(owned)).values(**dict.fromkeys(OWNER_COLUMNS)))
    run(update(ImportRow).where(ImportRow.contact_id == contact_id).values(raw=None))


def _redact_history(contact_id, ids):
    """Older audit rows keep what happened and which fields changed, not the values (of a property,
    only its owner columns). The one place that rewrites audit rows, with a Core UPDATE: the ORM
    refuses to."""
    rows = db.session.execute(select(AuditLog.id, AuditLog.object_type, AuditLog.changes, AuditLog.detail)
                              .where(_audit_condition(contact_id, ids))).all()
    for row_id, object_type, changes, detail in rows:
        if isinstance(changes, dict):
            changes = {key: ERASED if object_type != "properties" or key in OWNER_COLUMNS else value
                       for key, value in changes.items()}
        elif changes is not None:
            changes = ERASED
        keep_detail = object_type == "properties" or detail is None
        db.session.execute(update(AuditLog).where(AuditLog.id == row_id)
                           .values(changes=changes, detail=detail if keep_detail else ERASED))
    return len(rows)
