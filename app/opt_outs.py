"""Opt-outs: what counts as one, and the phone-level suppression list every sender obeys.

Every opt-out, whatever the door (a reply, the Opt-outs screen, the API, "Do not text" on a
contact, a bulk action, a do-not-contact file), is written by opt_out() or, for files, with
phone_hash() beside the phone; every check goes through is_opted_out(), opted_out_phones() or
opted_out_clause(), which match the phone or its hash (an erased contact leaves only the hash)."""
import hashlib
import re
import unicodedata

from flask import current_app
from flask_appbuilder.security.sqla.models import User
from sqlalchemy import exists, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import String

from app import audit, display
from app.contacts import normalize_phone
from app.extensions import db
from app.models import OptOut, utcnow

# Opt-outs a person's own START / UNSTOP may lift; manual, dnc, api and bulk ones stay.
LIFTABLE_SOURCES = {"keyword", "phrase", "openphone history"}
SOURCE_LABELS = {"keyword": "replied with an opt-out keyword", "phrase": "asked by text to stop",
                 "manual": "recorded by hand", "dnc": "on a do-not-contact file", "api": "recorded through the API",
                 "bulk": "opted out by a bulk action", "erasure": "erased on request (only a hash of the phone is kept)",
                 "openphone history": "asked to stop in a text found in the OpenPhone history"}


class OptedOut(Exception):
    """The phone has opted out of texts; nothing may be sent to it."""


class InvalidPhone(ValueError):
    """An opt-out for something that is not a phone number."""


def phone_hash(phone):
    """sha256 hex of an E.164 phone: what an erased contact's opt-out keeps."""
    return hashlib.sha256(phone.encode()).hexdigest() if phone else None


class _Sha256Hex(FunctionElement):
    """phone_hash() in SQL: PostgreSQL's sha256(); SQLite gets the Python one at connect time."""
    type = String()
    inherit_cache = True


@compiles(_Sha256Hex)
def _sha256_sqlite(element, compiler, **kw):
    return f"sha256_hex({compiler.process(element.clauses, **kw)})"


@compiles(_Sha256Hex, "postgresql")
def _sha256_postgresql(element, compiler, **kw):
    return f"encode(sha256(convert_to({compiler.process(element.clauses, **kw)}, 'UTF8')), 'hex')"


def opted_out_clause(phone_column):
    """SQL condition: an active opt-out covers the phone in this column (by phone or by hash).
    The one definition the campaign planner and the sender's claim use."""
    return or_(exists().where(OptOut.phone == phone_column, OptOut.active.is_(True)),
               exists().where(OptOut.phone_hash == _Sha256Hex(phone_column), OptOut.active.is_(True)))


def _covering(phones):
    """Condition selecting opt-out rows for these E.164 phones, by phone or by hash."""
    return or_(OptOut.phone.in_(phones), OptOut.phone_hash.in_([phone_hash(p) for p in phones]))


def active_opt_out(phone):
    """The active OptOut row covering this phone, or None."""
    phone = normalize_phone(phone) or phone
    if not phone:
        return None
    return db.session.scalar(select(OptOut).where(_covering([phone]), OptOut.active.is_(True)).limit(1))


def is_opted_out(phone):
    return active_opt_out(phone) is not None


def opted_out_phones(phones):
    """The phones among these (already normalised) that have opted out, in one query."""
    phones = sorted({p for p in phones if p})
    if not phones:
        return set()
    by_hash = {phone_hash(p): p for p in phones}
    rows = db.session.execute(select(OptOut.phone, OptOut.phone_hash)
                              .where(_covering(phones), OptOut.active.is_(True))).all()
    return {phone if phone in by_hash.values() else by_hash.get(hashed) for phone, hashed in rows} - {None}


