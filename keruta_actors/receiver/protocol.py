"""One ingest WebSocket's conversation (SPEC §5), without I/O.

The handler feeds an `IngestSession` what happened (the connection opened,
a frame arrived, a ping arrived, the client went quiet) and carries out the
actions it returns, in order: `Send` a JSON frame, `Store` records, send a
`Pong`, `Close`, `Subscribe` to the task's new records or `Unsubscribe`.

The same socket serves agents and viewers: an agent sends records, a viewer
sends `subscribe` (with the API's options `sources`, `levels`, `realtime`, and
our `batch`) and gets `subscribed`, then the records as they are stored.

The rule everything here keeps: nothing that shows the client progress (an
ack, a pong, any reply) leaves before every record received ahead of it has
been stored. An agent talking to a server without `ack` counts frames as
received once a ping sent after them is answered, so answering early would
let it forget records the receiver never kept.

Records are held and stored many frames to a transaction, because a commit
costs about as much as storing ten records: they are stored once the client
goes quiet (every frame already read has been handled), before any reply, or
when `HOLD` records have gathered. A batch is still stored whole or not at
all, and acked only after its transaction has committed.

The checks at the bottom (records, JSON text, credentials) are shared with the
REST endpoints (rest_ingest.py), so both ways in accept the same records and
the same tokens.
"""

from __future__ import annotations

import hmac
import json
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from keruta_actors.receiver.timestamps import canonical
from keruta_actors.records import LEVELS, SOURCES

DEFAULT_CAPABILITIES = ("batch", "ack")
UNAUTHORIZED = 4401  # a private-use close code: 4000 + the HTTP status
INTERNAL_ERROR = 1011
HOLD = 1000  # records waiting that make a store happen at once


@dataclass(frozen=True, slots=True)
class Send:
    frame: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Store:
    """Store `records` in one transaction; then send `{"type":"ack",
    "batchId":B}` for each B in `acks`, in order."""

    records: list[dict[str, Any]]
    acks: tuple[Any, ...] = ()


@dataclass(frozen=True, slots=True)
class Pong:
    payload: bytes


@dataclass(frozen=True, slots=True)
class Close:
    code: int


@dataclass(frozen=True, slots=True)
class Options:
    """A subscription's options; empty tuples mean every source or level.
    `batch` is ours, not the API's: records come in `logs` frames."""

    sources: tuple[str, ...] = ()
    levels: tuple[str, ...] = ()
    realtime: bool = True
    batch: bool = False

    def as_json(self) -> dict[str, Any]:
        return {"sources": list(self.sources), "levels": list(self.levels), "realtime": self.realtime, "batch": self.batch}


@dataclass(frozen=True, slots=True)
class Subscribe:
    """Start sending the task's new records (replacing any subscription)."""

    options: Options


@dataclass(frozen=True, slots=True)
class Unsubscribe:
    pass


Action = Send | Store | Pong | Close | Subscribe | Unsubscribe


def error(code: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"type": "error", "code": code, "message": message, **extra}


