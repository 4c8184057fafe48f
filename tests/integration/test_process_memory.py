"""The memory adapter against real processes.

A small tree stands in for the agent: an "admin" with an "actor" child that
holds 50 MiB, and a "script" child (with a child of its own) that holds
40 MiB more. A separate process plays the CLI, as Thespian's admin detaches
from the real one.
"""

from __future__ import annotations

import json
import os
import platform
import signal
import subprocess
import sys
import time

import psutil
import pytest

from keruta_actors.adapters.process_memory import (
    _malloc_trim,
    agent_processes,
    measure,
    memory_of,
    release_memory,
)

MIB = 1024 * 1024

# Holds `mb` MiB (written, so resident), starts its children, prints its pid
# tree as one JSON line, waits until its stdin closes, then closes its
# children's stdin and reaps them: the tree winds down in order.
NODE = """
import json, os, subprocess, sys
spec = json.loads(sys.argv[1])
ballast = b"\\x01" * (spec["mb"] << 20)
processes, children = [], []
for child in spec.get("children", []):
    process = subprocess.Popen(
        [sys.executable, "-S", __file__, json.dumps(child)], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    processes.append(process)
    children.append(json.loads(process.stdout.readline()))
print(json.dumps({"pid": os.getpid(), "children": children}), flush=True)
sys.stdin.read()
for process in processes:
    process.stdin.close()
    process.wait()
"""

AGENT = {"mb": 0, "children": [{"mb": 50}, {"mb": 20, "children": [{"mb": 20}]}]}


def start(tmp_path, spec):
    program = tmp_path / "node.py"
    program.write_text(NODE)
    process = subprocess.Popen(
        [sys.executable, "-S", str(program), json.dumps(spec)], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    return process, json.loads(process.stdout.readline())


def stop(process):
    """Close the node's stdin and wait: each node reaps its own children."""
    try:
        tree = psutil.Process(process.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        tree = []
    process.stdin.close()
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        for member in [psutil.Process(process.pid), *tree]:
            try:
                member.kill()
            except psutil.NoSuchProcess:
                pass
        process.wait()


def kill_child_of_admin(pid):
    """Kill an admin's child; the admin does not reap it yet, so it stays a zombie."""
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
        assert time.monotonic() < deadline, f"{pid} did not die"
        time.sleep(0.005)


def running_tree(folder):
    """(cli pid, admin pid, actor pid, script pid, script's child pid)"""
    cli, _ = start(folder, {"mb": 0})
    admin, pids = start(folder, AGENT)
    actor, script = pids["children"]
    yield cli.pid, admin.pid, actor["pid"], script["pid"], script["children"][0]["pid"]
    stop(admin)
    stop(cli)


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    """A tree the tests only look at."""
    yield from running_tree(tmp_path_factory.mktemp("tree"))


@pytest.fixture
def doomed_tree(tmp_path):
    """A tree of the test's own, to kill parts of."""
    yield from running_tree(tmp_path)


def test_the_agent_is_the_cli_and_the_admin_tree_without_the_script(tree):
    cli, admin, actor, script, _ = tree
    assert {process.pid for process in agent_processes(cli, admin, [script])} == {cli, admin, actor}


def test_without_exclusions_the_whole_admin_tree_counts(tree):
    cli, admin, actor, script, grandchild = tree
    assert {process.pid for process in agent_processes(cli, admin, [])} == {cli, admin, actor, script, grandchild}


def test_measure_sums_the_agent_and_leaves_out_the_script(tree):
    cli, admin, actor, script, _ = tree
    agent = measure(cli, admin, [script], limit_bytes=512 * MIB)
    everything = measure(cli, admin, [], limit_bytes=512 * MIB)
    assert agent.processes == 3 and everything.processes == 5
    assert agent.limit_bytes == 512 * MIB
    assert 50 * MIB < agent.pss_bytes < 50 * MIB + 3 * 30 * MIB  # the ballast, plus three small interpreters
    assert everything.pss_bytes - agent.pss_bytes > 38 * MIB  # the script's 40 MiB, and then some


def test_a_process_that_exits_after_being_listed_is_skipped(doomed_tree):
    cli, admin, actor, script, _ = doomed_tree
    listed = agent_processes(cli, admin, [script])
    kill_child_of_admin(actor)
    total, measured = memory_of(listed)
    assert measured == 2
    assert total < 50 * MIB


def test_a_process_that_is_gone_entirely_is_skipped(doomed_tree):
    cli, admin, actor, script, _ = doomed_tree
    listed = agent_processes(cli, admin, [script])
    os.kill(cli, signal.SIGKILL)
    os.waitpid(cli, 0)  # our own child: reaped, so gone for good
    total, measured = memory_of(listed)
    assert measured == 2
    assert total > 50 * MIB


def test_zombies_are_not_listed(doomed_tree):
    cli, admin, actor, script, _ = doomed_tree
    kill_child_of_admin(actor)
    assert {process.pid for process in agent_processes(cli, admin, [script])} == {cli, admin}


def test_missing_admin_leaves_the_cli(tree):
    cli, *_ = tree
    dead = subprocess.Popen([sys.executable, "-S", "-c", "pass"])
    dead.wait()
    assert [process.pid for process in agent_processes(cli, dead.pid, [])] == [cli]


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


def test_measuring_is_quick(tree):
    cli, admin, _, script, _ = tree
    started = time.perf_counter()
    for _ in range(10):
        measure(cli, admin, [script], limit_bytes=512 * MIB)
    assert (time.perf_counter() - started) / 10 < 0.2


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
