"""Every table of the CRM. Alembic (migrations/) owns the schema."""
from datetime import time

from flask_appbuilder import Model
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    Time,
    UniqueConstraint,
    func,
    select,
    text,
)
from sqlalchemy.orm import column_property, relationship

from app.display import phone as shown_phone
from app.utc import utcnow  # noqa: F401 - callers take it with the models


class Contact(Model):
    __tablename__ = "contacts"
    id = Column(Integer, primary_key=True)
    first_name = Column(String(100), index=True)
    last_name = Column(String(100), index=True)
    # The name as the list, form or sync gave it, when the contact rules changed its case ("MARY O'BRIEN").
    name_as_received = Column(String(201))
    phone = Column(String(20), unique=True)  # E.164
    email = Column(String(255), index=True)
    mail_address = Column(String(255))
    mail_city = Column(String(100))
    mail_state = Column(String(2))
    mail_zip = Column(String(10))
    source = Column(String(30), nullable=False, default="manual", index=True)
    assigned_user_id = Column(Integer, ForeignKey("ab_user.id", ondelete="SET NULL"), index=True)
    assigned_user = relationship("User")
    notes = Column(Text)
    created_at = Column(DateTime, nullable=False, default=utcnow, index=True)
    updated_at = Column(DateTime, nullable=False, default=utcnow, onupdate=utcnow)

    properties = relationship("ContactProperty", back_populates="contact", cascade="all, delete-orphan")
    memberships = relationship("ListMember", back_populates="contact", cascade="all, delete-orphan")
    messages = relationship("Message", back_populates="contact", order_by="Message.created_at")

    def __repr__(self):
        name = " ".join(p for p in (self.first_name, self.last_name) if p)
        return name or shown_phone(self.phone) or self.email or f"Contact {self.id}"


class Property(Model):
    __tablename__ = "properties"
    id = Column(Integer, primary_key=True)
    key = Column(String(255), nullable=False, unique=True)  # see key_for
    apn = Column(String(64), index=True)
    type = Column(String(10), index=True)
    address = Column(String(255))
    city = Column(String(100), index=True)
    state = Column(String(2), index=True)
    zip = Column(String(10), index=True)
    subdivision = Column(String(255))
    latitude = Column(Float)
    longitude = Column(Float)
    year_built = Column(Integer, index=True)
    square_feet = Column(Integer)
    beds = Column(Integer)
    baths = Column(Float)
    estimated_value = Column(BigInteger)
    estimated_equity = Column(BigInteger)

    @staticmethod
    def key_for(apn=None, address=None, city=None, zip_code=None):
        """A property's identity: its APN when known, else "addr:" + ADDRESS|CITY|ZIP upper-cased with
        runs of spaces collapsed, so every door that creates a property finds the same one."""
        if apn:
            return apn
        if not address:
            return None
        return "addr:" + " ".join(f"{address}|{city or ''}|{zip_code or ''}".upper().split())
    estimated_equity_pct = Column(Float)
    purchase_date = Column(Date)
    purchase_months_since = Column(Integer)
    owner_name = Column(String(255))
    owner_occupied = Column(Boolean)
    listed_for_sale = Column(Boolean)
    listing_status = Column(String(50))
    foreclosure = Column(Boolean)
    high_equity = Column(Boolean)
    mail_address = Column(String(255))
    mail_city = Column(String(100))
    mail_state = Column(String(2))
    mail_zip = Column(String(10))
    created_at = Column(DateTime, nullable=False, default=utcnow)
    updated_at = Column(DateTime, nullable=False, default=utcnow, onupdate=utcnow)

    contacts = relationship("ContactProperty", back_populates="property", cascade="all, delete-orphan")

    def __repr__(self):
        return ", ".join(p for p in (self.address, self.city) if p) or self.key


class ContactProperty(Model):
    """A person's link to a property: primary owner, secondary owner or other."""
    __tablename__ = "contact_properties"
    contact_id = Column(Integer, ForeignKey("contacts.id", ondelete="CASCADE"), primary_key=True)
    property_id = Column(Integer, ForeignKey("properties.id", ondelete="CASCADE"), primary_key=True, index=True)
    role = Column(String(20), nullable=False, default="primary")
    contact = relationship("Contact", back_populates="properties")
    property = relationship("Property", back_populates="contacts")

    def __repr__(self):
        return f"{self.role}: {self.property}"


