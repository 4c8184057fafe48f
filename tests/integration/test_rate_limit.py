"""Rate limits shape the stream end to end: they delay records, never drop them."""

from __future__ import annotations

import sys
import time


def test_rate_limit_delays_without_losing(agent, receiver, tmp_path):
    writer = tmp_path / "burst.py"
    # The whole burst is written at once, far faster than the limit, and the
    # child exits while most of it still waits in the agent and its pipes.
    writer.write_text("import sys\nfor i in range(1, 10001):\n    print(f'burst line {i}')\n")
    agent.env["KERUTA_LOGSTREAMING__PERFORMANCE__RATELIMITPERSECOND"] = "2000"

    started = time.monotonic()
    finished = agent.run("start", "--task-id", "trate", "--", sys.executable, str(writer))
    elapsed = time.monotonic() - started

    assert finished.returncode == 0, finished.stderr.decode()[-2000:]
    # 10,000 lines at 2,000/s, of which the full bucket's first second (2,000)
    # may pass at once: the other 8,000 need at least 4 s
    assert elapsed >= 4.0
    records = receiver.store.fetch("trate")
    assert [r["lineNumber"] for r in records] == list(range(1, 10001))
    assert [r["message"] for r in records] == [f"burst line {i}" for i in range(1, 10001)]
