"""RQ entry points for texts and webhook events: take ids, call app.messages."""
from app import messages


def send_message(message_id):
    return messages.send_message(message_id)


def process_event(webhook_event_id):
    event = messages.process_event(webhook_event_id)
    return event.status if event else None