class ContactList(Model):
    __tablename__ = "lists"
    id = Column(Integer, primary_key=True)
    name = Column(String(200), nullable=False, unique=True)
    description = Column(Text)
    created_by_id = Column(Integer, ForeignKey("ab_user.id", ondelete="SET NULL"))
    created_at = Column(DateTime, nullable=False, default=utcnow, index=True)
    # Set on the contacts picked by hand for one campaign ("Text selected"): hidden from Lists and
    # every list picker, and deleted with its campaign.
    campaign_id = Column(Integer, ForeignKey("campaigns.id", ondelete="CASCADE"), index=True)
    members = relationship("ListMember", back_populates="list", cascade="all, delete-orphan")

    def __repr__(self):
        return self.name


class ListMember(Model):
    __tablename__ = "list_members"
    list_id = Column(Integer, ForeignKey("lists.id", ondelete="CASCADE"), primary_key=True)
    contact_id = Column(Integer, ForeignKey("contacts.id", ondelete="CASCADE"), primary_key=True, index=True)
    added_at = Column(DateTime, nullable=False, default=utcnow)
    list = relationship("ContactList", back_populates="members")
    contact = relationship("Contact", back_populates="memberships")

    def __repr__(self):
        return str(self.list)


# Lists people made (Lists, the pickers), as opposed to one campaign's hand-picked contacts.
OWN_LISTS = ContactList.campaign_id.is_(None)
ContactList.member_count = column_property(
    select(func.count()).where(ListMember.list_id == ContactList.id).correlate_except(ListMember).scalar_subquery())


class OptOut(Model):
    """Phone-level suppression. Keyed by phone, so it outlives the contact."""
    __tablename__ = "opt_outs"
    id = Column(Integer, primary_key=True)
    phone = Column(String(20), unique=True)  # None once the contact was erased: phone_hash remains
    phone_hash = Column(String(64), unique=True)  # sha256 of the E.164 phone
    active = Column(Boolean, nullable=False, default=True, index=True)
    source = Column(String(20), nullable=False)  # keyword, phrase, manual, dnc, api, bulk, openphone history
    reason = Column(Text)
    message_id = Column(Integer, ForeignKey("messages.id", ondelete="SET NULL"))
    created_by_id = Column(Integer, ForeignKey("ab_user.id", ondelete="SET NULL"))
    created_at = Column(DateTime, nullable=False, default=utcnow, index=True)
    revoked_at = Column(DateTime)
    revoked_message_id = Column(Integer, ForeignKey("messages.id", ondelete="SET NULL"))
    created_by = relationship("User", foreign_keys=[created_by_id])

    def __repr__(self):
        return shown_phone(self.phone) or f"erased ({(self.phone_hash or '')[:8]})"


# What a new campaign starts with, whichever door creates it (the form, "Text selected", the API).
DEFAULT_TEMPLATE = "Hi {first_name|there}, "
DEFAULT_DAILY_LIMIT = 125
DEFAULT_WINDOW = (time(9), time(17))  # in COMPANY_TIMEZONE
DEFAULT_WINDOW_DAYS = "0,1,2,3,4"  # Monday=0


