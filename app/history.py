"""OpenPhone's past in the CRM: every company number's conversations, their texts and calls,
pulled through OpenPhone's public list endpoints (GET /v1/phone-numbers, /v1/conversations,
/v1/messages, /v1/calls and each call's voicemail, summary, transcript and recordings).

A run is a HistoryImport row: its checkpoint (number, conversation page token, conversation,
item page token) is committed with every page, so a killed worker's run resumes where it was.
OpenPhone ids are unique in messages and calls, so a second run adds only what is new; each
item's outcome (created, existing, skipped, restarted) is a HistoryItem row. Every request
takes a slot of the one 10 requests/second limit the sender uses (app/openphone.py)."""
import logging
from datetime import timedelta, timezone

from flask import current_app
from sqlalchemy import func, select, update
from sqlalchemy.exc import OperationalError

from app import audit, bulk, display
from app.calls import store_call
from app.contacts import contact_for_phone, normalize_phone
from app.events import reply_recipient
from app.extensions import db
from app.history_models import Call, HistoryImport, HistoryItem, Media
from app.media import download_pending
from app.models import CampaignRecipient, Message, utcnow
from app.openphone import NotFound, PermanentError, call_values, client_from_config, parse_time
from app.opt_outs import classify_opt_out, is_opted_out, opt_in, opt_out
from app.queue import enqueue, get_redis, job_alive

log = logging.getLogger(__name__)
SOURCE = "openphone history"
PAGE = 100  # OpenPhone's largest maxResults
UNFINISHED = ("queued", "running")


class HistoryRunning(Exception):
    """Another history import is queued or running."""


def api_time(when):
    return when.strftime("%Y-%m-%dT%H:%M:%S.000Z")


# --- runs -------------------------------------------------------------------------------------

def start_history_import(kind="full", since=None, user_id=None, enqueue_job=True):
    """Queue one run (the button, the CLI and the nightly pull); the unfinished one if any."""
    running = db.session.scalar(select(HistoryImport).where(HistoryImport.status.in_(UNFINISHED)).limit(1))
    if running is not None:
        return running
    run = HistoryImport(kind=kind, since=since, status="queued", created_by_id=user_id, checkpoint={})
    db.session.add(run)
    db.session.flush()
    audit.record("start", "history_imports", run.id,
                 detail=f"{kind} OpenPhone history import" + (f" since {since:%Y-%m-%d %H:%M}" if since else ""))
    db.session.commit()
    if enqueue_job:
        enqueue_history(run.id)
    return run


def enqueue_history(import_id):
    return enqueue("jobs.history.run_history_job", import_id, job_id=f"history-{import_id}", job_timeout=24 * 3600)


def import_history(since=None, user_id=None, client=None):
    """The whole history (or since a date) in this process: `crm openphone import-history`."""
    run = start_history_import("full", since=since, user_id=user_id, enqueue_job=False)
    if run.status == "running":
        raise HistoryRunning(f"history import {run.id} is already running")
    run_history_import(run.id, client=client)
    return db.session.get(HistoryImport, run.id, populate_existing=True)


def _stale_before():
    return utcnow() - timedelta(seconds=current_app.config["IMPORT_STALE_SECONDS"])


def recover_history():
    """Runs whose worker died (stale heartbeat) or whose job Redis lost go back on the queue."""
    stale = HistoryImport.status.in_(UNFINISHED) & (
        func.coalesce(HistoryImport.heartbeat_at, HistoryImport.created_at) < _stale_before())
    count = 0
    for import_id in db.session.scalars(select(HistoryImport.id).where(stale)).all():
        if job_alive(f"history-{import_id}"):
            continue
        moved = db.session.execute(update(HistoryImport).where(HistoryImport.id == import_id, stale)
                                   .values(status="queued", heartbeat_at=utcnow())).rowcount
        db.session.commit()
        if moved:
            enqueue_history(import_id)
            count += 1
    return count


NIGHTLY_LOCK = "crm:history:nightly:"