def opt_out(phone, source, reason=None, message_id=None, user_id=None):
    """Suppress a phone (idempotent): the one writer of opt-outs. Returns the OptOut row; the
    caller commits. Raises InvalidPhone when phone is not a valid number."""
    e164 = normalize_phone(phone)
    if not e164:
        raise InvalidPhone(f"{str(phone or '')[:40]!r} is not a valid phone number: write it with its area code, "
                           f"like 617-555-0123.")
    hashed = phone_hash(e164)
    reason = (reason or "").replace("\x00", "").strip() or None
    row = db.session.scalar(select(OptOut).where(_covering([e164])).limit(1))
    if row is None:
        try:
            with db.session.begin_nested():
                row = OptOut(phone=e164, phone_hash=hashed, source=source, reason=reason, message_id=message_id,
                             created_by_id=user_id)
                db.session.add(row)
            return row
        except IntegrityError:  # opted out concurrently by another process
            row = db.session.scalar(select(OptOut).where(_covering([e164])).limit(1))
    row.phone_hash = row.phone_hash or hashed
    if not row.active:
        row.active, row.source, row.reason = True, source, reason
        row.message_id, row.created_by_id, row.created_at = message_id, user_id, utcnow()
        row.revoked_at = row.revoked_message_id = None
    return row


def opt_in(phone, message_id=None):
    """A START / UNSTOP reply lifts the phone's keyword or phrase opt-out, never one recorded
    by a person or a file. Returns the lifted row or None; the caller commits."""
    row = active_opt_out(phone)
    if row is None or row.source not in LIFTABLE_SOURCES:
        return None
    row.active, row.revoked_at, row.revoked_message_id = False, utcnow(), message_id
    return row


def review_reply(message, confirmed, user_id=None):
    """A person's decision on a reply the classifier was unsure about: opt the sender out (as
    if the reply had been a clear request, so their own START can lift it) or dismiss it."""
    if confirmed and message.from_phone:
        opt_out(message.from_phone, "phrase", reason=(message.body or "")[:500], message_id=message.id,
                user_id=user_id)
        if message.campaign_recipient is not None:
            message.campaign_recipient.opted_out_at = message.campaign_recipient.opted_out_at or utcnow()
    message.opt_out_reviewed_at = utcnow()
    return message


def mark_do_not_text(contact, reason, user_id):
    """"Do not text" on a contact: a manual opt-out of its phone, with an audit row naming the contact.
    The caller commits."""
    row = opt_out(contact.phone, "manual", reason=reason, user_id=user_id)
    audit.record("do_not_text", "contacts", contact.id, detail=f"{contact.phone}: {reason}")
    return row


def describe(row):
    """Why a phone is not textable, for the contact page."""
    if row is None:
        return None
    who = f" by {row.created_by_id and _username(row.created_by_id)}" if row.created_by_id else ""
    opted = display.day(display.local_time(row.created_at, current_app.config["COMPANY_TIMEZONE"]))
    text = f"Opted out {opted}: {SOURCE_LABELS.get(row.source, row.source)}{who}"
    if row.reason:
        text += f' ("{row.reason[:200]}")'
    if row.source not in LIFTABLE_SOURCES:
        text += ". A START reply does not lift it"
    return text + "."


def _username(user_id):
    return db.session.scalar(select(User.username).where(User.id == user_id)) or f"user {user_id}"




# --- What a reply means ---------------------------------------------------------------------
# One classifier for every inbound text: Unicode NFKC + casefold, accents, punctuation and
# emoji dropped, then (1) a message made only of opt-out keywords, (2) clear phrases, with
# guards for negation ("don't stop") and ordinary uses ("stop by", "don't text me before
# 9am"), (3) words that might be an opt-out but are not clear: "uncertain", for a person.

KEYWORDS = {"stop", "stopall", "unsubscribe", "unsub", "cancel", "end", "quit", "revoke", "optout", "remove", "dnc",
            "parar", "para", "pare", "paren", "alto", "baja", "basta", "detener", "cancelar", "desuscribir",
            "desuscribirme"}
OPT_IN_KEYWORDS = {"start", "unstop"}
# The single words OpenPhone answers with its own confirmation (DOMAIN.md): for any other opt-out
# ("Parar", "unsub", "STOP STOP STOP", a phrase) the one confirmation allowed is ours to send.
PROVIDER_CONFIRMED = {"stop", "stopall", "unsubscribe", "cancel", "end", "quit"}
# Keywords that still mean "stop" with "please" or "now" around them; cancel, end, quit and
# remove are ordinary words unless they are the whole message.
STRONG = {"stop", "stopall", "unsubscribe", "unsub", "optout", "revoke", "dnc", "parar", "para", "pare", "paren",
          "alto", "baja", "basta", "detener", "desuscribir", "desuscribirme"}