class Campaign(Model):
    __tablename__ = "campaigns"
    id = Column(Integer, primary_key=True)
    name = Column(String(200), nullable=False)
    status = Column(String(20), nullable=False, default="draft", index=True)
    sending_number = Column(String(40), nullable=False)
    daily_limit = Column(Integer, nullable=False, default=DEFAULT_DAILY_LIMIT)
    window_days = Column(String(20), nullable=False, default=DEFAULT_WINDOW_DAYS)  # Monday=0
    window_start = Column(Time, nullable=False, default=DEFAULT_WINDOW[0])
    window_end = Column(Time, nullable=False, default=DEFAULT_WINDOW[1])
    start_date = Column(Date)
    frequency_cap_days = Column(Integer, nullable=False, default=30)
    include_previously_texted = Column(Boolean, nullable=False, default=False)
    # Contacts with a QuickBooks customer (existing customers) are left out unless this is set.
    include_existing_customers = Column(Boolean, nullable=False, default=False, server_default="0")
    append_opt_out_line = Column(Boolean, nullable=False, default=True)
    filters = Column(JSON)  # property types, cities, zips, year built range, not replied
    winner_variant_id = Column(Integer)  # campaign_variants.id; no FK: the two tables point at each other
    created_by_id = Column(Integer, ForeignKey("ab_user.id", ondelete="SET NULL"))
    created_at = Column(DateTime, nullable=False, default=utcnow, index=True)
    started_at = Column(DateTime)
    finished_at = Column(DateTime)
    planned_at = Column(DateTime)  # audience planned; counts per exclusion reason are final
    plan_error = Column(Text)
    lists = relationship("ContactList", secondary="campaign_lists")
    variants = relationship("CampaignVariant", back_populates="campaign", foreign_keys="CampaignVariant.campaign_id",
                            cascade="all, delete-orphan", order_by="CampaignVariant.label")

    def __repr__(self):
        return self.name


class CampaignList(Model):
    __tablename__ = "campaign_lists"
    campaign_id = Column(Integer, ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True)
    list_id = Column(Integer, ForeignKey("lists.id", ondelete="CASCADE"), primary_key=True, index=True)


class CampaignVariant(Model):
    __tablename__ = "campaign_variants"
    __table_args__ = (UniqueConstraint("campaign_id", "label"),)
    id = Column(Integer, primary_key=True)
    campaign_id = Column(Integer, ForeignKey("campaigns.id", ondelete="CASCADE"), nullable=False)
    label = Column(String(5), nullable=False)
    template = Column(Text, nullable=False)
    campaign = relationship("Campaign", back_populates="variants", foreign_keys=[campaign_id])

    def __repr__(self):
        return f"Variant {self.label}"


class CampaignRecipient(Model):
    """One phone in one campaign; its status is the sender's state machine."""
    __tablename__ = "campaign_recipients"
    __table_args__ = (
        UniqueConstraint("campaign_id", "phone"),
        Index("ix_campaign_recipients_campaign_status", "campaign_id", "status", "position"),
    )
    id = Column(Integer, primary_key=True)
    campaign_id = Column(Integer, ForeignKey("campaigns.id", ondelete="CASCADE"), nullable=False)
    contact_id = Column(Integer, ForeignKey("contacts.id", ondelete="SET NULL"), index=True)
    phone = Column(String(20), index=True)  # None: the contact has no valid phone (excluded)
    state = Column(String(2))  # the property's state at planning time; decides the legal window
    variant_id = Column(Integer, ForeignKey("campaign_variants.id", ondelete="SET NULL"), index=True)
    position = Column(Integer, nullable=False, default=0)
    # excluded, queued, sending, sent, failed, review, skipped
    status = Column(String(20), nullable=False, default="queued")
    exclusion_reason = Column(String(40))
    error = Column(Text)
    sending_started_at = Column(DateTime)
    sent_at = Column(DateTime, index=True)
    replied_at = Column(DateTime)
    opted_out_at = Column(DateTime)
    campaign = relationship("Campaign")
    contact = relationship("Contact")
    variant = relationship("CampaignVariant")

    def __repr__(self):
        return shown_phone(self.phone) or f"{self.__tablename__} {self.id}"