def enqueue_nightly_if_due(now=None):
    """Once a night (HISTORY_NIGHTLY_HOUR in CAMPAIGN_TIMEZONE) queue a pull of the last
    HISTORY_NIGHTLY_HOURS: every worker's tick asks, the database row decides, so many workers
    queue one run a night (a Redis lock per night keeps two ticks from racing to insert it).
    Nothing until a first import has finished."""
    config = current_app.config
    now = now or utcnow()
    local = display.local_time(now, config["CAMPAIGN_TIMEZONE"])
    if local.hour < config["HISTORY_NIGHTLY_HOUR"]:
        return 0
    if db.session.scalar(select(HistoryImport.id).where(HistoryImport.status == "done").limit(1)) is None:
        return 0  # reconciliation starts once the history has been imported
    night_start = (local.replace(hour=config["HISTORY_NIGHTLY_HOUR"], minute=0, second=0, microsecond=0)
                   .astimezone(timezone.utc).replace(tzinfo=None))
    # Any run begun since tonight's hour (a nightly one, or a full import someone started) covers tonight.
    done = db.session.scalar(select(HistoryImport.id).where(HistoryImport.created_at >= night_start).limit(1))
    if done is not None:
        return 0
    if not get_redis().set(NIGHTLY_LOCK + local.date().isoformat(), "1", nx=True, ex=3600):
        return 0
    run = start_history_import("nightly", since=now - timedelta(hours=config["HISTORY_NIGHTLY_HOURS"]))
    return 1 if run.kind == "nightly" else 0


def run_history_import(import_id, client=None):
    """Claim the run and walk OpenPhone from its checkpoint to the end. Returns the final status."""
    now = utcnow()
    claimed = db.session.execute(update(HistoryImport).where(
        HistoryImport.id == import_id, HistoryImport.status == "queued")
        .values(status="running", heartbeat_at=now, started_at=func.coalesce(HistoryImport.started_at, now))).rowcount
    db.session.commit()
    if not claimed:
        return None
    run = db.session.get(HistoryImport, import_id, populate_existing=True)
    try:
        _walk(run, client or client_from_config())
    except OperationalError:  # the database went away: the run stays running and recovery resumes it
        db.session.rollback()
        log.exception("history import %s lost its database; recovery resumes it", import_id)
        raise
    except Exception as exc:  # noqa: BLE001 - the run ends failed with its reason for a person
        db.session.rollback()
        log.exception("history import %s failed", import_id)
        run = db.session.get(HistoryImport, import_id, populate_existing=True)
        run.status, run.error, run.finished_at = "failed", f"{type(exc).__name__}: {exc}"[:2000], utcnow()
        audit.record("fail", "history_imports", run.id, detail=run.error[:500])
        db.session.commit()
        return run.status
    run.status, run.finished_at, run.error = "done", utcnow(), None
    audit.record("finish", "history_imports", run.id, detail=outcome_counts(run.id))
    db.session.commit()
    return run.status


def _save(run, cp):
    """Commit the page's rows with the checkpoint that follows them, and beat the heart."""
    run.checkpoint = dict(cp)
    run.heartbeat_at = utcnow()
    db.session.commit()


def _record(run, kind, provider_id, outcome, reason=None, phone=None, message_id=None, call_id=None):
    _record_many(run, [dict(kind=kind, provider_id=str(provider_id)[:200], outcome=outcome, reason=reason,
                            phone=(phone or "")[:40] or None, message_id=message_id, call_id=call_id)])


def _record_many(run, rows):
    """One outcome per item and run; an item met twice in a run (a page repeated) keeps the first."""
    bulk.insert_rows(db.session, HistoryItem.__table__,
                     [dict({"reason": None, "phone": None, "message_id": None, "call_id": None}, **row) for row in rows],
                     conflict=["import_id", "kind", "provider_id"], same={"import_id": run.id, "created_at": utcnow()})


# --- the walk ---------------------------------------------------------------------------------

def _walk(run, client):
    cp = dict(run.checkpoint or {})
    if "numbers" not in cp:
        numbers = client.get("/v1/phone-numbers").get("data") or []
        cp.update(numbers=[[n["id"], n.get("number")] for n in numbers], n=0)
        _save(run, cp)
    since = api_time(run.since) if run.since else None
    while cp["n"] < len(cp["numbers"]):
        number_id, number = cp["numbers"][cp["n"]]
        _walk_number(run, client, cp, number_id, number, since)
        cp.update(n=cp["n"] + 1, token=None, seen=[], conversation=None, stage=None, item_token=None)
        _save(run, cp)


