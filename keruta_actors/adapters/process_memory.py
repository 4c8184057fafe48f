"""Measuring the agent's memory, and giving some back (SPEC §7, §8).

The agent is one process: every actor runs in it (adapters/reactor.py), and
its worker threads share its memory. The user's script is its child and is
not part of the agent.
"""

from __future__ import annotations

import ctypes
import gc
from typing import Iterable

import psutil

from keruta_actors.policy.memory import MemoryReading

_GONE = (psutil.NoSuchProcess, psutil.ZombieProcess)


def memory_of(processes: Iterable[psutil.Process]) -> tuple[int, int]:
    """(bytes, processes measured): the summed PSS of `processes`.

    PSS comes from `memory_full_info()` (on Linux, /proc/<pid>/smaps_rollup,
    ~0.2 ms a process). Where PSS is unavailable, RSS stands in for that
    process: on systems without PSS (macOS, Windows, BSDs) and for a process
    whose smaps we may not read (AccessDenied: another user's, or a
    non-dumpable one). RSS counts shared pages in full, so it overstates.
    A process that has exited or turned zombie since it was listed is skipped.
    """
    total = measured = 0
    for process in processes:
        size = _pss_or_rss(process)
        if size:  # None: gone; 0: a zombie, nothing resident
            total += size
            measured += 1
    return total, measured


def measure(limit_bytes: int) -> MemoryReading:
    """The agent's memory now, against `limit_bytes`."""
    pss, processes = memory_of([psutil.Process()])
    return MemoryReading(pss_bytes=pss, processes=processes, limit_bytes=limit_bytes)


def _pss_or_rss(process: psutil.Process) -> int | None:
    try:
        try:
            info = process.memory_full_info()
        except psutil.AccessDenied:
            return process.memory_info().rss
        pss = getattr(info, "pss", None)
        return pss if pss is not None else info.rss
    except _GONE:
        return None
    except psutil.AccessDenied:  # not even RSS may be read: count nothing
        return None


def release_memory() -> int:
    """Give this process's free memory back: a full garbage collection, then,
    on glibc, `malloc_trim(0)` so freed heap pages return to the system
    (CPython's small objects live in arenas it frees itself; larger blocks
    and freed arenas' neighbours sit in malloc's heap until trimmed).

    Returns how much this process's RSS fell, an estimate (0 if it did not
    fall or could not be read). Only this process is affected: each agent
    process must call it itself. Never raises.
    """
    before = _own_rss()
    try:
        gc.collect()
        trim = _malloc_trim()
        if trim is not None:
            trim(0)
    except Exception:  # a best effort: relieving memory must not fail the caller
        return 0
    after = _own_rss()
    if before is None or after is None:
        return 0
    return max(0, before - after)


def _own_rss() -> int | None:
    try:
        return psutil.Process().memory_info().rss
    except Exception:
        return None


_trim_function = False  # not looked up yet


def _malloc_trim():
    """glibc's malloc_trim, or None elsewhere (musl, macOS, Windows)."""
    global _trim_function
    if _trim_function is False:
        try:
            function = ctypes.CDLL(None).malloc_trim
            function.argtypes = [ctypes.c_size_t]
            function.restype = ctypes.c_int
            _trim_function = function
        except (OSError, AttributeError, TypeError):
            _trim_function = None
    return _trim_function
