"""The two signed webhook doors: POST /webhooks/openphone and POST /webhooks/quickbooks.

Both check the signature headers and the declared length before a byte of the body is read, read at
most WEBHOOK_MAX_BYTES + 1 bytes (a chunked body declares no length), verify the signature over the
raw body, store each event once and answer at once; the jobs do the work. Rejections are counted,
not audited one by one, so an unsigned or oversized flood costs neither memory nor audit rows."""
import json
import logging

from flask import Blueprint, current_app, jsonify, request
from redis.exceptions import RedisError

from app import audit, events, quickbooks
from app.openphone import OpenPhoneError, signature_headers_problem
from app.quickbooks_webhooks import MalformedNotification, read_notifications
from app.webhook_health import verify_webhook

log = logging.getLogger(__name__)


class Rejected(Exception):
    def __init__(self, reason, status, message):
        super().__init__(reason)
        self.reason, self.status, self.message = reason, status, message


def receive_openphone():
    """Signed OpenPhone events: verify, store once (unique event id), enqueue, answer fast."""
    try:
        reason = signature_headers_problem(request.headers)
        if reason:
            raise Rejected(reason, 401, "invalid signature")
        body = _bounded_body()
        try:
            reason = verify_webhook(request.headers, body)
        except OpenPhoneError as exc:  # a stored secret the current ENCRYPTION_KEY cannot read
            log.error("webhook refused: %s", exc)
            return jsonify(error="webhook secret unreadable"), 503
        if reason:
            raise Rejected(reason, 401, "invalid signature")
    except Rejected as rejected:
        return _reject(rejected)
    try:
        payload = json.loads(body)
        event_id, event_type = payload["id"], payload["type"]
        if not (isinstance(event_id, str) and isinstance(event_type, str) and event_id and event_type):
            raise TypeError("id and type must be strings")
    except (ValueError, KeyError, TypeError) as exc:
        log.warning("webhook with a malformed body rejected: %s", exc)
        return jsonify(error=f"malformed event: {exc}"), 400
    if events.store_event(event_id[:100], event_type[:60], body.decode("utf-8", "replace")) is None:
        return jsonify(status="duplicate"), 200
    return jsonify(status="queued"), 200


def receive_quickbooks():
    """intuit-signature checked against the raw body (401 unsigned or forged), then each changed
    record stored once as an event and enqueued; the job fetches the record (QuickBooks waits 3 s)."""
    try:
        signature = request.headers.get("intuit-signature", "")
        if not signature:
            raise Rejected("no intuit-signature", 401, "invalid signature")
        body = _bounded_body()
        if not quickbooks.verify_webhook(body, signature):
            raise Rejected("forged intuit-signature", 401, "invalid signature")
    except Rejected as rejected:
        return _reject(rejected)
    try:
        notifications = read_notifications(json.loads(body))
    except (ValueError, MalformedNotification) as exc:
        return jsonify(error=f"malformed notification: {exc}"), 400
    stored = [events.store_event(event_id, kind, json.dumps(event)) for event_id, kind, event in notifications]
    new = sum(1 for event_id in stored if event_id is not None)
    return jsonify(status="queued", events=new, duplicates=len(stored) - new), 200


def _bounded_body():
    """The raw body, refused (413) when it declares or turns out to be larger than WEBHOOK_MAX_BYTES."""
    cap = current_app.config["WEBHOOK_MAX_BYTES"]
    too_large = Rejected("body too large", 413, f"body larger than {cap} bytes")
    if request.content_length is not None and request.content_length > cap:
        raise too_large
    chunks, size = [], 0
    while size <= cap:
        chunk = request.stream.read(min(64 * 1024, cap + 1 - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    if size > cap:
        raise too_large
    return b"".join(chunks)


def _reject(rejected):
    """Count the rejected delivery (one audit row per source and minute is written from the counts)."""
    log.warning("webhook rejected from %s: %s", request.remote_addr, rejected.reason)
    try:
        audit.count_rejection("webhook_rejected", request.remote_addr, subject=rejected.reason)
    except RedisError as exc:
        log.warning("could not count a rejected webhook: %s", exc)
    return jsonify(error=rejected.message), rejected.status


def register(appbuilder):
    blueprint = Blueprint("webhooks", __name__)
    blueprint.add_url_rule("/webhooks/openphone", view_func=receive_openphone, methods=["POST"])
    blueprint.add_url_rule("/webhooks/quickbooks", view_func=receive_quickbooks, methods=["POST"])
    csrf = current_app.extensions.get("csrf")
    if csrf:  # signed instead
        csrf.exempt(blueprint)
    current_app.register_blueprint(blueprint)