def _walk_number(run, client, cp, number_id, number, since):
    """Every conversation of one company number, a page of PAGE at a time."""
    while True:
        params = {"phoneNumbers[]": number_id, "maxResults": PAGE}
        if since:
            params["updatedAfter"] = since
        if cp.get("token"):
            params["pageToken"] = cp["token"]
        try:
            body = client.get("/v1/conversations", params)
        except PermanentError as exc:
            if not _restartable(run, cp, "token", exc, f"conversations of {number}"):
                _record(run, "phone_number", number_id, "skipped", f"{number} is no longer in the workspace ({exc})")
                _save(run, cp)
                return
            continue
        page = body.get("data") or []
        if not cp.get("token"):
            cp.setdefault("totals", {})[number_id] = body.get("totalItems")
        seen = set(cp.get("seen") or [])
        for conversation in page:
            if conversation.get("id") in seen:
                continue  # finished before a restart, or repeated from the previous page
            _import_conversation(run, client, cp, conversation, since)
            seen.add(conversation["id"])
            cp.update(seen=sorted(seen), conversation=None, stage=None, item_token=None)
            _save(run, cp)
        token = body.get("nextPageToken")
        if not token:
            return
        cp.update(token=token, seen=sorted({c["id"] for c in page if c.get("id")}))
        _save(run, cp)


def _restartable(run, cp, key, exc, what):
    """A refused page token (expired) starts that listing again from its first page; True when so.
    Nothing is lost or doubled: items already stored come back as 'existing'."""
    if cp.get(key) and getattr(exc, "status", None) == 400:
        _record(run, "page", f"{what}:{cp[key]}", "restarted", f"page token refused ({exc}); listed again from the start")
        cp[key] = None
        _save(run, cp)
        return True
    if isinstance(exc, NotFound):
        return False
    raise exc


def participant_problem(participants):
    """Why a conversation has no one phone to file it under, or None."""
    if len(participants) != 1:
        return f"group conversation with {len(participants)} participants" if participants else "no participant"
    raw = str(participants[0])
    if "@" in raw:
        return "participant is an email address"
    digits = "".join(ch for ch in raw if ch.isdigit())
    if 3 <= len(digits) <= 6:
        return "participant is a short code"
    return None if normalize_phone(raw) else "participant is not a valid phone number"


def _import_conversation(run, client, cp, conversation, since):
    participants = conversation.get("participants") or []
    problem = participant_problem(participants)
    if problem:
        _record(run, "conversation", conversation.get("id"), "skipped", problem, phone=", ".join(map(str, participants)))
        return
    raw = participants[0]
    phone = normalize_phone(raw)
    contact = contact_for_phone(phone, source="openphone")
    db.session.flush()
    if cp.get("conversation") != conversation["id"]:
        cp.update(conversation=conversation["id"], stage="messages", item_token=None)
    params = {"phoneNumberId": conversation["phoneNumberId"], "participants[]": raw}
    if cp["stage"] == "messages":
        _pages(run, client, cp, "/v1/messages", params, since, lambda items: _save_messages(run, contact, phone, items))
        _apply_opt_out(phone)
        cp.update(stage="calls", item_token=None)
        _save(run, cp)
    if cp["stage"] == "calls":
        _pages(run, client, cp, "/v1/calls", params, since,
               lambda items: _save_calls(run, client, contact, phone, items))
    cp.update(stage="done", item_token=None)
    _record(run, "conversation", conversation["id"], "imported", phone=phone)
    _download_media(run, contact.id)


def _download_media(run, contact_id):
    """The conversation's photos and voicemails, each with its outcome (stored, rejected, failed)."""
    rows = download_pending(contact_id)
    _record_many(run, [dict(kind="media", provider_id=m.url[:200], outcome=m.status, reason=m.error,
                            message_id=m.message_id, call_id=m.call_id) for m in rows])


def _pages(run, client, cp, path, params, since, save):
    """Every page of one list endpoint for one conversation, checkpointed page by page."""
    while True:
        query = dict(params, maxResults=PAGE)
        if since:
            query["createdAfter"] = since
        if cp.get("item_token"):
            query["pageToken"] = cp["item_token"]
        try:
            body = client.get(path, query)
        except PermanentError as exc:
            participant = params["participants[]"]
            if _restartable(run, cp, "item_token", exc, f"{path} {participant}"):
                continue
            _record(run, "conversation", f"{params['phoneNumberId']}:{participant}:{path}", "skipped",
                    f"OpenPhone has no such number or conversation any more ({exc})", phone=participant)
            return
        save(body.get("data") or [])
        cp["item_token"] = body.get("nextPageToken")
        _save(run, cp)
        if not cp["item_token"]:
            return


# --- texts ------------------------------------------------------------------------------------

def _clean(value):
    return value.replace("\x00", "") if isinstance(value, str) else value


