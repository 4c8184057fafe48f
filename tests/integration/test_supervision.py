"""The supervisor restarts what fails, and the ledger makes sure nothing is lost."""

from __future__ import annotations

import os
import sys
import textwrap
import time

from tests.integration.link_proxy import LinkProxy

SLOW_WRITER = textwrap.dedent(
    """
    import sys, time
    for i in range(1, 20001):
        print(f"steady line {i}", flush=(i % 100 == 0))
        if i % 100 == 0:
            time.sleep(0.01)
    """
)


def test_a_dropped_link_is_restarted_and_nothing_is_lost(agent, receiver, tmp_path):
    writer = tmp_path / "steady.py"
    writer.write_text(SLOW_WRITER)
    agent.env["KERUTA_LOGSTREAMING__PERFORMANCE__RATELIMITPERSECOND"] = "0"
    agent.env["KERUTA_WEBSOCKET_RECONNECT_INTERVAL"] = "200ms"
    with LinkProxy(receiver.port) as proxy:
        agent.env["KERUTA_WEBSOCKET_URL"] = f"ws://127.0.0.1:{proxy.port}/ws/tasks"
        process = agent.popen("start", "--task-id", "tdrop", "--", sys.executable, str(writer),
                              stdout=open(os.devnull, "wb"), stderr=open(tmp_path / "agent.err", "wb"))
        deadline = time.monotonic() + 30
        while receiver.store.count("tdrop") < 2000 and time.monotonic() < deadline:
            time.sleep(0.05)
        stored_at_drop = receiver.store.count("tdrop")
        assert proxy.drop() == 1, "the agent's connection was not found"
        assert process.wait(timeout=120) == 0, (tmp_path / "agent.err").read_text()[-2000:]
    assert stored_at_drop < 20000, "the drop came too late to test anything"
    numbers = [r["lineNumber"] for r in receiver.store.fetch("tdrop")]
    assert numbers == list(range(1, 20001))
    assert "retrying in" in (tmp_path / "agent.err").read_text()