# Strong keywords that are also everyday words inside a sentence (Spanish "para" = "for").
EVERYDAY = {"para", "pare", "alto", "baja"}
FILLERS = {"please", "pls", "plz", "plse", "now", "it", "asap", "immediately", "thanks", "thank", "you", "thx", "ty",
           "ok", "okay", "k", "already", "just", "right", "seriously", "really", "for", "real", "dude", "man", "bro",
           "lol", "omg", "sir", "maam", "i", "said", "again", "yall", "ugh", "god", "all", "this", "no", "nope",
           "hey", "hi", "oh", "and", "por", "favor", "ya", "gracias", "ahora", ",", "texts", "messages"}
_ME = (r"(?:me|us|u|him|her|them|this (?:number|phone|cell)|my (?:number|phone|cell|cell phone|info|information|"
       r"name|contact info|details|wife|husband))")
_TEXTS = r"(?:texts?|txts?|text messages?|messages?|msgs?|sms|spam|mensajes?|textos?)"
_SENDING = (r"(?:texting|txting|textin|texing|txtin|msging|messaging|messeging|sending|contacting|calling|"
            r"bothering|bugging|pestering|hounding|spamming|harassing|harrassing|hitting me up|blowing up my phone|"
            r"reaching out|emailing)")
_NEGATED = re.compile(r"(?:^| )(?:dont|do not|didnt|did not|never|wont|will not|cant|cannot|doesnt|does not|"
                      r"shouldnt|should not|not|why|if|wouldnt|would not|no need to|may|might|will it|does it|"
                      r"did it|can it|make it)(?: (?:you|u|ever|please|to|gonna|going|want|wanna|need|have|"
                      r"it|they|we|he|she|i|ask|mean|meant|did|do|does|would|will|are|is|can|could))*$")
_TIME = re.compile(r"^(?:before|after|until|till|til|during|between|so early|so late|this early|this late|at night|"
                   r"in the (?:morning|evening)|at work|while|when|on (?:weekends?|sundays?|saturdays?|the weekend)|"
                   r"at \d|past \d|earlier|later|early|late|today|tonight|right now|yet|for now|antes|despues|hasta|"
                   r"durante|tan temprano|tan tarde|en la noche|por la noche|en la manana|por la manana|a las|hoy)\b")
_STOP_CONTEXT = {"by", "in", "over", "at", "on", "off", "out", "around", "through", "the", "that", "a", "water",
                 "leak", "leaks", "leaking", "crack", "cracks", "cracking", "sign", "light", "raining", "rain",
                 "working", "smoking", "payment", "check", "de", "la", "el", "los", "las", "que", "mi", "un", "una"}
_CAUSING = {"make", "makes", "made", "let", "help", "helps", "get", "gets", "cause", "want", "need"}
_AFTER_STOP = {"bus", "full", "non", "pit", "one", "last", "first", "next", "truck", "rest", "a", "the", "my", "your",
               "our", "his", "her", "front"}
