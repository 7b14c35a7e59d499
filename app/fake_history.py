"""The fake OpenPhone's past: phone numbers, conversations, messages, calls with voicemails,
recordings, summaries and transcripts, media it serves itself, and registered webhooks.

Listed the way OpenPhone's public API lists them: newest first, maxResults 1-100, an opaque
nextPageToken, createdAfter / createdBefore, phoneNumberId + participants required where the
API requires them. Faults (set through FakeOpenPhone.configure): expire_tokens (the next N page
tokens are refused as expired), duplicate_pages (each page after the first repeats the previous
page's last item), fail_next_get (status codes for the next API GETs)."""
import base64
import json
import random
import secrets
import uuid
from datetime import datetime, timedelta, timezone

PAGE_DEFAULT = 10
PAGE_MAX = 100
PNG = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"
       b"\x00\x00\x00\rIDATx\x9cc\xf8\xcf\xc0\xf0\x1f\x00\x05\x00\x01\xff\x89\x99=\x1d\x00\x00\x00\x00IEND\xaeB`\x82")
MP3 = b"ID3\x03\x00\x00\x00\x00\x00\x0f" + b"\xff\xfb\x90\x00" * 64


def iso(when):
    return when.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _first(query, name, default=None):
    values = query.get(name) or query.get(name + "[]") or []
    return values[0] if values else default


def _all(query, name):
    return list(query.get(name) or []) + list(query.get(name + "[]") or [])


def _participants(item):
    """The other side of a message or call (the fake's messages have one)."""
    if item.get("object") == "call":
        return item["participants"]
    return [item["from"]] if item["direction"] == "incoming" else list(item["to"])


