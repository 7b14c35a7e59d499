"""`python -m tests.clocked ISO-TIME ARGS...` is `crm ARGS...` with the campaign sender's clock
fixed at ISO-TIME, in this process, in the workers `crm run` starts and in its web server
(tests/clocked_web.py): tests that run real processes send at a lawful hour whenever they run,
and production code keeps one clock."""
import os
import sys
from datetime import datetime

import run
from app import campaigns, schedule


def fixed_sender_clock(when):
    """A campaigns.sender_now that answers `when` (an aware datetime or ISO text) when not given a time."""
    fixed = schedule.utc(datetime.fromisoformat(when) if isinstance(when, str) else when)
    return lambda now=None: fixed if now is None else schedule.utc(now)


class SteppedClock:
    """Seconds that pass only when someone waits: the rate limiter sleeps on it and the fake
    OpenPhone reads it, so a request-rate test means the same on any machine, however busy."""

    def __init__(self, start=1_000_000.0):
        self.seconds = start

    def now(self):
        return self.seconds

    __call__ = now

    def sleep(self, seconds):
        self.seconds += seconds


def main():
    when, args = sys.argv[1], sys.argv[2:]
    campaigns.sender_now = fixed_sender_clock(when)
    run.WORKER_COMMAND = [sys.executable, "-m", "tests.clocked", when, "worker"]
    os.environ.update(CRM_TEST_SENDER_CLOCK=when, GUNICORN_CMD_ARGS="--config python:tests.clocked_web")
    sys.argv = ["crm", *args]
    run.main()


if __name__ == "__main__":
    main()