class IngestSession:
    """`token=None` accepts any client; `capabilities=None` sends no `hello`,
    like a server that knows no extensions (and then `logs` frames are
    refused)."""

    def __init__(
        self,
        task_id: str,
        token: str | None = None,
        capabilities: tuple[str, ...] | None = DEFAULT_CAPABILITIES,
    ) -> None:
        self.task_id = task_id
        self._token = token
        self._capabilities = capabilities
        self._held: list[dict[str, Any]] = []
        self._held_acks: list[Any] = []
        self.authenticated = False
        self.closed = False
        self._frames = {
            "log": self._frame_log,
            "auth": self._frame_auth,
            "ping": self._frame_ping,
            "pong": self._frame_pong,
            "subscribe": self._frame_subscribe,
            "unsubscribe": self._frame_unsubscribe,
        }
        if self._announced("batch"):
            self._frames["logs"] = self._frame_logs

    @property
    def holding(self) -> bool:
        return bool(self._held or self._held_acks)

    def opened(self, credentials: Iterable[str]) -> list[Action]:
        """The handshake is done; `credentials` are the tokens its headers
        carried (bearer token, API key)."""
        given = list(credentials)
        if self._token is None or any(token_matches(c, self._token) for c in given):
            return self._authenticate()
        if given:
            return self._reject("authentication failed")
        return []  # wait for an auth frame

    def received(self, data: str | bytes) -> list[Action]:
        if self.closed:
            return []
        frame, problem = _decode(data)
        if not self.authenticated:
            if frame is not None and frame.get("type") == "auth":
                return self._frame_auth(frame)
            return self._reject("authentication required")
        if problem:
            return self._invalid(problem)
        kind = frame.get("type")
        handler = self._frames.get(kind) if type(kind) is str else None
        if handler is None:
            return self._invalid(f"unknown frame type {repr(kind)[:40]}")
        return handler(frame)

    def pinged(self, payload: bytes) -> list[Action]:
        """A WebSocket ping arrived: answer it only after what came before."""
        if self.closed:
            return []
        return self._flush() + [Pong(payload)]

    def idle(self) -> list[Action]:
        """Nothing more is queued from the client (or it has gone)."""
        return self._flush()

    def auth_timed_out(self) -> list[Action]:
        return [] if self.authenticated else self._reject("authentication required")

    def store_failed(self) -> list[Action]:
        """End the connection, so that no later ack or pong vouches for the
        records that were lost; the agent sends them again after reconnecting."""
        if self.closed:
            return []
        self.closed = True
        self._held, self._held_acks = [], []
        return [Send(error("DATABASE_ERROR", "storing records failed")), Close(INTERNAL_ERROR)]

    # --- frames ----------------------------------------------------------------

    def _frame_auth(self, frame: dict[str, Any]) -> list[Action]:
        token = frame.get("token")
        if self._token is None or (type(token) is str and token_matches(token, self._token)):
            return [] if self.authenticated else self._authenticate()
        return self._flush() + self._reject("authentication failed")

    def _frame_log(self, frame: dict[str, Any]) -> list[Action]:
        problem = record_problem(frame, self.task_id)
        if problem:
            return self._invalid(problem)
        self._held.append(frame)
        return self._flush_if_full()

    def _frame_logs(self, frame: dict[str, Any]) -> list[Action]:
        batch_id = frame.get("batchId")
        if type(batch_id) not in (str, int):
            return self._invalid("'batchId' must be a string or an integer")
        problem = batch_problem(frame, self.task_id)
        if problem:
            return self._invalid(problem, batchId=batch_id)
        self._held.extend(frame["logs"])
        if self._announced("ack"):
            self._held_acks.append(batch_id)
        return self._flush_if_full()

    def _frame_ping(self, _frame: dict[str, Any]) -> list[Action]:
        return self._flush() + [Send({"type": "pong"})]

    def _frame_pong(self, _frame: dict[str, Any]) -> list[Action]:
        return []

    def _frame_subscribe(self, frame: dict[str, Any]) -> list[Action]:
        options, problem = subscription(frame, self.task_id)
        if problem:
            return self._invalid(problem)
        reply = {"type": "subscribed", "taskId": self.task_id, "options": options.as_json()}
        return [Send(reply), Subscribe(options)]  # the reply goes ahead of any record

    def _frame_unsubscribe(self, frame: dict[str, Any]) -> list[Action]:
        if frame.get("taskId", self.task_id) != self.task_id:
            return self._invalid("'taskId' does not match the task in the URL")
        return [Unsubscribe(), Send({"type": "unsubscribed", "taskId": self.task_id})]

    # --- helpers ---------------------------------------------------------------

    def _authenticate(self) -> list[Action]:
        self.authenticated = True
        if self._capabilities is None:
            return []
        return [Send({"type": "hello", "capabilities": list(self._capabilities)})]

    def _invalid(self, problem: str, **extra: Any) -> list[Action]:
        return self._flush() + [Send(error("INVALID_LOG_FORMAT", problem, **extra))]

    def _reject(self, why: str) -> list[Action]:
        self.closed = True
        return [Send(error("WEBSOCKET_CONNECTION_FAILED", why)), Close(UNAUTHORIZED)]

    def _flush(self) -> list[Action]:
        if not self._held and not self._held_acks:
            return []
        store = Store(self._held, tuple(self._held_acks))
        self._held, self._held_acks = [], []
        return [store]

    def _flush_if_full(self) -> list[Action]:
        return self._flush() if len(self._held) >= HOLD else []

    def _announced(self, capability: str) -> bool:
        return self._capabilities is not None and capability in self._capabilities


# --- checks shared with REST ingest -------------------------------------------

_TYPED_FIELDS = (("id", str), ("timestamp", str), ("message", str), ("metadata", dict))
_TYPE_NAMES = {str: "a string", dict: "an object"}


