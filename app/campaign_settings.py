"""A campaign as one page (and the REST API) writes it: name, audience (lists and filters),
messages A and optional B, the sending settings. Checked as a whole and saved in one commit, or
refused with a message per field and nothing changed. Also what the page shows while typing (a
preview from a real member, segments, cost) and the test text to the user's own phone."""
from datetime import date, time
from zoneinfo import ZoneInfo

from flask import current_app
from sqlalchemy import func, or_, select

from app import audit, campaigns, schedule
from app.campaigns import CampaignError, forecast_locations, texts_sent_today
from app.contacts import normalize_phone
from app.extensions import db
from app.messages import MAX_LENGTH, TextError, enqueue_send, queue_text
from app.models import (
    DEFAULT_WINDOW_DAYS,
    OWN_LISTS,
    Campaign,
    CampaignVariant,
    Contact,
    ContactList,
    ListMember,
    Message,
)
from app.opt_outs import OptedOut
from app.texts import TemplateError, estimate_cost, render_template, segment_info, token_values, validate_template

LABELS = ("A", "B")
TEST_KIND = "campaign_test"  # a test text: never a campaign send, never in a conversation count
FLAGS = ("include_previously_texted", "include_existing_customers", "append_opt_out_line")
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


class CampaignInputError(CampaignError):
    """What is wrong with a campaign as submitted: {field: message}; "form" for the whole."""

    def __init__(self, errors):
        self.errors = errors
        super().__init__(" ".join(errors.values()))


def _text(value):
    return "" if value is None else str(value).strip()


def _words(value):
    """"SFR, MFR", ["SFR", "MFR"] or ["SFR,MFR"] -> ["SFR", "MFR"]."""
    parts = value if isinstance(value, list | tuple) else [value]
    return [_text(word) for part in parts for word in _text(part).split(",") if _text(word)]


def _flag(value):
    return value is True or _text(value).lower() in ("y", "yes", "on", "true", "1")


def _integer(data, name, errors, label, low, high, required=True):
    raw = _text(data.get(name))
    if not raw:
        if required:
            errors[name] = f"Enter the {label}."
        return None
    try:
        number = int(raw)
    except ValueError:
        errors[name] = f"The {label} must be a whole number."
        return None
    if not low <= number <= high:
        errors[name] = f"The {label} must be between {low} and {high}."
    return number


def _clock(data, name, errors, label):
    raw = _text(data.get(name))
    try:
        return time.fromisoformat(raw) if raw else None
    except ValueError:
        errors[name] = f"The {label} must be a time such as 09:00."
        return None


def _message(data, label, errors):
    name = f"message_{label.lower()}"
    text = _text(data.get(name))
    if not text and label == "A":
        errors[name] = "Write message A: the text to send."
    elif text:
        try:
            validate_template(text)
        except TemplateError as exc:
            errors[name] = str(exc)
        if len(text) > MAX_LENGTH:
            errors[name] = f"The message is {len(text)} characters; OpenPhone accepts at most {MAX_LENGTH}."
    return text


def _filters(data, errors):
    raw = data.get("filters") or {}
    get = raw.get if isinstance(raw, dict) and raw else data.get
    filters = {}
    for name in ("property_types", "cities", "zips"):
        values = _words(get(name))
        if values:
            filters[name] = [v.upper() for v in values] if name == "property_types" else values
    for name, label in (("year_built_min", "earliest year built"), ("year_built_max", "latest year built")):
        year = _integer({name: get(name)}, name, errors, label, 1600, 2100, required=False)
        if year is not None and name not in errors:
            filters[name] = year
    if filters.get("year_built_min", 0) > filters.get("year_built_max", 9999):
        errors["year_built_max"] = "The latest year built is before the earliest."
    if _flag(get("not_replied")):
        filters["not_replied"] = True
    return filters