# (pattern, guard against negation before it, guard against a time after it)
_PHRASES = [(re.compile(p), negation, time) for p, negation, time in (
    (rf"\b(?:stop|quit|cease|discontinue) (?:all |the |these |those |your |ur |with the |with )?"
     rf"(?:{_SENDING}|{_TEXTS})\b", True, False),
    (rf"\b(?:no more|enough|enough with the|done with|tired of|sick of) (?:the |these |those |your |ur |all "
     rf"(?:the |these |your )?)?(?:{_TEXTS}|texting)\b", True, False),
    (rf"(?<!\bi )(?<!\bwe )(?<!\bthey )(?<!\bhe )(?<!\bshe )\b(?:dont|do not|never|dont ever|do not ever) "
     rf"(?:ever )?(?:(?:call|phone) (?:or|and|nor|n) )?(?:text|txt|message|msg|contact|sms|spam)(?: (?:or|and|nor|n) (?:call|text|contact|email|"
     rf"message))?(?: (?:{_ME}|again|anymore|any more|ever))*\b", False, True),
    (r"\bdo not (?:contact|disturb)\b|\bdo not (?:call|contact|text) (?:list|registry)\b|\bdnc\b", False, False),
    (rf"\b(?:remove|delete|erase|drop|take|scratch|cross|get|pull|strike|unlist) (?:{_ME} )?(?:off|from|out of|"
     rf"of)(?: of)? (?:your |the |this |ur |all |all your |you |yall |ya |any |every |these )?(?:\w+ )?"
     rf"(?:list|lists|database|db|contacts?|records|system|{_TEXTS})\b", True, False),
    (rf"\b(?:remove|delete|erase|drop) {_ME}\b|\btake {_ME} off\b|\b(?:lose|forget|delete|erase) (?:this|my|the) "
     rf"number\b", True, False),
    (r"\b(?:unsubscribe|unsub|optout|opt out|opt (?:me|us|my number) out|opting out|stopall|revoke)\b", True, False),
    (rf"\b(?:dont|do not|really dont|no longer|never) (?:want|need|wish|like|care for|appreciate)(?: to (?:get|"
     rf"receive|be getting|keep getting))? (?:(?:any|these|your|the|those|ur|this|more|anymore|any more|such) )*"
     rf"(?:{_TEXTS}|texting)\b", True, False),
    (r"\b(?:dont|do not|no longer) (?:want|wish|like) to be (?:contacted|texted|messaged|bothered)\b", True, False),
    (rf"\bnot interested in (?:(?:any|these|your|the|ur|receiving|getting) )*{_TEXTS}\b", False, False),
    (r"\b(?:leave (?:me|us) alone|go away|fuck off|f off|piss off|get lost|buzz off|back off|fuck you|"
     r"go to hell|quit it|cut it out|knock it off|wrong (?:number|person|guy|phone))\b", True, False),
    (r"\b(?:cancel|end|stop) (?:my |the |this |your )?subscription\b", True, False),
    (r"\b(?:told|asked|want|need|would like|wish) (?:you|u|yall|ya)(?: guys)? (?:to )?(?:stop|quit|not to (?:text|"
     r"contact|message))\b", True, False),
    (r"\b(?:report(?:ed|ing)?|block(?:ed|ing)?) (?:you|u|this number|your number)\b|\breport(?:ed|ing)? "
     r"(?:this |it |you )?(?:as|for|to) (?:spam|the fcc|fcc|ftc)\b", True, False),
    # Spanish
    (r"\bno (?:me |nos )?(?:vuelvas? a |vuelvan a )?(?:envies|envie|envien|enviar|mandes|mande|manden|mandar|"
     r"escribas|escriba|escriban|contactes|contacte|contacten|textees|textee|molestes|moleste|molesten|molestar)\b",
     False, True),
    (r"\b(?:deja|dejen|dejar|deje|para|paren|pare|parar|basta) de (?:enviar|mandar|escribir|textear|contactar|"
     r"molestar)\w*\b", True, False),
    (r"\bde baja\b|\bno mas (?:mensajes|textos)\b|\bnumero equivocado\b|\bbasta (?:de|con) (?:(?:tus|sus|los|"
     r"estos|tantos) )?(?:mensajes|textos)\b", True, False),
    (r"\bno (?:quiero|queremos|deseo|deseamos|me interesan)(?: (?:recibir|mas|sus|estos|tus|ningun|ninguno|"
     r"ningunos|los))* (?:mensajes?|textos?|msjs?|sms)\b", False, False),
    (r"\b(?:sac|quit|borr|elimin|baj)(?:ame|arme|enme|eme)\b|\b(?:borrar|eliminar|quitar|sacar) (?:mi numero|"
     r"mi telefono|mis datos)\b", True, False),
)]
_UNCERTAIN = re.compile(
    r"^(?:(?:please|pls|ok) )?(?:no more|enough|enough already)$|"
    r"\b(?:not interested|no interest|no estoy interesad[oa]|no me interesa|no tengo interes|spam|scam|scammer|spammer|harass\w*|"
    r"lawyer|attorney|sue|suing|tcpa|fcc|ftc|illegal|sold (?:the|my|that|this) (?:house|home|property)|"
    r"no longer (?:own|live)|not the (?:owner|homeowner)|dont own|do not own|"
    r"i (?:never|did not|didnt) (?:sign(?:ed)? up|subscribe|opt(?:ed)? in|ask|consent))\b")


def _squeeze(word):
    return re.sub(r"(.)\1+", r"\1", word)


_SQUEEZED = {_squeeze(k): k for k in KEYWORDS | OPT_IN_KEYWORDS}


def _near(a, b):
    """Within one typo: a substitution, an insertion or deletion, or two letters swapped."""
    if a == b or abs(len(a) - len(b)) > 1:
        return a == b
    if len(a) == len(b):
        diff = [i for i in range(len(a)) if a[i] != b[i]]
        return len(diff) == 1 or (len(diff) == 2 and diff[1] == diff[0] + 1 and a[diff[0]] == b[diff[1]]
                                  and a[diff[1]] == b[diff[0]])
    short, long_ = sorted((a, b), key=len)
    return any(long_[:i] + long_[i + 1:] == short for i in range(len(long_)))


