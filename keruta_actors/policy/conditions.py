"""Alert conditions: `signal op value`, parsed once at start-up (SPEC §8).

    error_rate > 0.05            a share; `5%` says the same
    latency > 1s                 seconds; `500ms`, `2m` or a bare number of seconds
    memory_usage > 80%           a share of performance.memoryLimitMB
    websocket_status != 'connected'
    buffer_usage >= 90%          records held in memory, as a share of the buffer's cap
    spool_bytes > 1GB            bytes; `512MB`, or a bare number of bytes

Operators: > >= < <= == !=. A text value is quoted ('...' or "...", no
escapes) and compares only with == and !=. Durations and sizes are read by
keruta_actors.units, so they mean what they mean everywhere else in the
configuration.

Everything a rule could get wrong is found here, before the agent starts: an
unknown signal (with a "did you mean"), a value of the wrong kind for its
signal, a misspelt status. Each raises ConditionError, a ValueError whose text
names the condition, so the config module can report it by key path.
"""

from __future__ import annotations

import difflib
import operator
import re
from dataclasses import dataclass
from typing import Any, Callable

from keruta_actors.units import parse_duration, parse_size

WEBSOCKET_STATUSES = ("connected", "connecting", "disconnected", "retired")

# signal -> (kind, what its value is). A share is a fraction: 0.8 = 80%.
SIGNALS = {
    "error_rate": ("share", "failed operations / all operations over the last minute"),
    "latency": ("duration", "p99 seconds from line read to delivery confirmed, over the last minute"),
    "memory_usage": ("share", "the agent's memory (PSS) / performance.memoryLimitMB"),
    "websocket_status": ("text", "one of " + ", ".join(WEBSOCKET_STATUSES)),
    "buffer_usage": ("share", "records held in memory / the in-memory buffer's cap"),
    "spool_bytes": ("bytes", "bytes waiting in the durable spool"),
}

OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    ">": operator.gt, ">=": operator.ge, "<": operator.lt,
    "<=": operator.le, "==": operator.eq, "!=": operator.ne,
}

_SYNTAX = re.compile(
    r"\s*(?P<signal>[A-Za-z_][A-Za-z0-9_.]*)\s*(?P<op>>=|<=|==|!=|>|<)\s*"
    r"(?:(?P<number>[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)\s*(?P<unit>%|[A-Za-z]+)?"
    r"|(?P<text>'[^']*'|\"[^\"]*\"))\s*"
)
_SYNTAX_HELP = ("expected a condition 'signal op value' (op one of > >= < <= == !=; "
                "value a number, 80%, 1s or a quoted string)")


class ConditionError(ValueError):
    """A condition that cannot be evaluated; the text says why and how to fix it."""


@dataclass(frozen=True, slots=True)
class Condition:
    """A parsed condition. `value` is the threshold in the signal's own unit
    (a share, seconds, bytes, or text); `written` is the value as the rule
    spelt it, so that `parse_condition(str(c)) == c`."""

    signal: str
    operator: str
    value: float | str
    written: str

    def __str__(self) -> str:
        return f"{self.signal} {self.operator} {self.written}"

    def holds(self, observed: float | str | None) -> bool:
        """Whether the condition holds for a signal's current value. A signal
        with no value (no samples yet, nothing measured) never satisfies it."""
        return observed is not None and OPERATORS[self.operator](observed, self.value)


def parse_condition(text: Any) -> Condition:
    match = _SYNTAX.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise ConditionError(f"{_SYNTAX_HELP}, got {text!r}{_quote_hint(text)}")
    signal, op = match["signal"], match["op"]
    if signal not in SIGNALS:
        raise ConditionError(f"unknown signal {signal!r} in {text!r} ({_signal_hint(signal)})")
    kind = SIGNALS[signal][0]
    if match["text"] is not None:
        return Condition(signal, op, _text_value(signal, kind, op, match["text"], text), match["text"])
    written = match["number"] + (match["unit"] or "")
    return Condition(signal, op, _number_value(signal, kind, match["number"], match["unit"], text), written)


def _text_value(signal: str, kind: str, op: str, quoted: str, text: str) -> str:
    value = quoted[1:-1]
    if kind != "text":
        raise ConditionError(f"{signal} is a number, not text, in {text!r}")
    if op not in ("==", "!="):
        raise ConditionError(f"{signal} is text: compare it with == or !=, not {op}, in {text!r}")
    if value not in WEBSOCKET_STATUSES:
        close = difflib.get_close_matches(value, WEBSOCKET_STATUSES, n=1)
        hint = f"did you mean {close[0]!r}?" if close else "one of " + ", ".join(WEBSOCKET_STATUSES)
        raise ConditionError(f"{value!r} is not a {signal} in {text!r} ({hint})")
    return value


def _number_value(signal: str, kind: str, number: str, unit: str | None, text: str) -> float:
    if kind == "text":
        raise ConditionError(f"{signal} is text: quote the value, e.g. {signal} != 'connected', in {text!r}")
    try:
        if kind == "duration":
            return parse_duration(number + (unit or ""))
        if kind == "bytes":
            return float(parse_size(number + (unit or "")))
    except ValueError as error:
        raise ConditionError(f"{signal} in {text!r}: {error}") from None
    if unit not in (None, "%"):
        raise ConditionError(f"{signal} is a share: write 80% or 0.8, not {unit!r}, in {text!r}")
    value = float(number)
    if unit is None and value > 1:
        raise ConditionError(f"{signal} is a share from 0 to 1 in {text!r} (did you mean '{number}%'?)")
    return value / 100 if unit else value


def _signal_hint(signal: str) -> str:
    close = difflib.get_close_matches(signal, SIGNALS, n=1, cutoff=0.5)
    return f"did you mean {close[0]!r}?" if close else "known signals: " + ", ".join(SIGNALS)


def _quote_hint(text: Any) -> str:
    # `websocket_status != connected` is the likeliest slip: say so.
    bare = isinstance(text, str) and re.fullmatch(r"\s*\w+\s*(?:==|!=)\s*([A-Za-z_]\w*)\s*", text)
    return f" (quote text values: '{bare.group(1)}')" if bare else ""
