"""Saved replies: texts the team sends often, with merge fields ({first_name|there}) filled for
the contact in the send box. Admin and Marketer write them; everyone uses them."""
from sqlalchemy import select

from app.extensions import db
from app.inbox_models import SavedReply
from app.texts import render_template, token_values, validate_template


def check_reply(body):
    """TemplateError (what to fix) for an empty body or an unknown merge field."""
    validate_template(body)


def replies_for(contact):
    """Every saved reply, by title, as {"id", "title", "body"} with the contact's merge fields filled."""
    prop = contact.properties[0].property if contact is not None and contact.properties else None
    values = token_values(contact, prop)
    return [{"id": reply.id, "title": reply.title, "body": render_template(reply.body, values)}
            for reply in db.session.scalars(select(SavedReply).order_by(SavedReply.title))]
