"""Level detection (SPEC §4): a line's level from its own words, else a per-source default.

What counts as a level, in order:

1. A JSON object line: its top-level `level`, `severity` or `lvl` field, as a
   name (`"warn"`, `"Warning"`, `"ERR"`) or a pino/bunyan number (10 trace ...
   60 fatal). Python's numeric levels (30 = warning) are not recognised: they
   clash with pino's (30 = info), and Python's JSON formatters emit names.
2. A klog header: `E1129 12:00:00.123456 ...` (the letter I, W, E or F).
3. A level token among the first few whitespace-separated tokens of the line:
   - UPPERCASE bare (`ERROR x`, `2024-01-01 12:00:00 WARN x`,
     `... - name - ERROR - msg`, `WARNING:root:msg`), because loggers write
     levels in capitals and prose rarely does;
   - any case when decorated like a level: `[error]`, `<Warn>`, `(info)`,
     `error:` (git, compilers, Node), `level=warn`, `lvl="info"`.

A bare lowercase or Title-case word (`error handling`, `0 errors`) is prose,
not a level, and a level word beyond the first tokens is ignored: progress
text that mentions "error" must not raise the error rate.

Cost (tools/policy_costs.py): looking the first tokens up in one dict costs
about 1 us a line on a 2-core test machine; a regex searching the start of
the line for the same shapes cost over 10 us, and one over a whole chunk was
no cheaper than the dict, so there is no chunk-level variant.
"""

from __future__ import annotations

import json

_WORDS = {
    "ERROR": "ERROR", "ERR": "ERROR", "FATAL": "ERROR", "CRITICAL": "ERROR",
    "CRIT": "ERROR", "PANIC": "ERROR", "SEVERE": "ERROR",
    "WARN": "WARN", "WARNING": "WARN",
    "INFO": "INFO", "NOTICE": "INFO",
    "DEBUG": "DEBUG", "TRACE": "DEBUG",
}  # fmt: skip

# Names only an explicit JSON level field may use: too common as prose words.
_JSON_WORDS = _WORDS | {
    "INFORMATION": "INFO", "VERBOSE": "DEBUG", "ALERT": "ERROR", "EMERGENCY": "ERROR",
}  # fmt: skip

_JSON_KEYS = ("level", "severity", "lvl")

# Tokens after the first _TOKENS are not looked at; the Python logging format
# `date time - logger - LEVEL - msg` puts the level sixth.
_TOKENS = 6
# Enough characters for those tokens in the usual formats; bounds the cost
# of splitting a long line.
_PREFIX = 120

_DECORATED = ("[{}]", "[{}]:", "<{}>", "({})", "{}:", "level={}", 'level="{}"',
              "lvl={}", 'lvl="{}"', "severity={}", 'severity="{}"')  # fmt: skip


def _token_table() -> dict[str, str]:
    table = dict(_WORDS)
    for word, level in _WORDS.items():
        for shape in _DECORATED:
            for spelling in (word, word.lower(), word.title()):
                table[shape.format(spelling)] = level
    return table


_TOKEN_LEVELS = _token_table()
_TOKEN_SET = frozenset(_TOKEN_LEVELS)

_KLOG = {"I": "INFO", "W": "WARN", "E": "ERROR", "F": "ERROR"}
# First characters of a first token worth a second look (`E1129`, `WARNING:root:`).
_HEADER_INITIALS = frozenset(word[0] for word in _WORDS)


def default_level(source: str, *, stdout: str = "INFO", stderr: str = "WARN") -> str:
    """The level of a line that names none.

    stderr defaults to WARN, not ERROR: keruta users' scripts print progress
    and diagnostics on stderr, and counting those as errors would trip the
    `error_rate` alert on healthy runs. WARN still keeps stderr visible when
    the shipped level is raised to WARN, so an uncaught traceback (which
    names no level) is not filtered away. Every other source is `stdout`'s.
    """
    return stderr if source == "stderr" else stdout


def detect_level(text: str, default: str) -> str:
    """DEBUG, INFO, WARN or ERROR as the line itself says, else `default`."""
    if text[:1] == "{":
        level = _json_level(text)
        if level:
            return level
    tokens = text[:_PREFIX].split(None, _TOKENS)
    if not _TOKEN_SET.isdisjoint(tokens):
        return next(filter(None, map(_TOKEN_LEVELS.get, tokens)))
    if tokens and tokens[0][:1] in _HEADER_INITIALS:
        return _header_level(tokens[0]) or default
    return default


def _header_level(first: str) -> str | None:
    """klog's `E1129` and Python logging's default `WARNING:root:msg`."""
    if len(first) == 5 and first[1:].isdigit():
        return _KLOG.get(first[0])
    return _WORDS.get(first.partition(":")[0])


def _json_level(text: str) -> str | None:
    try:
        record = json.loads(text)
    except ValueError:
        return None
    if not isinstance(record, dict):
        return None
    for key in _JSON_KEYS:
        value = record.get(key)
        if isinstance(value, str):
            return _JSON_WORDS.get(value.upper())
        if isinstance(value, int) and not isinstance(value, bool):
            return _pino_level(value)
    return None


def _pino_level(number: int) -> str | None:
    """pino/bunyan: 10 trace, 20 debug, 30 info, 40 warn, 50 error, 60 fatal."""
    if number < 10:
        return None
    return "DEBUG" if number < 30 else "INFO" if number < 40 else "WARN" if number < 50 else "ERROR"
