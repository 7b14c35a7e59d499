"""RQ entry point for texts: take an id, call app.messages."""
from app import messages


def send_message(message_id):
    return messages.send_message(message_id)
