"""Tables for OpenPhone's past: calls, downloaded media, and history import runs with an
outcome per item. Alembic (migrations/) owns the schema."""
from flask_appbuilder import Model
from sqlalchemy import JSON, BigInteger, Column, DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import relationship

from app.utc import utcnow

MISSED_CALL_STATUSES = ("missed", "no-answer")  # OpenPhone's statuses of a call nobody answered


class Call(Model):
    """One OpenPhone call, from a webhook or the history import (OpenPhone's id is unique)."""
    __tablename__ = "calls"
    __table_args__ = (Index("ix_calls_contact_created", "contact_id", "created_at"),)
    id = Column(Integer, primary_key=True)
    provider_id = Column(String(64), nullable=False, unique=True)
    contact_id = Column(Integer, ForeignKey("contacts.id", ondelete="SET NULL"))
    phone = Column(String(40), index=True)  # the other party
    phone_number_id = Column(String(40))  # our OpenPhone number (PN...)
    direction = Column(String(10), nullable=False)  # incoming, outgoing
    status = Column(String(20), nullable=False, index=True)  # completed, missed, no-answer, ...
    duration = Column(Integer, nullable=False, default=0)  # seconds
    answered_by = Column(String(64))
    recording_url = Column(Text)
    voicemail_url = Column(Text)
    voicemail_transcript = Column(Text)
    summary = Column(Text)
    transcript = Column(Text)
    source = Column(String(30), nullable=False, default="webhook")  # webhook, openphone history
    created_at = Column(DateTime, nullable=False, default=utcnow, index=True)
    contact = relationship("Contact")

    @property
    def answer_needed(self):
        """A missed incoming call or a voicemail is something to answer."""
        return self.direction == "incoming" and (self.status in MISSED_CALL_STATUSES or bool(self.voicemail_url))

    def __repr__(self):
        return f"{self.direction} call {self.status}"


class Media(Model):
    """A photo or voicemail recording downloaded from OpenPhone into storage (app/media.py)."""
    __tablename__ = "media"
    id = Column(Integer, primary_key=True)
    message_id = Column(Integer, ForeignKey("messages.id", ondelete="CASCADE"), index=True)
    call_id = Column(Integer, ForeignKey("calls.id", ondelete="CASCADE"), index=True)
    contact_id = Column(Integer, ForeignKey("contacts.id", ondelete="SET NULL"), index=True)
    url = Column(Text, nullable=False)
    content_type = Column(String(100))
    size = Column(BigInteger)
    path = Column(String(500))  # its key in storage: under MEDIA_FOLDER or the MEDIA_S3_URL bucket
    status = Column(String(20), nullable=False, default="pending")  # stored, rejected, failed
    error = Column(Text)
    created_at = Column(DateTime, nullable=False, default=utcnow)
    contact = relationship("Contact")


class HistoryImport(Model):
    """One pull of OpenPhone's history: its checkpoint lives here, so a killed run resumes."""
    __tablename__ = "history_imports"
    id = Column(Integer, primary_key=True)
    kind = Column(String(20), nullable=False, default="full")  # full, nightly
    since = Column(DateTime)
    status = Column(String(20), nullable=False, default="queued", index=True)  # queued, running, done, failed
    checkpoint = Column(JSON)
    error = Column(Text)
    created_by_id = Column(Integer, ForeignKey("ab_user.id", ondelete="SET NULL"))
    created_at = Column(DateTime, nullable=False, default=utcnow, index=True)
    started_at = Column(DateTime)
    heartbeat_at = Column(DateTime)
    finished_at = Column(DateTime)

    def __repr__(self):
        return f"History import {self.id}"


class HistoryItem(Model):
    """What happened to one OpenPhone item in one run: created, existing, skipped or failed."""
    __tablename__ = "history_items"
    __table_args__ = (UniqueConstraint("import_id", "kind", "provider_id"),)
    id = Column(Integer, primary_key=True)
    import_id = Column(Integer, ForeignKey("history_imports.id", ondelete="CASCADE"), nullable=False)
    kind = Column(String(20), nullable=False)  # message, call, conversation, media, phone_number
    provider_id = Column(String(200), nullable=False)
    outcome = Column(String(20), nullable=False, index=True)
    reason = Column(Text)
    phone = Column(String(40))
    message_id = Column(Integer)
    call_id = Column(Integer)
    created_at = Column(DateTime, nullable=False, default=utcnow)