def _unique(items):
    """A page's items once each (OpenPhone may repeat one across pages), oldest first."""
    found = {i["id"]: i for i in items if i.get("id")}
    return sorted(found.values(), key=lambda i: (str(i.get("createdAt") or ""), i["id"]))


def _save_messages(run, contact, phone, items):
    """A page's texts in one INSERT ... ON CONFLICT DO NOTHING (OpenPhone's id is unique): a text a
    webhook stored first, or stores meanwhile, is 'existing'. A reply is attributed to the campaign
    text it answers; the look-up runs only for a phone that was ever sent one."""
    items = _unique(items)
    if not items:
        return
    answerable = db.session.scalar(select(CampaignRecipient.id).where(
        CampaignRecipient.phone == phone, CampaignRecipient.sent_at.is_not(None)).limit(1)) is not None
    rows = [_message_row(item, contact, phone, answerable) for item in items]
    inserted = dict(bulk.insert_rows(db.session, Message.__table__, [row for row, _ in rows],
                                     conflict=["provider_id"], returning=("provider_id", "id")))
    outcomes = []
    for item, (row, recipient) in zip(items, rows, strict=True):
        message_id = inserted.get(row["provider_id"])
        outcomes.append(dict(kind="message", provider_id=item["id"], outcome="created" if message_id else "existing",
                             phone=phone, message_id=message_id))
        if message_id is None:
            continue
        if recipient is not None:
            recipient.replied_at = min(recipient.replied_at or row["created_at"], row["created_at"])
        for media in item.get("media") or []:
            if isinstance(media, dict) and media.get("url"):
                db.session.add(Media(message_id=message_id, contact_id=contact.id, url=media["url"],
                                     content_type=media.get("type"), status="pending"))
    if inserted:
        audit.record("import", "messages", None, detail=f"history import {run.id}: {len(inserted)} texts with {phone}")
    _record_many(run, outcomes)


def _message_row(item, contact, phone, answerable):
    """(the messages row of one OpenPhone text, the campaign recipient a reply answers or None)."""
    incoming = item.get("direction") == "incoming"
    at = parse_time(item.get("createdAt")) or utcnow()
    text = _clean(item.get("text") if item.get("text") is not None else (item.get("body") or ""))
    ours = (_clean(item.get("to")[0] if incoming and item.get("to") else item.get("from")) or "")[:40]
    status = str(item.get("status") or ("received" if incoming else "sent"))[:20]
    recipient = reply_recipient(phone, at) if incoming and answerable else None
    return dict(direction="incoming" if incoming else "outgoing", kind="sms", body=text, status=status,
                provider_id=str(item["id"])[:64], from_phone=phone if incoming else ours,
                to_phone=ours if incoming else phone, contact_id=contact.id, created_at=at,
                sent_at=None if incoming else at, delivered_at=at if status == "delivered" else None,
                source=SOURCE, opt_out_class=classify_opt_out(text) if incoming else None,
                campaign_recipient_id=recipient.id if recipient else None), recipient


def _apply_opt_out(phone):
    """The person's last word decides: a STOP found in the history (and never lifted by a later
    START) becomes an opt-out with source "openphone history"."""
    last = db.session.scalar(select(Message).where(
        Message.from_phone == phone, Message.direction == "incoming",
        Message.opt_out_class.in_(("keyword", "phrase", "opt_in"))).order_by(Message.created_at.desc()).limit(1))
    if last is None or last.source != SOURCE:
        return
    if last.opt_out_class == "opt_in":
        opt_in(phone, message_id=last.id)
    elif not is_opted_out(phone):
        opt_out(phone, SOURCE, reason=(last.body or "")[:500], message_id=last.id)
        audit.record("opt_out", "opt_outs", None, detail=f"{phone}: {SOURCE} ({(last.body or '')[:60]})")


# --- calls ------------------------------------------------------------------------------------

def _detail(client, path):
    """One call's voicemail / summary / transcript / recordings, or None when OpenPhone has none
    (404) or the plan does not include it (403)."""
    try:
        return client.get(path).get("data")
    except PermanentError as exc:
        if getattr(exc, "status", None) in (403, 404):
            return None
        raise