def clean_campaign(data):
    """The campaign's fields from what a form or a JSON body sent, or CampaignInputError."""
    errors = {}
    values = {"name": _text(data.get("name"))}
    if not values["name"]:
        errors["name"] = "Give the campaign a name."
    elif len(values["name"]) > 200:
        errors["name"] = "The name is longer than 200 characters."
    list_ids = sorted({int(i) for i in _words(data.get("lists")) if str(i).isdigit()})
    found = db.session.scalars(select(ContactList).where(ContactList.id.in_(list_ids))).all() if list_ids else []
    if not list_ids:
        errors["lists"] = "Choose at least one list: the audience."
    elif len(found) != len(list_ids):
        errors["lists"] = "A chosen list no longer exists: choose again."
    values["lists"] = sorted(found, key=lambda lst: lst.id)
    values["filters"] = _filters(data, errors)
    values["messages"] = {label: _message(data, label, errors) for label in LABELS}
    values["sending_number"] = normalize_phone(_text(data.get("sending_number")))
    if not values["sending_number"]:
        errors["sending_number"] = "The sending number must be a phone number such as (617) 555-0100."
    values["daily_limit"] = _integer(data, "daily_limit", errors, "daily limit", 1, 6000)
    values["frequency_cap_days"] = _integer(data, "frequency_cap_days", errors, "frequency cap", 0, 365)
    days = sorted({int(d) for d in _words(data.get("window_days")) if str(d).isdigit() and int(d) < 7})
    if not days:
        errors["window_days"] = "Tick at least one sending day."
    values["window_days"] = ",".join(str(d) for d in days)
    values["window_start"] = _clock(data, "window_start", errors, "window start")
    values["window_end"] = _clock(data, "window_end", errors, "window end")
    if not (values["window_start"] and values["window_end"]) and "window_start" not in errors:
        errors.setdefault("window_end", "Enter the sending window, e.g. 09:00 to 17:00.")
    elif values["window_start"] and values["window_end"] and values["window_end"] <= values["window_start"]:
        errors["window_end"] = "The window must end after it starts (e.g. 09:00 to 17:00)."
    try:
        values["start_date"] = date.fromisoformat(_text(data.get("start_date"))) if _text(data.get("start_date")) else None
    except ValueError:
        errors["start_date"] = "The start date must be a date such as 2026-12-01."
    values.update({flag: _flag(data.get(flag)) for flag in FLAGS})
    if errors:
        raise CampaignInputError(errors)
    return values


def save_campaign(data, campaign_id=None, user_id=None, partial=False):
    """Create (campaign_id None) or edit a campaign from submitted fields in one commit. Bad input
    raises CampaignInputError per field; an edit the campaign's state refuses raises it under
    "form" (the rules of app/campaigns: a scheduled campaign keeps its audience and messages).
    partial: the fields not sent keep their saved values (the REST API's PUT)."""
    if partial and campaign_id is not None:
        data = {**campaign_values(db.session.get(Campaign, campaign_id)), **data}
    values = clean_campaign(data)
    messages = values.pop("messages")
    if campaign_id is None:
        campaign = Campaign(created_by_id=user_id)
        db.session.add(campaign)
    else:
        campaign = db.session.get(Campaign, campaign_id, populate_existing=True)
        if campaign is None:
            raise CampaignInputError({"form": f"There is no campaign {campaign_id}."})
    try:
        with db.session.no_autoflush:  # every change first, then the state machine's guard sees them all
            _apply(campaign, values, messages)
        db.session.flush()  # app.campaigns._guard_flush refuses what the campaign's state does not allow
    except CampaignError as exc:
        db.session.rollback()
        raise CampaignInputError({"form": str(exc)}) from exc
    db.session.commit()
    return campaign


def _apply(campaign, values, messages):
    variants = {v.label: v for v in campaign.variants}
    for key, value in values.items():
        if getattr(campaign, key) != value:
            setattr(campaign, key, value)
    for label, text in messages.items():
        if text and label not in variants:
            campaign.variants.append(CampaignVariant(label=label, template=text))
        elif text and variants[label].template != text:
            variants[label].template = text
        elif not text and label in variants:
            campaign.variants.remove(variants[label])