class History:
    """What the fake account already holds; the fake's lock guards it."""

    def __init__(self, fake):
        self.fake = fake
        self.calls = []  # newest last
        self.call_ids = set()
        self.voicemails, self.recordings, self.summaries, self.transcripts = {}, {}, {}, {}
        self.media = {}  # media id -> (content type, size, bytes or None for generated filler)
        self.webhooks = []

    # --- building a past ------------------------------------------------------------------

    def add_number(self, number, number_id=None):
        number_id = number_id or "PN" + uuid.uuid4().hex[:10]
        self.fake.numbers[number] = number_id
        return number_id

    def add_media(self, content_type="image/png", body=PNG, size=None, missing=False):
        media_id = "ME" + uuid.uuid4().hex[:12]
        if not missing:
            self.media[media_id] = (content_type, size if size is not None else len(body), body)
        return f"{self.fake.url}/_media/{media_id}"

    def add_message(self, number, participant, text, direction, at, media=None):
        number_id = self.fake.numbers[number]
        incoming = direction == "incoming"
        message = {"id": "AC" + uuid.uuid4().hex, "object": "message",
                   "from": participant if incoming else number, "to": [number if incoming else participant],
                   "text": text, "direction": direction, "status": "received" if incoming else "delivered",
                   "createdAt": iso(at), "updatedAt": iso(at), "phoneNumberId": number_id, "userId": "USfake01",
                   "conversationId": "CN" + number_id[2:] + participant.lstrip("+")}
        if media:
            message["media"] = [{"url": url, "type": kind} for url, kind in media]
        self.fake.messages.append(message)
        return message

    def add_call(self, number, participant, direction, status, at, duration=0, voicemail=None, summary=None,
                 transcript=None, recording=False):
        number_id = self.fake.numbers[number]
        answered = status == "completed" and duration > 0
        call = {"id": "AC" + uuid.uuid4().hex, "object": "call", "phoneNumberId": number_id, "userId": "USfake01",
                "direction": direction, "status": status, "duration": duration, "participants": [participant],
                "answeredAt": iso(at + timedelta(seconds=3)) if answered else None,
                "answeredBy": "USfake01" if answered else None, "initiatedBy": "USfake01" if direction == "outgoing"
                else None, "createdAt": iso(at), "updatedAt": iso(at + timedelta(seconds=duration or 1)),
                "completedAt": iso(at + timedelta(seconds=duration or 1)), "forwardedFrom": None, "forwardedTo": None}
        self.calls.append(call)
        self.call_ids.add(call["id"])
        if voicemail is not None:
            self.voicemails[call["id"]] = {"id": "VM" + uuid.uuid4().hex[:10], "duration": 20, "status": "completed",
                                           "transcript": voicemail, "type": "audio/mpeg",
                                           "recordingUrl": self.add_media("audio/mpeg", MP3)}
        if recording:
            self.recordings[call["id"]] = [{"id": "RC" + uuid.uuid4().hex[:10], "duration": duration,
                                            "startTime": call["answeredAt"], "status": "completed",
                                            "type": "audio/mpeg", "url": self.add_media("audio/mpeg", MP3)}]
        if summary is not None:
            self.summaries[call["id"]] = {"callId": call["id"], "status": "completed", "summary": [summary],
                                          "nextSteps": []}
        if transcript is not None:
            self.transcripts[call["id"]] = {"callId": call["id"], "createdAt": call["completedAt"],
                                            "duration": duration, "status": "completed",
                                            "dialogue": [{"content": line, "start": i * 5.0, "end": i * 5.0 + 4,
                                                          "identifier": participant, "userId": None}
                                                         for i, line in enumerate(transcript)]}
        return call

    # --- listing ---------------------------------------------------------------------------

    def _index(self):
        """(number id, participant) -> messages and calls, rebuilt when the past grows."""
        size = (len(self.fake.messages), len(self.calls))
        if getattr(self, "_indexed", None) != size:
            by_pair = {}
            for item in [*self.fake.messages, *self.calls]:
                for participant in _participants(item):
                    by_pair.setdefault((item["phoneNumberId"], participant), []).append(item)
            self._by_pair, self._indexed, self._conversations = by_pair, size, None
        return self._by_pair

    def conversations(self):
        """One conversation per (number, participant) over messages and calls."""
        self._index()
        if self._conversations is not None:
            return self._conversations
        found = {}
        for item in [*self.fake.messages, *self.calls]:
            participant = _participants(item)[0]
            number_id = item["phoneNumberId"]
            key = (number_id, participant)
            conv = found.get(key)
            if conv is None:
                conv = found[key] = {"id": "CN" + number_id[2:] + participant.lstrip("+"), "phoneNumberId": number_id,
                                     "participants": [participant], "name": None, "assignedTo": None,
                                     "createdAt": item["createdAt"], "updatedAt": item["createdAt"],
                                     "lastActivityAt": item["createdAt"], "lastActivityId": item["id"],
                                     "deletedAt": None, "mutedUntil": None, "snoozedUntil": None}
            conv["createdAt"] = min(conv["createdAt"], item["createdAt"])
            if item["createdAt"] >= conv["lastActivityAt"]:
                conv["lastActivityAt"] = conv["updatedAt"] = item["createdAt"]
                conv["lastActivityId"] = item["id"]
        self._conversations = list(found.values())
        return self._conversations

    def page(self, items, query, kind):
        """(status, body): newest first, maxResults, createdAfter/Before, an opaque page token."""
        try:
            limit = int(_first(query, "maxResults", PAGE_DEFAULT))
        except ValueError:
            return 400, {"message": "maxResults must be a number"}
        if not 1 <= limit <= PAGE_MAX:
            return 400, {"message": f"maxResults must be between 1 and {PAGE_MAX}"}
        after, before = _first(query, "createdAfter", ""), _first(query, "createdBefore", "")
        updated_after = _first(query, "updatedAfter", "")
        items = [i for i in items if (not after or i["createdAt"] > after) and (not before or i["createdAt"] < before)
                 and (not updated_after or i.get("updatedAt", i["createdAt"]) > updated_after)]
        items.sort(key=lambda i: (i.get("lastActivityAt") or i["createdAt"], i["id"]), reverse=True)
        offset = 0
        token = _first(query, "pageToken")
        if token:
            faults = self.fake.faults  # the caller holds the fake's lock
            expire = faults["expire_tokens"] > 0
            faults["expire_tokens"] -= int(expire)
            try:
                state = json.loads(base64.urlsafe_b64decode(token.encode()))
                offset = int(state["o"])
                if state["k"] != kind or expire:
                    raise ValueError
            except (ValueError, KeyError, TypeError):
                return 400, {"message": "Invalid or expired page token"}
            if self.fake.faults["duplicate_pages"]:
                offset = max(0, offset - 1)
        page = items[offset:offset + limit]
        following = None
        if offset + limit < len(items):
            state = {"k": kind, "o": offset + limit, "n": uuid.uuid4().hex[:6]}
            following = base64.urlsafe_b64encode(json.dumps(state).encode()).decode()
        return 200, {"data": page, "totalItems": len(items), "nextPageToken": following}

    def list_conversations(self, query):
        wanted = set(_all(query, "phoneNumbers")) | set(_all(query, "phoneNumber"))
        if _first(query, "maxResults") is None:
            return 400, {"message": "maxResults is required"}
        ids = {self.fake.numbers.get(w, w) for w in wanted}
        if ids - set(self.fake.numbers.values()):
            return 404, {"message": "Phone number not found"}
        items = [c for c in self.conversations() if not ids or c["phoneNumberId"] in ids]
        return self.page(items, query, "conversations")

    def list_messages(self, query):
        number_id, participants = _first(query, "phoneNumberId"), _all(query, "participants")
        if not number_id or not participants:
            return 400, {"message": "phoneNumberId and participants are required"}
        if number_id not in self.fake.numbers.values():
            return 404, {"message": "Phone number not found"}
        index = self._index()
        items = {m["id"]: m for p in participants for m in index.get((number_id, p), []) if m["object"] == "message"}
        return self.page(list(items.values()), query, "messages")

    def list_calls(self, query):
        number_id, participants = _first(query, "phoneNumberId"), _all(query, "participants")
        if not number_id or len(participants) != 1:
            return 400, {"message": "phoneNumberId and exactly one participant are required"}
        if number_id not in self.fake.numbers.values():
            return 404, {"message": "Phone number not found"}
        items = [c for c in self._index().get((number_id, participants[0]), []) if c["object"] == "call"]
        return self.page(items, query, "calls")

    def call_detail(self, path):
        """GET /v1/call-voicemails|call-recordings|call-summaries|call-transcripts/{callId}."""
        kind, _, call_id = path[len("/v1/"):].partition("/")
        if not call_id.startswith("AC") or call_id not in self.call_ids:
            return 404, {"message": "Call not found"}
        if kind == "call-recordings":
            return 200, {"data": self.recordings.get(call_id, [])}
        table = {"call-voicemails": self.voicemails, "call-summaries": self.summaries,
                 "call-transcripts": self.transcripts}[kind]
        if call_id not in table:
            return 404, {"message": f"No {kind[5:-1]} for this call"}
        return 200, {"data": table[call_id]}

    # --- webhooks API ----------------------------------------------------------------------

    def create_webhook(self, kind, payload):
        url, events = payload.get("url"), payload.get("events")
        if not url or not isinstance(events, list) or not events:
            return 400, {"message": "url and events are required"}
        hook = {"id": "WH" + uuid.uuid4().hex[:10], "url": url, "events": events, "status": "enabled",
                "label": payload.get("label"), "resourceIds": payload.get("resourceIds") or ["*"],
                "key": "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode(),
                "createdAt": iso(datetime.now(timezone.utc)), "object": kind}
        self.webhooks.append(hook)
        return 201, {"data": hook}