def _call_details(client, item):
    details = set(current_app.config["HISTORY_CALL_DETAILS"].split(","))
    found = {}
    missed = item.get("status") in ("missed", "no-answer")
    if "voicemail" in details and item.get("direction") == "incoming" and missed:
        voicemail = _detail(client, f"/v1/call-voicemails/{item['id']}") or {}
        found.update(voicemail_url=voicemail.get("recordingUrl"), voicemail_transcript=voicemail.get("transcript"))
    if not missed and (item.get("duration") or 0) > 0:
        if "summary" in details:
            summary = (_detail(client, f"/v1/call-summaries/{item['id']}") or {}).get("summary")
            found["summary"] = "\n".join(summary) if isinstance(summary, list) else summary
        if "transcript" in details:
            dialogue = (_detail(client, f"/v1/call-transcripts/{item['id']}") or {}).get("dialogue") or []
            found["transcript"] = "\n".join(str(d.get("content") or "") for d in dialogue) or None
        if "recording" in details:
            recordings = _detail(client, f"/v1/call-recordings/{item['id']}") or []
            found["recording_url"] = next((r.get("url") for r in recordings if r.get("url")), None)
    return found


def _save_calls(run, client, contact, phone, items):
    """Each call once (app/calls.py): a call a webhook stored first is 'existing', its row only
    filled in; details are asked of OpenPhone for new calls only."""
    items = _unique(items)
    existing = set(db.session.scalars(select(Call.provider_id).where(
        Call.provider_id.in_([c["id"] for c in items])))) if items else set()
    outcomes = []
    for item in items:
        values = call_values(item, contact, phone, SOURCE)
        if item["id"] not in existing:
            values.update(_call_details(client, item))
        with audit.bulk():
            call, created = store_call(values)
        outcomes.append(dict(kind="call", provider_id=item["id"], outcome="created" if created else "existing",
                             phone=phone, call_id=call.id))
    _record_many(run, outcomes)


# --- what the screens show --------------------------------------------------------------------

def outcome_counts(import_id):
    """{(kind, outcome): n} for one run, from its rows."""
    rows = db.session.execute(select(HistoryItem.kind, HistoryItem.outcome, func.count())
                              .where(HistoryItem.import_id == import_id)
                              .group_by(HistoryItem.kind, HistoryItem.outcome))
    return {(kind, outcome): n for kind, outcome, n in rows}


def progress(run):
    """What the Integrations screen shows for a run: conversations done of the current page
    listing, numbers done, and the counts per outcome."""
    cp = run.checkpoint or {}
    counts = outcome_counts(run.id)
    total = sum(n or 0 for n in (cp.get("totals") or {}).values())
    done = counts.get(("conversation", "imported"), 0) + counts.get(("conversation", "skipped"), 0)
    if run.status == "done":
        percent = 100
    else:
        percent = min(99, int(100 * done / total)) if total else 0
    return {"id": run.id, "conversations": total, "conversations_done": done, "percent": percent, "kind": run.kind, "status": run.status, "error": run.error,
            "numbers": len(cp.get("numbers") or []), "numbers_done": min(cp.get("n", 0), len(cp.get("numbers") or [])),
            "messages_created": counts.get(("message", "created"), 0),
            "messages_existing": counts.get(("message", "existing"), 0),
            "calls_created": counts.get(("call", "created"), 0), "calls_existing": counts.get(("call", "existing"), 0),
            "skipped": sum(n for (kind, outcome), n in counts.items() if outcome == "skipped"),
            "restarted": sum(n for (kind, outcome), n in counts.items() if outcome == "restarted"),
            "started_at": run.started_at, "finished_at": run.finished_at}


def latest_runs(limit=5):
    return db.session.scalars(select(HistoryImport).order_by(HistoryImport.id.desc()).limit(limit)).all()


def skipped_items(import_id, limit=50):
    return db.session.scalars(select(HistoryItem).where(HistoryItem.import_id == import_id,
                                                        HistoryItem.outcome.in_(("skipped", "restarted")))
                              .order_by(HistoryItem.id).limit(limit)).all()


def missed_by_webhooks(import_id, limit=20):
    """What one run (the nightly pull) stored that webhooks had not: counts and the latest items."""
    counts = outcome_counts(import_id)
    texts = db.session.scalars(select(Message).join(HistoryItem, HistoryItem.message_id == Message.id)
                               .where(HistoryItem.import_id == import_id, HistoryItem.outcome == "created")
                               .order_by(Message.created_at.desc()).limit(limit)).all()
    calls = db.session.scalars(select(Call).join(HistoryItem, HistoryItem.call_id == Call.id)
                               .where(HistoryItem.import_id == import_id, HistoryItem.outcome == "created")
                               .order_by(Call.created_at.desc()).limit(limit)).all()
    return {"import_id": import_id, "messages": counts.get(("message", "created"), 0),
            "calls": counts.get(("call", "created"), 0), "texts": texts, "call_rows": calls}