class Message(Model):
    __tablename__ = "messages"
    __table_args__ = (Index("ix_messages_contact_created", "contact_id", "created_at"),
                      # the Inbox reads the few inbound texts among the many sent (app/inbox.py)
                      Index("ix_messages_incoming_contact", "contact_id", "created_at",
                            postgresql_where=text("direction = 'incoming'"), sqlite_where=text("direction = 'incoming'")))
    id = Column(Integer, primary_key=True)
    contact_id = Column(Integer, ForeignKey("contacts.id", ondelete="SET NULL"))
    campaign_recipient_id = Column(Integer, ForeignKey("campaign_recipients.id", ondelete="SET NULL"), index=True)
    direction = Column(String(10), nullable=False)  # incoming, outgoing (calls: the calls table)
    kind = Column(String(30), nullable=False, default="sms")  # sms, call.completed, call.missed, ...
    body = Column(Text)
    status = Column(String(20), nullable=False, index=True)
    provider_id = Column(String(64), unique=True)
    from_phone = Column(String(40))
    to_phone = Column(String(40), index=True)
    error = Column(Text)
    # Inbound texts: keyword, phrase, opt_in or uncertain (a person decides); None otherwise.
    opt_out_class = Column(String(20), index=True)
    opt_out_reviewed_at = Column(DateTime)
    sent_by_id = Column(Integer, ForeignKey("ab_user.id", ondelete="SET NULL"))
    created_at = Column(DateTime, nullable=False, default=utcnow, index=True)
    sending_started_at = Column(DateTime)  # claimed by a sender; reconciled if stuck
    sent_at = Column(DateTime)
    delivered_at = Column(DateTime)
    source = Column(String(30))  # "openphone history" for texts found by the history import
    contact = relationship("Contact", back_populates="messages")
    campaign_recipient = relationship("CampaignRecipient")

    def __repr__(self):
        return f"{self.direction} {self.created_at:%Y-%m-%d %H:%M}" if self.created_at else self.direction


class Import(Model):
    __tablename__ = "imports"
    id = Column(Integer, primary_key=True)
    filename = Column(String(255), nullable=False)
    size = Column(BigInteger, nullable=False)
    sha256 = Column(String(64), nullable=False, index=True)
    stored_path = Column(String(500), nullable=False)
    format = Column(String(20), nullable=False)  # propertyradar, contacts, dnc
    encoding = Column(String(20))
    delimiter = Column(String(2))
    mapping = Column(JSON)
    overwrite = Column(JSON)  # field names the user chose to overwrite
    list_id = Column(Integer, ForeignKey("lists.id", ondelete="SET NULL"), index=True)
    created_by_id = Column(Integer, ForeignKey("ab_user.id", ondelete="SET NULL"))
    status = Column(String(20), nullable=False, default="queued", index=True)
    total_rows = Column(Integer)
    rows_done = Column(Integer, nullable=False, default=0)  # checkpoint: data rows committed
    byte_offset = Column(BigInteger, nullable=False, default=0)  # checkpoint: file position
    error = Column(Text)
    cancel_requested = Column(Boolean, nullable=False, default=False)
    created_at = Column(DateTime, nullable=False, default=utcnow, index=True)
    started_at = Column(DateTime)
    heartbeat_at = Column(DateTime)
    finished_at = Column(DateTime)
    list = relationship("ContactList")

    def __repr__(self):
        return self.filename


class Export(Model):
    """A CSV file of contacts made by a job (a whole list or filter too big for one request): its
    state, progress and the file to download when done."""
    __tablename__ = "exports"
    id = Column(Integer, primary_key=True)
    created_by_id = Column(Integer, ForeignKey("ab_user.id", ondelete="SET NULL"), index=True)
    description = Column(String(255), nullable=False)  # what was asked for: "list Spring", "contacts matching ..."
    selection = Column(JSON, nullable=False)  # {"list_id": 3} or {"search": {"_flt_0_first_name": ["Ann"]}}
    status = Column(String(20), nullable=False, default="queued", index=True)  # queued, running, succeeded, failed
    total_rows = Column(Integer)
    rows_done = Column(Integer, nullable=False, default=0)
    stored_path = Column(String(500))
    error = Column(Text)
    created_at = Column(DateTime, nullable=False, default=utcnow, index=True)
    started_at = Column(DateTime)
    heartbeat_at = Column(DateTime)
    finished_at = Column(DateTime)

    def __repr__(self):
        return self.description