def campaign_values(campaign=None):
    """The builder's fields for a campaign (or a new one's defaults), as the form and the API name them."""
    if campaign is None:
        start, end = Campaign.window_start.default.arg, Campaign.window_end.default.arg
        return {"name": "", "lists": [], "message_a": "", "message_b": "", "filters": {},
                "sending_number": current_app.config["OPENPHONE_FROM"], "daily_limit": 125,
                "frequency_cap_days": 30, "window_days": DEFAULT_WINDOW_DAYS.split(","),
                "window_start": start.strftime("%H:%M"), "window_end": end.strftime("%H:%M"), "start_date": "",
                "include_previously_texted": False, "include_existing_customers": False, "append_opt_out_line": True}
    messages = {v.label: v.template for v in campaign.variants}
    return {"name": campaign.name, "lists": [lst.id for lst in campaign.lists],
            "message_a": messages.get("A", ""), "message_b": messages.get("B", ""), "filters": campaign.filters or {},
            "sending_number": campaign.sending_number, "daily_limit": campaign.daily_limit,
            "frequency_cap_days": campaign.frequency_cap_days, "window_days": campaign.window_days.split(","),
            "window_start": campaign.window_start.strftime("%H:%M"), "window_end": campaign.window_end.strftime("%H:%M"),
            "start_date": campaign.start_date.isoformat() if campaign.start_date else "",
            **{flag: getattr(campaign, flag) for flag in FLAGS}}


def list_choices(campaign_id=None):
    """(id, name, members) for every list, the builder's audience picker; a campaign's own list of
    hand-picked contacts ("Text selected") is offered only on that campaign."""
    members = select(func.count(ListMember.contact_id)).where(ListMember.list_id == ContactList.id).scalar_subquery()
    offered = OWN_LISTS if campaign_id is None else or_(OWN_LISTS, ContactList.campaign_id == campaign_id)
    return db.session.execute(select(ContactList.id, ContactList.name, members).where(offered)
                              .order_by(ContactList.name)).all()


def sample_member(list_ids):
    """The first member with a phone of these lists: the real person previews are filled from."""
    if not list_ids:
        return None
    return db.session.scalars(select(Contact).join(ListMember, ListMember.contact_id == Contact.id).where(
        ListMember.list_id.in_(list_ids), Contact.phone.is_not(None)).order_by(Contact.id).limit(1)).first()


def list_audience(list_ids):
    """People with a phone in these lists (before planning: the most who could be texted)."""
    if not list_ids:
        return 0
    members = select(ListMember.contact_id).where(ListMember.list_id.in_(list_ids))
    return db.session.scalar(select(func.count(Contact.id)).where(Contact.id.in_(members),
                                                                  Contact.phone.is_not(None)))


def render_sample(template, contact, opt_out_line, today=None):
    prop = contact.properties[0].property if contact is not None and contact.properties else None
    return render_template(template, token_values(contact, prop, today), opt_out_line=opt_out_line)


