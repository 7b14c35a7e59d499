"""RQ entry point for webhook events: take an id, call app.events."""
from app import events


def process_event(webhook_event_id):
    event = events.process_event(webhook_event_id)
    return event.status if event else None