def _decode(data: str | bytes) -> tuple[dict[str, Any] | None, str]:
    """The frame as a JSON object, or None and why not."""
    if not isinstance(data, str):
        return None, "frames must be JSON text, not binary"
    frame, problem = parse_json(data, "frame")
    if problem:
        return None, problem
    if type(frame) is not dict:
        return None, "frame must be a JSON object"
    return frame, ""


def parse_json(text: str, what: str) -> tuple[Any, str]:
    """`text` as a JSON value, or None and why not (naming it `what`)."""
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return None, f"{what} is not valid JSON"
    if ("\\ud" in text or "\\uD" in text) and _has_lone_surrogate(value):
        return None, f"{what} holds a lone UTF-16 surrogate"
    return value, ""


def _has_lone_surrogate(value: Any) -> bool:
    """JSON escapes can spell strings that are not Unicode text, which SQLite
    cannot store. Only texts with escaped surrogates get here: most of them
    hold pairs (an emoji from an ASCII-only encoder), which are fine."""
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def record_problem(record: Any, task_id: str) -> str:
    """Why `record` is not a LogMessage for `task_id`, or "" if it is. A
    good record's timestamp is put in the stored form (timestamps.py)."""
    if type(record) is not dict:
        return "a log record must be a JSON object"
    for name, kind in _TYPED_FIELDS:
        if type(record.get(name)) is not kind:
            return f"{name!r} must be {_TYPE_NAMES[kind]}"
    stamp = canonical(record["timestamp"])
    if stamp is None:
        return "'timestamp' must be an ISO 8601 date-time"
    record["timestamp"] = stamp
    line_number = record.get("lineNumber")
    if type(line_number) is not int or not 0 <= line_number < 2**63:
        return "'lineNumber' must be an integer from 0 to 2**63-1"
    if record.get("source") not in SOURCES:
        return f"'source' must be one of {', '.join(SOURCES)}"
    if record.get("level") not in LEVELS:
        return f"'level' must be one of {', '.join(LEVELS)}"
    if record.get("taskId") != task_id:
        return "'taskId' does not match the task in the URL"
    return ""


def records_problem(records: list[Any], task_id: str, where: str) -> str:
    """Why one of `records` is not a LogMessage for `task_id`, naming it as
    `where[index]`, or "" if all are."""
    for index, record in enumerate(records):
        problem = record_problem(record, task_id)
        if problem:
            return f"{where}[{index}]: {problem}"
    return ""


def batch_problem(frame: dict[str, Any], task_id: str) -> str:
    if frame.get("taskId") != task_id:
        return "'taskId' does not match the task in the URL"
    records = frame.get("logs")
    if type(records) is not list:
        return "'logs' must be an array"
    return records_problem(records, task_id, "logs")


def subscription(frame: dict[str, Any], task_id: str) -> tuple[Options, str]:
    """A `subscribe` frame's options, or the defaults and why it is refused."""
    if frame.get("taskId", task_id) != task_id:
        return Options(), "'taskId' does not match the task in the URL"
    options = frame.get("options", {})
    if type(options) is not dict:
        return Options(), "'options' must be an object"
    chosen: dict[str, Any] = {}
    for name, allowed in (("sources", SOURCES), ("levels", LEVELS)):
        values = options.get(name, [])
        if type(values) is not list or any(v not in allowed for v in values):
            return Options(), f"'options.{name}' must be a list of {', '.join(allowed)}"
        chosen[name] = tuple(dict.fromkeys(values))
    for name in ("realtime", "batch"):
        value = options.get(name, name == "realtime")
        if type(value) is not bool:
            return Options(), f"'options.{name}' must be true or false"
        chosen[name] = value
    return Options(**chosen), ""


def credentials(headers: Mapping[str, str]) -> list[str]:
    """The tokens a request's headers carry: a bearer token and/or an API key."""
    found = []
    scheme, _, value = headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        found.append(value.strip())
    if headers.get("X-API-Key"):
        found.append(headers["X-API-Key"])
    return found


def token_matches(given: str, token: str) -> bool:
    """In constant time, so the answer's timing tells nothing of the token."""
    # surrogatepass: a hostile token may hold lone surrogates.
    return hmac.compare_digest(given.encode("utf-8", "surrogatepass"), token.encode("utf-8", "surrogatepass"))
