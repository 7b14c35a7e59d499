"""`python -m tests.clocked ISO-TIME ARGS...` is `crm ARGS...` with the campaign sender's clock
fixed at ISO-TIME, in this process and in the workers `crm run` starts: tests that run real
processes send at a lawful hour whenever they run, and production code keeps one clock."""
import sys
from datetime import datetime

import run
from app import campaigns, schedule


def fixed_sender_clock(when):
    """A campaigns.sender_now that answers `when` (an aware datetime or ISO text) when not given a time."""
    fixed = schedule.utc(datetime.fromisoformat(when) if isinstance(when, str) else when)
    return lambda now=None: fixed if now is None else schedule.utc(now)


def main():
    when, args = sys.argv[1], sys.argv[2:]
    campaigns.sender_now = fixed_sender_clock(when)
    run.WORKER_COMMAND = [sys.executable, "-m", "tests.clocked", when, "worker"]
    sys.argv = ["crm", *args]
    run.main()


if __name__ == "__main__":
    main()
