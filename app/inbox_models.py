"""Tables of the Inbox: a conversation's shared state (done, snoozed), when each user last
opened it, and the saved replies of the send box. Alembic (migrations/) owns the schema."""
from flask_appbuilder import Model
from sqlalchemy import Column, DateTime, ForeignKey, Integer, String, Text
from sqlalchemy.orm import relationship

from app.utc import utcnow


class ConversationState(Model):
    """The team's filing of the conversation with one contact: Done until the next inbound text or
    missed call, or snoozed until a time (or the next inbound, whichever comes first)."""
    __tablename__ = "conversation_states"
    contact_id = Column(Integer, ForeignKey("contacts.id", ondelete="CASCADE"), primary_key=True)
    done_at = Column(DateTime)
    done_by_id = Column(Integer, ForeignKey("ab_user.id", ondelete="SET NULL"))
    snoozed_at = Column(DateTime)
    snoozed_until = Column(DateTime, index=True)
    snoozed_by_id = Column(Integer, ForeignKey("ab_user.id", ondelete="SET NULL"))
    contact = relationship("Contact")

    def __repr__(self):
        return f"conversation {self.contact_id}"


class ConversationRead(Model):
    """When a user last opened the conversation with a contact: it is unread for them when
    something came in after that. View state of one person, not business data (not audited)."""
    __tablename__ = "conversation_reads"
    user_id = Column(Integer, ForeignKey("ab_user.id", ondelete="CASCADE"), primary_key=True)
    contact_id = Column(Integer, ForeignKey("contacts.id", ondelete="CASCADE"), primary_key=True, index=True)
    opened_at = Column(DateTime, nullable=False, default=utcnow)


class SavedReply(Model):
    """A text the team sends often; merge fields ({first_name}, ...) are filled per contact."""
    __tablename__ = "saved_replies"
    id = Column(Integer, primary_key=True)
    title = Column(String(100), nullable=False, unique=True)
    body = Column(Text, nullable=False)
    created_by_id = Column(Integer, ForeignKey("ab_user.id", ondelete="SET NULL"))
    created_at = Column(DateTime, nullable=False, default=utcnow)
    updated_at = Column(DateTime, nullable=False, default=utcnow, onupdate=utcnow)

    def __repr__(self):
        return self.title or f"saved reply {self.id}"
