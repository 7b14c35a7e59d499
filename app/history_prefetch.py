"""The history walk's requests, made ahead. While the walk writes one conversation, one thread
asks OpenPhone for the next conversations' message pages, call pages and call details, in the
order the walk will ask for them and through the walk's own client (the shared 10 requests/second
limit and its retries). The walk's get() takes the response, or re-raises the exception the
request ended with, when it asks for the same request; a request that was not made ahead it
makes itself. Only responses are kept (at most HISTORY_PREFETCH of them): the walk alone writes
rows and checkpoints, so a run resumes after a kill exactly as without the prefetch.

Every request is made once. A request is planned ahead only when its place in the walk is
certain: a conversation's first message and call page once the conversation page that lists it
is known, each following page once the page before it answered, a call's details once its page
answered and the call is not stored yet (nor planned before: OpenPhone may repeat a call on the
next page). The walk never asks for a planned request itself: it waits for the thread, or, when
the thread has stopped, makes the request itself. The one request the walk may not use is a
call's detail when a webhook stores that call between its page's answer and the walk's turn."""
import logging
import threading

from flask import current_app
from sqlalchemy import select

from app.extensions import db
from app.history_models import Call
from app.openphone import PermanentError

log = logging.getLogger(__name__)
PAGE = 100  # OpenPhone's largest maxResults
LISTS = ("/v1/messages", "/v1/calls")
DETAILS = {"voicemail": "/v1/call-voicemails/", "summary": "/v1/call-summaries/",
           "transcript": "/v1/call-transcripts/", "recording": "/v1/call-recordings/"}


def list_query(params, since, token):
    """The query of one page of a conversation's messages or calls."""
    query = dict(params, maxResults=PAGE)
    if since:
        query["createdAfter"] = since
    if token:
        query["pageToken"] = token
    return query


def conversation_params(conversation):
    return {"phoneNumberId": conversation["phoneNumberId"], "participants[]": conversation["participants"][0]}


def unique(items):
    """A page's items once each (OpenPhone may repeat one across pages), oldest first."""
    found = {i["id"]: i for i in items if i.get("id")}
    return sorted(found.values(), key=lambda i: (str(i.get("createdAt") or ""), i["id"]))


def stored_call_ids(items):
    """The ids among these calls that are already stored."""
    ids = [c["id"] for c in items]
    return set(db.session.scalars(select(Call.provider_id).where(Call.provider_id.in_(ids)))) if ids else set()


def detail_paths(item):
    """[(detail, path)] a call's details are asked with, in order (HISTORY_CALL_DETAILS): a
    voicemail for a missed incoming call; summary, transcript and recording for an answered one."""
    details = set(current_app.config["HISTORY_CALL_DETAILS"].split(","))
    missed = item.get("status") in ("missed", "no-answer")
    if missed:
        wanted = ["voicemail"] if item.get("direction") == "incoming" else []
    else:
        wanted = ["summary", "transcript", "recording"] if (item.get("duration") or 0) > 0 else []
    return [(name, DETAILS[name] + item["id"]) for name in wanted if name in details]


def _walk_goes_on(request):
    """Whether the walk goes on after this request's answer: it does after a success, a list page
    OpenPhone no longer has (404: skipped), a refused page token (400: that listing restarts, by the
    walk itself) and a call detail the plan lacks (403/404); any other error ends the run there."""
    error = request.error
    if error is None:
        return True
    if not isinstance(error, PermanentError):
        return False
    if request.chain is None:
        return error.status in (403, 404)
    return error.status == 404 or (error.status == 400 and "pageToken" in request.params)


def _key(path, params):
    return path, tuple(sorted((params or {}).items()))


class _Request:
    """One planned request; `chain` = (path, conversation params, since) for a list page."""

    def __init__(self, path, params=None, chain=None):
        self.path, self.params, self.chain = path, params, chain
        self.key = _key(path, params)
        self.state = "planned"  # then "asking", then "done"
        self.body = self.error = None


