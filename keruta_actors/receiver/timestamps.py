"""Timestamps as the receiver stores and compares them.

Records are ordered and filtered (`from`, `to`, `before`, retention) by
comparing timestamp texts, which is right only if every stored timestamp has
one form: the agent's RFC 3339, UTC, milliseconds, `Z`
(`2026-11-29T01:02:03.456Z`). A client may send any ISO 8601 form, so other
forms are converted to that one when they arrive.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone

_CANONICAL = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


def canonical(text: str) -> str | None:
    """`text` in the stored form, or None if it is not an ISO 8601 date-time.
    A time without an offset is taken as UTC."""
    if _CANONICAL.fullmatch(text):
        return text  # the agent's form: the common case, and the cheap one
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    try:
        when = when.astimezone(timezone.utc)
    except OverflowError:  # year 1 or 9999 pushed past the range by its offset
        return None
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"
