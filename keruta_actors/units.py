"""The small grammars of configuration values: durations, sizes, cron schedules.

Durations: a bare number is seconds (`1`, `0.5`, `"30"`); otherwise one or more
number-unit pairs, units `ms`, `s`, `m`, `h`, `d` (`"500ms"`, `"5m"`, `"1h30m"`).
Units are lower case only, so `m` (minute) can never be mistaken for a month
or a megabyte.

Sizes: a bare whole number is bytes; otherwise a number and a unit, any case.
KB, MB, GB and TB are binary (1 KB = 1024 bytes), as in the log-rotation tools
the design document follows (lumberjack's `MaxSize` is in units of 1024*1024
bytes) and as its `memoryLimitMB` is measured; KiB, MiB, GiB and TiB say the
same thing unambiguously. `B` is bytes. Fractions round down to whole bytes.

Everything here is pure; each parser raises ValueError with a message that
names the offending text.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime
from fractions import Fraction

_NUMBER = r"(?:\d+(?:\.\d*)?|\.\d+)"

DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION = re.compile(rf"(?:{_NUMBER}\s*(?:ms|s|m|h|d)\s*)+")
_DURATION_PART = re.compile(rf"({_NUMBER})\s*(ms|s|m|h|d)")

SIZE_UNITS = {
    "B": 1,
    "KB": 1024, "MB": 1024**2, "GB": 1024**3, "TB": 1024**4,
    "KIB": 1024, "MIB": 1024**2, "GIB": 1024**3, "TIB": 1024**4,
}
_SIZE = re.compile(rf"({_NUMBER})\s*([A-Za-z]+)")


def parse_duration(value: object) -> float:
    """Seconds, as a non-negative finite float."""
    if isinstance(value, bool):  # bool is an int; `true` is no duration
        raise ValueError(f"invalid duration {value!r}")
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str):
        seconds = _duration_text(value.strip())
    else:
        raise ValueError(f"invalid duration {value!r}: expected a number or a string")
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"invalid duration {value!r}: must be a finite number >= 0")
    return seconds


def _duration_text(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        pass
    if not _DURATION.fullmatch(text):
        raise ValueError(
            f"invalid duration {text!r}: expected seconds or a number with a unit "
            "(ms, s, m, h, d), e.g. '500ms', '1s', '5m', '2h', '30d'"
        )
    return sum(float(n) * DURATION_UNITS[u] for n, u in _DURATION_PART.findall(text))


def parse_size(value: object) -> int:
    """Bytes, as a non-negative int."""
    if isinstance(value, bool):
        raise ValueError(f"invalid size {value!r}")
    if isinstance(value, int):
        size = value
    elif isinstance(value, float) and value.is_integer():
        size = int(value)
    elif isinstance(value, str):
        size = _size_text(value.strip())
    else:
        raise ValueError(f"invalid size {value!r}: expected whole bytes or a string like '100MB'")
    if size < 0:
        raise ValueError(f"invalid size {value!r}: must be >= 0")
    return size


def _size_text(text: str) -> int:
    if text.isdigit():
        return int(text)
    match = _SIZE.fullmatch(text)
    unit = SIZE_UNITS.get(match.group(2).upper()) if match else None
    if unit is None:
        raise ValueError(
            f"invalid size {text!r}: expected bytes or a number with a unit "
            "(B, KB, MB, GB, TB, KiB, MiB, GiB, TiB), e.g. '512KB', '100MB', '10GB'"
        )
    # Fraction, not float: '0.1GB' must come out as the same bytes every time.
    return math.floor(Fraction(match.group(1)) * unit)


# --- cron ----------------------------------------------------------------------

_CRON_FIELDS = (  # name, lowest, highest, names for values
    ("minute", 0, 59, ()),
    ("hour", 0, 23, ()),
    ("day of month", 1, 31, ()),
    ("month", 1, 12, ("jan", "feb", "mar", "apr", "may", "jun",
                      "jul", "aug", "sep", "oct", "nov", "dec")),
    ("day of week", 0, 7, ("sun", "mon", "tue", "wed", "thu", "fri", "sat")),
)
_CRON_MACROS = {
    "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_CRON_ITEM = re.compile(r"(\*|\w+)(?:-(\w+))?(?:/(\d+))?")


@dataclass(frozen=True, slots=True)
class CronSchedule:
    """A parsed five-field cron expression (minute hour day month weekday).

    Weekdays run 0-6 from Sunday (7 is read as Sunday too). As in Vixie cron,
    when both the day of month and the day of week are restricted, a time
    matches if either does."""

    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]
    any_day: bool
    any_weekday: bool

    def matches(self, when: datetime) -> bool:
        weekday = (when.weekday() + 1) % 7  # datetime counts from Monday
        if self.any_day or self.any_weekday:
            day_ok = when.day in self.days and weekday in self.weekdays
        else:
            day_ok = when.day in self.days or weekday in self.weekdays
        return (when.minute in self.minutes and when.hour in self.hours
                and when.month in self.months and day_ok)


def parse_cron(expression: str) -> CronSchedule:
    """Parse `"0 2 * * *"`-style expressions, with ranges, lists, steps,
    month and weekday names, and the @daily-style macros."""
    if not isinstance(expression, str):
        raise ValueError(f"invalid cron expression {expression!r}: expected a string")
    text = _CRON_MACROS.get(expression.strip().lower(), expression)
    parts = text.split()
    if len(parts) != 5:
        raise ValueError(
            f"invalid cron expression {expression!r}: expected 5 fields "
            f"(minute hour day-of-month month day-of-week), got {len(parts)}"
        )
    sets = [_cron_field(part, spec, expression) for part, spec in zip(parts, _CRON_FIELDS)]
    sets[4] = frozenset(day % 7 for day in sets[4])
    return CronSchedule(*sets, any_day=parts[2] == "*", any_weekday=parts[4] == "*")


def _cron_field(text: str, spec: tuple, expression: str) -> frozenset[int]:
    name, low, high, names = spec
    values: set[int] = set()
    for item in text.split(","):
        match = _CRON_ITEM.fullmatch(item.lower())
        try:
            if not match:
                raise ValueError(f"cannot read {item!r}")
            first, last, step = match.groups()
            if first == "*":
                if last:
                    raise ValueError(f"cannot read {item!r}")
                start, stop = low, high
            else:
                start = _cron_value(first, low, high, names)
                stop = _cron_value(last, low, high, names) if last else (high if step else start)
            if start > stop:
                raise ValueError(f"range {item!r} runs backwards")
            if step is not None and int(step) < 1:
                raise ValueError(f"step in {item!r} must be >= 1")
            values.update(range(start, stop + 1, int(step or 1)))
        except ValueError as error:
            raise ValueError(f"invalid cron expression {expression!r}: {name} field: {error}") from None
    return frozenset(values)


def _cron_value(token: str, low: int, high: int, names: tuple) -> int:
    if token in names:
        return names.index(token) + (1 if low == 1 else 0)
    if not token.isdigit():
        raise ValueError(f"{token!r} is not a number" + (" or a name" if names else ""))
    value = int(token)
    if not low <= value <= high:
        raise ValueError(f"{value} is out of range {low}-{high}")
    return value