def preview_messages(data):
    """What the builder shows while typing: each message filled from a real member, its characters,
    encoding and segments, and the cost of sending the audience its share (an error per bad message)."""
    list_ids = [int(i) for i in _words(data.get("lists")) if str(i).isdigit()]
    contact, audience = sample_member(list_ids), list_audience(list_ids)
    texts = {label: _text(data.get(f"message_{label.lower()}")) for label in LABELS}
    written = [label for label in LABELS if texts[label]]
    variants, total = {}, 0.0
    # A/B by position: A takes the odd one out (A, B, A, ...)
    shares = {label: audience // len(written) + (i < audience % len(written)) for i, label in enumerate(written)}
    for label in written:
        try:
            validate_template(texts[label])
        except TemplateError as exc:
            variants[label] = {"error": str(exc)}
            continue
        body = render_sample(texts[label], contact, _flag(data.get("append_opt_out_line")))
        info = segment_info(body)
        cost = estimate_cost(info["segments"] * shares[label])
        total += cost
        variants[label] = {"body": body, **info, "share": shares[label], "cost": cost}
    return {"audience": audience, "sample": _name(contact), "variants": variants, "cost": round(total, 2)}


def _name(contact):
    if contact is None:
        return None
    return " ".join(p for p in (contact.first_name, contact.last_name) if p) or contact.phone


# --- the test text to the user's own phone ---------------------------------------------------

def remembered_test_phone(user_id):
    """The phone this user last sent a test to (typed once, offered again)."""
    return db.session.scalar(select(Message.to_phone).where(Message.sent_by_id == user_id, Message.kind == TEST_KIND)
                             .order_by(Message.id.desc()).limit(1))


def send_test_text(campaign_id, label, phone, user_id, now=None):
    """Queue message `label` of a campaign, filled from a sample member, to the user's own phone:
    the one outbox (opt-outs apply), the recipient's quiet hours, audited, never a campaign send."""
    campaign = db.session.get(Campaign, campaign_id)
    if campaign is None:
        raise CampaignError(f"There is no campaign {campaign_id}.")
    variant = next((v for v in campaign.variants if v.label == label), None)
    if variant is None:
        raise CampaignError(f"This campaign has no message {label}.")
    number = normalize_phone(phone)
    if not number:
        raise CampaignError("Enter your mobile number, e.g. (617) 555-0123, to receive the test.")
    now = campaigns.sender_now(now)  # the sender's clock (tests fix it)
    if not schedule.is_legal_now(None, number, now):
        raise CampaignError("It is quiet hours where that phone is: marketing texts, tests too, go out between "
                            "8:00 and 21:00 its local time (some states allow less). Send the test later.")
    body = render_sample(variant.template, sample_member([lst.id for lst in campaign.lists]),
                         campaign.append_opt_out_line, now.date())
    try:
        message = queue_text(number, body, user_id=user_id, kind=TEST_KIND, from_number=campaign.sending_number)
    except (OptedOut, TextError) as exc:
        db.session.rollback()
        raise CampaignError(f"The test cannot be sent: {exc}") from exc
    audit.record("test_text", "campaigns", campaign.id, detail=f"message {label} to {number}",
                 changes={"variant": label, "to": number})
    db.session.commit()
    enqueue_send(message.id)
    return message


def sending_plan(campaign, counts, now=None):
    """The words under the plan: when the first and last texts go out, or for a running campaign
    when the next goes out and how far it got; None when nothing is left to text."""
    now = campaigns.sender_now(now)  # the sender's clock (tests fix it)
    left = counts.get("queued", 0)
    if campaign.status not in ("draft", "scheduled", "running") or not left:
        return None
    from_rows = campaign.status != "draft"
    forecast = schedule.sending_forecast(
        left, campaign.window_days, campaign.window_start, campaign.window_end, campaign.daily_limit,
        current_app.config["CAMPAIGN_TIMEZONE"], now, start_date=campaign.start_date,
        sent_today=texts_sent_today(campaign.sending_number, now) if campaign.status == "running" else 0,
        locations=forecast_locations(campaign, planned=from_rows), spread=current_app.config["CAMPAIGN_SPREAD"])
    running = campaign.status == "running"
    text = schedule.describe_forecast(forecast, campaign.daily_limit, now,
                                      lead="Next send" if running else "First text goes out",
                                      soon="now" if running else "as soon as it starts")
    pace = schedule.describe_pace(campaign.window_start, campaign.window_end, campaign.daily_limit) \
        if current_app.config["CAMPAIGN_SPREAD"] and forecast["first"] is not None else None
    return {"text": text, "pace": pace, **forecast}


def campaign_times(campaign):
    """[(what, when)] for the campaign page header, to the minute in the company's time zone."""
    zone = ZoneInfo(current_app.config["CAMPAIGN_TIMEZONE"])
    stamps = (("created", campaign.created_at), ("started", campaign.started_at), ("finished", campaign.finished_at))
    shown = []
    for label, stamp in stamps:
        if stamp is not None:
            local = schedule.utc(stamp).astimezone(zone)
            shown.append((label, f"{local:%b} {local.day}, {local:%Y %H:%M} {schedule.zone_label(local)}"))
    return shown


def weekday_names():
    return list(enumerate(WEEKDAYS))