def _keyword(word):
    """The keyword this word is, allowing for stretched letters and one typo in long ones."""
    if word in KEYWORDS or word in OPT_IN_KEYWORDS:
        return word
    squeezed = _squeeze(word)
    if squeezed in _SQUEEZED:
        return _SQUEEZED[squeezed]
    for keyword in STRONG:
        if len(keyword) >= 6 and _near(squeezed, _squeeze(keyword)):
            return keyword
        if len(keyword) >= 4 and len(word) == len(keyword) and sorted(word) == sorted(keyword) and _near(word, keyword):
            return keyword  # two letters swapped: "sotp"
    return None


def _sentences(text):
    """Each sentence as a list of words (commas kept as ',' tokens), every word normalised."""
    text = unicodedata.normalize("NFKC", (text or "").replace("\x00", "")).casefold()
    text = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    text = re.sub(r"['\u2019`\u00b4]", "", text).replace("#", " number ").replace("&", " and ")
    sentences = []
    for part in re.split(r"[.!?;:\n\u00a1\u00bf\u2026]+", text):
        words = [_keyword(w) or w for w in re.findall(r"[^\W_]+|,", part)]
        while words and words[0] == ",":
            words.pop(0)
        if words:
            sentences.append(words)
    return sentences


def _unguarded(sentence, start, end, negation, time):
    """A phrase found at sentence[start:end] is meant: not negated before, not a timing after."""
    before = sentence[:start].rsplit(",", 1)[-1].strip()
    if negation and _NEGATED.search(before):
        return False
    return not (time and _TIME.match(sentence[end:].lstrip(" ,")))


def _sentence_verdict(words):
    """'phrase', 'uncertain' or None for one sentence."""
    joined = " ".join(words)
    for pattern, negation, time in _PHRASES:
        if any(_unguarded(joined, m.start(), m.end(), negation, time) for m in pattern.finditer(joined)):
            return "phrase"
    content = [w for w in words if w not in FILLERS]
    if content and all(w in KEYWORDS for w in content):
        if any(w in STRONG for w in content) and not _NEGATED.search(" ".join(words[:words.index(content[0])])):
            return "phrase"  # "stop please", "STOP NOW", "para ya"
        return "uncertain"  # "cancel please", "end now"
    for i, word in enumerate(words):
        if word in STRONG and word not in EVERYDAY:
            before, after = " ".join(words[:i]).rsplit(",", 1)[-1].strip(), words[i + 1:i + 2]
            if (_NEGATED.search(before) or (after and after[0] in _STOP_CONTEXT) or (i and words[i - 1] in _AFTER_STOP)
                    or _CAUSING & set(before.split())):
                continue  # "don't stop", "stop by", "bus stop", "make the leak stop"
            rest = [w for w in words[i + 1:] if w not in FILLERS]
            return "phrase" if not rest or (after and after[0] == ",") else "uncertain"
    return "uncertain" if _UNCERTAIN.search(joined) else None


def provider_confirms(text):
    """True when the text is one word OpenPhone itself confirms as an opt-out."""
    word = re.sub(r"[\s.!]+", "", unicodedata.normalize("NFKC", text or "").replace("\x00", "")).casefold()
    return word in PROVIDER_CONFIRMED


def classify_opt_out(text):
    """'keyword', 'phrase', 'opt_in', 'uncertain' or None for one inbound text."""
    sentences = _sentences(text)
    words = [w for s in sentences for w in s if w != ","]
    if not words:
        return "uncertain" if "\U0001f6d1" in (text or "") else None  # a lone stop-sign emoji
    if all(w in KEYWORDS for w in words) or "".join(words) in KEYWORDS:
        return "keyword"
    if all(w in OPT_IN_KEYWORDS for w in words):
        return "opt_in"
    if len(words) == 1 and any(len(k) >= 4 and _near(_squeeze(words[0]), k) for k in STRONG - EVERYDAY):
        return "uncertain"  # "stip", "unsubscrbe!"
    verdicts = {_sentence_verdict(s) for s in sentences}
    return "phrase" if "phrase" in verdicts else "uncertain" if "uncertain" in verdicts else None