# --- a past to import -----------------------------------------------------------------------

FIRST = ["Maria", "James", "Linda", "Robert", "Patricia", "Michael", "Susan", "David", "Karen", "Thomas"]
TEXTS_IN = ["Hi, I saw a crack in my basement wall, can you take a look?", "How much for an estimate?",
            "Tuesday works", "Thanks!", "Is there any warranty on the piers?", "Can you come after 3pm?"]
TEXTS_OUT = ["Hi {name}, this is Acme Foundation Repair. Still seeing cracks in the foundation?",
             "Happy to come out for a free inspection. What day works?", "See you Tuesday at 10.",
             "Here is your estimate, let us know if you have questions."]


def seed(fake, conversations=36, now=None, rng=None):
    """A few dozen past conversations for `make run`: texts both ways, a STOP, an MMS photo of a
    crack, missed calls with a voicemail, answered calls with a summary and a transcript."""
    rng = rng or random.Random(14)
    now = now or datetime.now(timezone.utc)
    history = fake.history
    number = next(iter(fake.numbers))
    for i in range(conversations):
        phone = f"+1617555{2000 + i:04d}"
        at = now - timedelta(days=300 - i * 7, hours=rng.randint(0, 8))
        history.add_message(number, phone, TEXTS_OUT[0].format(name=FIRST[i % len(FIRST)]), "outgoing", at)
        if i == 3:
            history.add_message(number, phone, "STOP", "incoming", at + timedelta(hours=1))
            continue
        if i % 3 == 0:
            continue  # never answered
        history.add_message(number, phone, rng.choice(TEXTS_IN), "incoming", at + timedelta(hours=2))
        if i == 5:
            history.add_message(number, phone, "Here is the crack", "incoming", at + timedelta(hours=2, minutes=5),
                                media=[(history.add_media("image/png", PNG), "image/png")])
        history.add_message(number, phone, rng.choice(TEXTS_OUT[1:]), "outgoing", at + timedelta(hours=3))
        if i % 4 == 1:
            history.add_call(number, phone, "incoming", "missed", at + timedelta(days=1),
                             voicemail="Hi, this is about the estimate, please call me back.")
        if i % 4 == 2:
            history.add_call(number, phone, "outgoing", "completed", at + timedelta(days=1, hours=1), duration=240,
                             summary="Scheduled an inspection for Tuesday.",
                             transcript=["Hi, calling about the crack.", "Tuesday at 10 works."], recording=True)
    return fake


def generate(fake, conversations, messages, calls, now=None, rng=None):
    """A benchmark volume: `conversations` participants on the first number, `messages` texts and
    `calls` calls spread over them (no media, no extras: the listing is what is measured)."""
    rng = rng or random.Random(7)
    now = now or datetime.now(timezone.utc)
    number = next(iter(fake.numbers))
    phones = [f"+1{212 + (i // 10000)}555{i % 10000:04d}" for i in range(conversations)]
    for n in range(messages):
        phone = phones[n % conversations]
        at = now - timedelta(minutes=n)
        fake.history.add_message(number, phone, f"history text {n}", "outgoing" if n % 2 else "incoming", at)
    for n in range(calls):
        phone = phones[(n * 3) % conversations]
        fake.history.add_call(number, phone, "incoming", "completed" if n % 2 else "missed",
                              now - timedelta(minutes=n, seconds=30), duration=60 if n % 2 else 0)
    return phones
