"""The memory adapter against real processes: the agent is this one process;
a child (the user's script) holding memory of its own is not part of it."""

from __future__ import annotations

import platform
import subprocess
import sys
import time

import psutil
import pytest

from keruta_actors.adapters.process_memory import (
    _malloc_trim,
    measure,
    memory_of,
    release_memory,
)

MIB = 1024 * 1024

# Holds 40 MiB, written so resident, until its stdin closes.
SCRIPT = "import sys; ballast = b'\\x01' * (40 << 20); print('ready', flush=True); sys.stdin.read()"


def test_measure_counts_this_process_and_not_its_children():
    before = measure(limit_bytes=512 * MIB)
    script = subprocess.Popen([sys.executable, "-S", "-c", SCRIPT], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert script.stdout.readline() == b"ready\n"
        ballast = bytearray(b"\x01") * (30 * MIB)
        during = measure(limit_bytes=512 * MIB)
        del ballast
    finally:
        script.stdin.close()
        script.wait()
    assert during.processes == 1 and during.limit_bytes == 512 * MIB
    grown = during.pss_bytes - before.pss_bytes
    assert 24 * MIB < grown < 38 * MIB  # our 30 MiB (give or take freed pages), not the script's 40 too


def test_a_process_that_exits_after_being_listed_is_skipped():
    gone = subprocess.Popen([sys.executable, "-S", "-c", "pass"])
    listed = [psutil.Process(gone.pid), psutil.Process()]
    gone.wait()
    total, measured = memory_of(listed)
    assert measured == 1 and total > 0


class Guarded:
    """A process whose smaps may not be read (as for another user's process)."""

    def __init__(self, rss):
        self.rss = rss

    def memory_full_info(self):
        raise psutil.AccessDenied(pid=1)

    def memory_info(self):
        return type("pmem", (), {"rss": self.rss})()


class Unreadable(Guarded):
    def memory_info(self):
        raise psutil.AccessDenied(pid=1)


def test_rss_stands_in_where_pss_is_denied_and_nothing_where_all_is():
    assert memory_of([Guarded(7 * MIB), Unreadable(1), Guarded(3 * MIB)]) == (10 * MIB, 2)


def test_measuring_is_quick():
    started = time.perf_counter()
    for _ in range(10):
        measure(limit_bytes=512 * MIB)
    assert (time.perf_counter() - started) / 10 < 0.05


def test_release_memory_returns_a_count_and_never_raises():
    garbage = [[index] * 100 for index in range(10_000)]
    cycle = [garbage]
    cycle.append(cycle)
    del garbage, cycle
    freed = release_memory()
    assert isinstance(freed, int) and freed >= 0


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc_trim is glibc's")
def test_malloc_trim_is_found_on_glibc():
    assert _malloc_trim() is not None
