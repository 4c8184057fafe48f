"""Measuring the agent's memory, and giving some back (SPEC §7, §8).

The agent is several processes: the CLI that started it, Thespian's admin,
Thespian's logger, and one process per actor. The user's script is a child
of the source-reader actor and is not part of the agent, nor is anything it
starts. Thespian's admin detaches from the CLI, so the CLI's descendants are
not the agent; what holds after start-up is

    agent = {cli} ∪ {admin and its descendants} − {each script and its descendants}

where the admin is the supervisor actor's parent (`os.getppid()` there):
the logger and the supervisor are the admin's children, every other actor
is the supervisor's child.

Processes come and go while being measured (a restarted connection actor,
a script that exits); one that vanishes, turns zombie or refuses access is
skipped or measured more coarsely, never an error.
"""

from __future__ import annotations

import ctypes
import gc
from collections import defaultdict
from typing import Iterable

import psutil

from keruta_actors.policy.memory import MemoryReading

_GONE = (psutil.NoSuchProcess, psutil.ZombieProcess)


def agent_processes(cli_pid: int, admin_pid: int, exclude_pids: Iterable[int]) -> list[psutil.Process]:
    """The live processes of the agent: the CLI (if still alive), the admin
    and its descendants, without the subtree below any of `exclude_pids`.

    One pass over the process table gives every parent link, and the admin's
    tree is walked from it, stopping at an excluded pid; so a process the
    script starts between two readings is never counted, and an excluded pid
    that has exited costs nothing. Zombies are left out: they hold no memory.
    """
    excluded = set(exclude_pids)
    children: dict[int, list[psutil.Process]] = defaultdict(list)
    by_pid: dict[int, psutil.Process] = {}
    for process in psutil.process_iter(["ppid", "status"]):
        if process.info["status"] == psutil.STATUS_ZOMBIE:
            continue
        by_pid[process.pid] = process
        if process.info["ppid"] is not None and process.pid != process.info["ppid"]:
            children[process.info["ppid"]].append(process)
    found: dict[int, psutil.Process] = {}
    if cli_pid in by_pid:
        found[cli_pid] = by_pid[cli_pid]
    pending = [by_pid[admin_pid]] if admin_pid in by_pid and admin_pid not in excluded else []
    while pending:
        process = pending.pop()
        found.setdefault(process.pid, process)
        pending.extend(child for child in children.get(process.pid, ()) if child.pid not in excluded)
    return list(found.values())


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


def measure(cli_pid: int, admin_pid: int, exclude_pids: Iterable[int], limit_bytes: int) -> MemoryReading:
    """The whole agent's memory now, against `limit_bytes`."""
    pss, processes = memory_of(agent_processes(cli_pid, admin_pid, exclude_pids))
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
