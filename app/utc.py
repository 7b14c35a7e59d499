"""Naive UTC timestamps: every DateTime column stores UTC without a zone."""
from datetime import datetime, timezone


def utcnow():
    """Now, in UTC, without tzinfo (what every DateTime column holds)."""
    return datetime.now(timezone.utc).replace(tzinfo=None)