class ImportRow(Model):
    """The one outcome of one data row (or one person in it) of an import.

    A log, without foreign keys (migration 0006): imports are never deleted, and contact_id
    stays the contact the row made even after that contact is deleted."""
    __tablename__ = "import_rows"
    __table_args__ = (UniqueConstraint("import_id", "line", "person"),)
    id = Column(Integer, primary_key=True)
    import_id = Column(Integer, nullable=False)
    line = Column(Integer, nullable=False)  # data row number, 1-based
    person = Column(Integer, nullable=False, default=0)  # 0 = the row itself, 1 = primary, 2 = secondary
    outcome = Column(String(20), nullable=False)  # created, updated, unchanged, skipped, error, footer
    reason = Column(Text)
    contact_id = Column(Integer)
    raw = Column(JSON)  # original cells, kept for rows that were not imported


class WebhookEvent(Model):
    __tablename__ = "webhook_events"
    id = Column(Integer, primary_key=True)
    provider_event_id = Column(String(100), nullable=False, unique=True)
    type = Column(String(60), nullable=False, index=True)
    body = Column(Text, nullable=False)
    status = Column(String(20), nullable=False, default="received", index=True)
    attempts = Column(Integer, nullable=False, default=0)
    error = Column(Text)
    received_at = Column(DateTime, nullable=False, default=utcnow, index=True)
    processed_at = Column(DateTime)
    next_attempt_at = Column(DateTime, index=True)  # when a retrying event is due again


class AuditLog(Model):
    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_object", "object_type", "object_id"),)
    id = Column(Integer, primary_key=True)
    at = Column(DateTime, nullable=False, default=utcnow, index=True)
    user_id = Column(Integer, index=True)
    username = Column(String(100))
    action = Column(String(40), nullable=False, index=True)
    object_type = Column(String(60))
    object_id = Column(String(64))
    changes = Column(JSON)
    detail = Column(Text)
    ip = Column(String(64))


class UserSecurity(Model):
    """A user's security stamp: sessions and tokens carry it, and changing it ends them all
    (logout, password change, deactivation, role change)."""
    __tablename__ = "user_security"
    user_id = Column(Integer, ForeignKey("ab_user.id", ondelete="CASCADE"), primary_key=True)
    stamp = Column(String(32), nullable=False)
    changed_at = Column(DateTime, nullable=False, default=utcnow)


class IntegrationSecret(Model):
    """An integration credential (OpenPhone key, QuickBooks tokens), Fernet-encrypted."""
    __tablename__ = "integration_secrets"
    name = Column(String(60), primary_key=True)
    ciphertext = Column(Text, nullable=False)
    updated_at = Column(DateTime, nullable=False, default=utcnow, onupdate=utcnow)
    updated_by_id = Column(Integer, ForeignKey("ab_user.id", ondelete="SET NULL"))


class Todo(Model):
    """A to-do. Automatic ones carry a kind and a key (what they are about): each exists once,
    and is marked done when its condition ends."""
    __tablename__ = "todos"
    __table_args__ = (Index("ux_todos_kind_key", "kind", "key", unique=True),)
    id = Column(Integer, primary_key=True)
    kind = Column(String(30))  # schedule_job, follow_up_estimate, chase_invoice, call_back; None: by hand
    key = Column(String(100))
    contact_id = Column(Integer, ForeignKey("contacts.id", ondelete="CASCADE"), index=True)
    title = Column(String(255), nullable=False)
    due_date = Column(Date, index=True)
    done = Column(Boolean, nullable=False, default=False)
    assigned_user_id = Column(Integer, ForeignKey("ab_user.id", ondelete="SET NULL"), index=True)
    created_at = Column(DateTime, nullable=False, default=utcnow)
    contact = relationship("Contact")
    assigned_user = relationship("User")

    def __repr__(self):
        return self.title


from flask_appbuilder.security.sqla.models import User  # noqa: E402,F401  (resolves "User" above)

from app.history_models import Call, HistoryImport, HistoryItem, Media  # noqa: E402,F401  (OpenPhone history)
from app.inbox_models import ConversationRead, ConversationState, SavedReply  # noqa: E402,F401  (the Inbox)
from app.money_models import (  # noqa: E402,F401  (QuickBooks mirror and jobs)
    Estimate,
    Invoice,
    Job,
    Payment,
    PaymentInvoice,
    QbCustomer,
    QuickbooksSync,
)
