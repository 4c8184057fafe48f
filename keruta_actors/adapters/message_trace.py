"""The message flow between actors, as Chrome trace events (`debug.trace`,
and `/debug/pprof/trace?seconds=N`). Perfetto and chrome://tracing open it.

Every message an actor handles becomes one complete event ("ph": "X"): its
name is the message type, its thread the receiving actor, its span the
handler's run; `args` name the sender and the receiver and give the size
(records for a chunk or batches, else 0).

`install()` wraps the actor base's `receiveMessage`, once, and only when
debugging is configured: otherwise nothing is wrapped and tracing costs
nothing. While no sink listens, the wrapper only checks that.

Events are made on the loop's thread. A file sink writes them as the JSON
array format (one event per line) and closes the array at `close`; a memory
sink keeps them for an HTTP request, which takes them when its N seconds
are up.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any, Callable

_sinks: list[Callable[[dict], None]] = []
_installed = False
_names: dict[str, tuple[int, str]] = {}  # actor address -> (trace thread id, name)
_EPOCH = time.perf_counter()


def install() -> None:
    """Wrap KerutaActor.receiveMessage (idempotent)."""
    global _installed
    if _installed:
        return
    from keruta_actors.actors.base import KerutaActor

    original = KerutaActor.receiveMessage

    def traced(self, message, sender):
        if not _sinks:
            return original(self, message, sender)
        started = time.perf_counter()
        try:
            return original(self, message, sender)
        finally:
            _emit(self, message, sender, started, time.perf_counter())

    KerutaActor.receiveMessage = traced
    _installed = True


def add_sink(sink: Callable[[dict], None]) -> None:
    _sinks.append(sink)
    for tid, name in list(_names.values()):  # late sinks still learn the names
        sink(_thread_name(tid, name))


def remove_sink(sink: Callable[[dict], None]) -> None:
    if sink in _sinks:
        _sinks.remove(sink)


class FileSink:
    """Events to `path`, as a JSON array."""

    def __init__(self, path: str) -> None:
        self._file = open(path, "w", encoding="utf-8")  # noqa: SIM115 - closed by close()
        self._file.write("[")
        self._first = True

    def __call__(self, event: dict) -> None:
        self._file.write(("\n" if self._first else ",\n") + json.dumps(event, separators=(",", ":")))
        self._first = False

    def close(self) -> None:
        remove_sink(self)
        self._file.write("\n]\n")
        self._file.close()


def collect(seconds: float) -> dict:
    """The events of the next `seconds`, as a trace-event JSON object."""
    events: list[dict] = []
    add_sink(events.append)
    try:
        time.sleep(seconds)
    finally:
        remove_sink(events.append)
    return {"traceEvents": list(events), "displayTimeUnit": "ms"}


def _emit(actor, message: Any, sender, started: float, ended: float) -> None:
    receiver = _name_of(actor.myAddress, type(actor).__name__)
    event = {
        "name": type(message).__name__, "cat": "message", "ph": "X", "pid": os.getpid(), "tid": receiver[0],
        "ts": round((started - _EPOCH) * 1e6, 1), "dur": round((ended - started) * 1e6, 1),
        "args": {"sender": _name_of(sender, "outside")[1], "receiver": receiver[1], "size": _size(message)},
    }
    for sink in list(_sinks):
        sink(event)


def _name_of(address, kind: str) -> tuple[int, str]:
    key = str(address)
    if key not in _names:
        if kind == "outside":
            return (0, "outside")
        _names[key] = (len(_names) + 1, f"{kind} {key}")
        for sink in list(_sinks):
            sink(_thread_name(*_names[key]))
    return _names[key]


def _thread_name(tid: int, name: str) -> dict:
    return {"name": "thread_name", "ph": "M", "pid": os.getpid(), "tid": tid, "args": {"name": name}}


def _size(message: Any) -> int:
    size = getattr(message, "size", None)
    if isinstance(size, int):
        return size
    batches = getattr(message, "batches", None)
    if isinstance(batches, tuple):
        return sum(len(batch) for _, batch in batches)
    return 0
