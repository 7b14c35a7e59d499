"""Opt-outs: what counts as one, and the phone-level suppression list every sender obeys."""
import re

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app.contacts import normalize_phone
from app.extensions import db
from app.models import OptOut, utcnow

# A whole message that is one of these (ignoring case, spaces and punctuation).
KEYWORDS = {"stop", "stopall", "unsubscribe", "cancel", "end", "quit", "revoke", "optout", "remove"}
OPT_IN_KEYWORDS = {"start", "unstop"}
_POLITE = r"(?:please |pls |plz |just |now |ok |okay )*"
_TAIL = r"(?: please| pls| plz| now| thanks| thank you| it| asap| immediately)*"
# Clear requests inside a longer message. Ordinary sentences that merely contain the
# words ("can you stop by friday", "end of the week works") match none of these.
PHRASES = [re.compile(p) for p in (
    rf"^{_POLITE}(?:stop|stopall|unsubscribe|optout|opt out|remove|quit|cancel|end|revoke){_TAIL}$",
    r"\bstop (?:all )?(?:texting|txting|messaging|sending|contacting|calling|bothering|spamming)\b",
    r"\b(?:stop|no more) (?:the |these |your |all )?(?:texts|text messages|messages|msgs|txts|spam)\b",
    r"\b(?:do not|dont|don t|never) (?:text|txt|message|contact|call|sms) (?:me|us|this number|my number)\b",
    r"\bremove (?:me|us|my number|this number|my phone)\b",
    r"\btake (?:me|us|my number|this number) off\b",
    r"\b(?:unsubscribe|opt) (?:me|us|my number)\b",
    r"\b(?:want|wish|like|need) to (?:opt out|optout|unsubscribe|be removed)\b",
    r"\blose (?:this|my) number\b",
    r"\bwrong number\b",
    r"\bleave me alone\b",
)]


class OptedOut(Exception):
    """The phone has opted out of texts; nothing may be sent to it."""


def _words(text):
    return re.sub(r"[^a-z0-9]+", " ", (text or "").lower().replace("'", "").replace("\u2019", "")).strip()


def classify_opt_out(text):
    """'keyword', 'phrase', 'opt_in' or None for one inbound text."""
    words = _words(text)
    squashed = words.replace(" ", "")
    if squashed in KEYWORDS:
        return "keyword"
    if squashed in OPT_IN_KEYWORDS:
        return "opt_in"
    if not words:
        return None
    sentences = [_words(s) for s in re.split(r"[.!?\n;,]+", text)] + [words]
    for sentence in sentences:
        if sentence and any(p.search(sentence) for p in PHRASES):
            return "phrase"
    return None


def is_opted_out(phone):
    phone = normalize_phone(phone) or phone
    return db.session.scalar(select(OptOut.id).filter_by(phone=phone, active=True)) is not None


def opted_out_phones(phones):
    """The phones among these (already normalised) that have opted out, in one query."""
    phones = {p for p in phones if p}
    if not phones:
        return set()
    return set(db.session.scalars(select(OptOut.phone).where(OptOut.phone.in_(phones), OptOut.active.is_(True))))


def opt_out(phone, source, reason=None, message_id=None, user_id=None):
    """Suppress a phone (idempotent). Returns the OptOut row; the caller commits."""
    phone = normalize_phone(phone) or phone
    row = db.session.scalar(select(OptOut).filter_by(phone=phone))
    if row is None:
        try:
            with db.session.begin_nested():
                row = OptOut(phone=phone, source=source, reason=reason, message_id=message_id,
                             created_by_id=user_id)
                db.session.add(row)
            return row
        except IntegrityError:  # opted out concurrently by another process
            row = db.session.scalar(select(OptOut).filter_by(phone=phone))
    if not row.active:
        row.active, row.source, row.reason = True, source, reason
        row.message_id, row.created_by_id, row.created_at = message_id, user_id, utcnow()
        row.revoked_at = row.revoked_message_id = None
    return row


def opt_in(phone, message_id=None):
    """Lift an opt-out (START / UNSTOP). Returns the row or None; the caller commits."""
    phone = normalize_phone(phone) or phone
    row = db.session.scalar(select(OptOut).filter_by(phone=phone, active=True))
    if row is not None:
        row.active, row.revoked_at, row.revoked_message_id = False, utcnow(), message_id
    return row