class Prefetch:
    """The walk's client: get(path, params) as OpenPhone.get, with the walk's requests made ahead
    by one thread once plan() names the conversations to come. ahead = 0 makes every request
    when the walk asks (no thread). Use it as a context manager: the thread stops on leaving."""

    def __init__(self, client, ahead):
        self.client, self.ahead = client, ahead
        self.cond = threading.Condition()
        self.queue = []  # planned requests in the walk's order; the walk removes what it took or passed
        self.asked_calls = set()  # calls whose details were planned in this run
        self.stopping = False
        self.thread = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def plan(self, conversations, since):
        """The conversations the walk imports next, in its order: their requests are made ahead."""
        if not self.ahead:
            return
        with self.cond:
            self.queue = []  # what the walk did not take from the previous page, it will not ask for
            for conversation in conversations:
                params = conversation_params(conversation)
                for path in LISTS:
                    self.queue.append(_Request(path, list_query(params, since, None), chain=(path, params, since)))
            self.cond.notify_all()
        if self.thread is None:
            self.thread = threading.Thread(target=self._run, args=(current_app._get_current_object(),),
                                           name="history-prefetch", daemon=True)
            self.thread.start()

    def get(self, path, params=None):
        """The response to this request: made ahead, or made now."""
        request = self._take(_key(path, params))
        if request is None:
            return self.client.get(path, params)
        if request.error is not None:
            raise request.error
        return request.body

    def close(self):
        with self.cond:
            self.stopping = True
            self.cond.notify_all()
        if self.thread is not None:
            self.thread.join(timeout=60)
            if self.thread.is_alive():
                log.warning("history prefetch still waiting on OpenPhone; left to finish on its own")

    # --- the walk's side --------------------------------------------------------------------

    def _take(self, key):
        """The planned request with this key once answered (requests planned before it are
        dropped: the walk went past them), or None when the walk must ask itself."""
        with self.cond:
            index = next((i for i, r in enumerate(self.queue) if r.key == key), None)
            if index is None:
                return None
            del self.queue[:index]
            request = self.queue[0]
            self.cond.notify_all()
            while request.state != "done" and self._running():
                self.cond.wait()
            self.queue.remove(request)
            self.cond.notify_all()
            return request if request.state == "done" else None

    def _running(self):
        return self.thread is not None and self.thread.is_alive() and not self.stopping

    # --- the thread -------------------------------------------------------------------------

    def _run(self, app):
        with app.app_context():
            try:
                while (request := self._next()) is not None:
                    if not self._ask(request):
                        break
            except Exception:  # noqa: BLE001 - the walk makes the rest of its requests itself
                log.exception("history prefetch stopped")
            finally:
                db.session.remove()
                with self.cond:
                    self.stopping = True
                    self.cond.notify_all()

    def _next(self):
        """The first planned request, once fewer than `ahead` answers wait for the walk."""
        with self.cond:
            while not self.stopping:
                answered = sum(r.state == "done" for r in self.queue)
                request = next((r for r in self.queue if r.state == "planned"), None)
                if request is not None and answered < self.ahead:
                    request.state = "asking"
                    return request
                self.cond.wait()
        return None

    def _ask(self, request):
        """Make one request and plan what follows it; False when the thread stops there."""
        try:
            request.body = self.client.get(request.path, request.params)
        except Exception as exc:  # noqa: BLE001 - re-raised in the walk when it asks for this request
            request.error = exc
        following, going_on = [], _walk_goes_on(request)
        if request.error is None:
            try:
                following = self._following(request)
            except Exception:  # noqa: BLE001 - the walk makes what would have followed itself
                log.exception("history prefetch stopped after %s", request.path)
                going_on = False
        with self.cond:
            request.state = "done"
            if request in self.queue:
                at = self.queue.index(request) + 1
                self.queue[at:at] = following
            self.cond.notify_all()
        return going_on

    def _following(self, request):
        """The requests the walk makes after this one's answer and before the next planned one:
        a page's calls' details (calls not stored yet), then the listing's next page."""
        if request.chain is None:
            return []
        path, params, since = request.chain
        following = []
        if path == "/v1/calls":
            items = [i for i in unique(request.body.get("data") or []) if i["id"] not in self.asked_calls]
            stored = stored_call_ids(items)
            db.session.rollback()  # no transaction left open beside the walk's writes
            for item in items:
                if item["id"] not in stored:
                    self.asked_calls.add(item["id"])
                    following += [_Request(detail_path) for _, detail_path in detail_paths(item)]
        token = request.body.get("nextPageToken")
        if token:
            following.append(_Request(path, list_query(params, since, token), chain=request.chain))
        return following
