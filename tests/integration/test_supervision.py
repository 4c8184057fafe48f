"""The supervisor restarts what fails, and the ledger makes sure nothing is lost."""

from __future__ import annotations

import os
import signal
import sys
import textwrap
import time

import psutil

SLOW_WRITER = textwrap.dedent(
    """
    import sys, time
    for i in range(1, 20001):
        print(f"steady line {i}", flush=(i % 100 == 0))
        if i % 100 == 0:
            time.sleep(0.01)
    """
)


def connection_actor(agent, port: int) -> psutil.Process | None:
    """The agent process holding the WebSocket to the receiver."""
    for process in agent.processes():
        try:
            connections = process.net_connections(kind="tcp")
        except psutil.NoSuchProcess:
            continue
        if any(c.raddr and c.raddr.port == port and c.status == psutil.CONN_ESTABLISHED for c in connections):
            return process
    return None


def test_a_killed_connection_actor_is_restarted_and_nothing_is_lost(agent, receiver, tmp_path):
    writer = tmp_path / "steady.py"
    writer.write_text(SLOW_WRITER)
    agent.env["KERUTA_LOGSTREAMING__PERFORMANCE__RATELIMITPERSECOND"] = "0"
    agent.env["KERUTA_WEBSOCKET_RECONNECT_INTERVAL"] = "200ms"
    process = agent.popen("start", "--task-id", "tkill", "--", sys.executable, str(writer),
                          stdout=open(os.devnull, "wb"), stderr=open(tmp_path / "agent.err", "wb"))
    deadline = time.monotonic() + 30
    while receiver.store.count("tkill") < 2000 and time.monotonic() < deadline:
        time.sleep(0.05)
    victim = connection_actor(agent, receiver.port)
    assert victim is not None, "no connection actor found"
    stored_at_kill = receiver.store.count("tkill")
    victim.send_signal(signal.SIGKILL)

    assert process.wait(timeout=120) == 0, (tmp_path / "agent.err").read_text()[-2000:]
    assert stored_at_kill < 20000, "the kill came too late to test anything"
    numbers = [r["lineNumber"] for r in receiver.store.fetch("tkill")]
    assert numbers == list(range(1, 20001))
    replacement = "the websocket connection actor exited unexpectedly"
    assert replacement in (tmp_path / "agent.err").read_text()
