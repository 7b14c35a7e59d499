"""Gunicorn configuration for `tests.clocked`: the web server's campaign clock (the sending forecast,
a test text's quiet hours) is the fixed one its workers send by. Loaded by the master before it
forks, so every web worker inherits it."""
import os

from app import campaigns
from tests.clocked import fixed_sender_clock

campaigns.sender_now = fixed_sender_clock(os.environ["CRM_TEST_SENDER_CLOCK"])
