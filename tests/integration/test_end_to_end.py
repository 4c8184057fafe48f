"""The agent end to end: a real child, the real actors in one process, the
real receiver."""

from __future__ import annotations

import sys
import textwrap
import time

import psutil

LINES_PER_STREAM = 50_000

WRITER = textwrap.dedent(
    """
    import os, sys
    n = int(sys.argv[1])
    salt = os.urandom(4).hex()
    for i in range(1, n + 1):
        # distinct lines: pickle would otherwise share equal strings
        sys.stdout.write(f"out {i} {salt} lorem ipsum dolor sit amet\\n")
        sys.stderr.write(f"err {i} {salt} consectetur adipiscing elit\\n")
    sys.exit(7)
    """
)


def test_100k_lines_from_both_streams_arrive_exactly_once(agent, receiver, tmp_path):
    writer = tmp_path / "writer.py"
    writer.write_text(WRITER)
    agent.env["KERUTA_LOGSTREAMING__PERFORMANCE__RATELIMITPERSECOND"] = "0"

    finished = agent.run("start", "--task-id", "t100k", "--", sys.executable, str(writer), str(LINES_PER_STREAM), timeout=240)

    assert finished.returncode == 7, finished.stderr.decode()[-2000:]
    records = receiver.store.fetch("t100k")
    assert len(records) == 2 * LINES_PER_STREAM
    by_source = {"stdout": [], "stderr": []}
    for record in records:
        by_source[record["source"]].append(record)
    for source, prefix, text in (("stdout", "out", "lorem ipsum dolor sit amet"), ("stderr", "err", "consectetur adipiscing elit")):
        lines = by_source[source]
        assert [r["lineNumber"] for r in lines] == list(range(1, LINES_PER_STREAM + 1))
        for record in lines:
            number = record["lineNumber"]
            head, count, _salt, rest = record["message"].split(" ", 3)
            assert (head, int(count), rest) == (prefix, number, text)
            assert record["taskId"] == "t100k"
            assert record["timestamp"].endswith("Z")
            assert record["level"] in ("INFO", "WARN", "ERROR", "DEBUG")
            assert record["metadata"]["command"].endswith(f"writer.py {LINES_PER_STREAM}")
            assert record["metadata"]["processId"] > 0
    # the echo: the agent's own stdout and stderr carry the child's lines
    assert finished.stdout.count(b"\n") >= LINES_PER_STREAM
    assert b"out 50000 " in finished.stdout
    assert b"err 50000 " in finished.stderr
    # a clean run stops every process it started; none had to be reaped
    assert b"outlived the shutdown" not in finished.stderr


def test_exit_code_of_child_killed_by_signal(agent, receiver):
    finished = agent.run("start", "--task-id", "tsig", "--", "sh", "-c", "echo bye; kill -9 $$")
    assert finished.returncode == 128 + 9
    assert [r["message"] for r in receiver.store.fetch("tsig")] == ["bye"]


def test_the_agent_is_one_process_with_no_listener_off_loopback(agent, receiver, tmp_path):
    started = tmp_path / "started"
    agent_process = agent.popen(
        "start", "--task-id", "tlisten", "--", "sh", "-c", f"touch {started}; sleep 3; echo done"
    )
    try:
        deadline = time.monotonic() + 30
        while not started.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert started.exists(), "the child never started"
        agent_side = [p for p in agent.processes() if p.pid == agent_process.pid or p.ppid() != agent_process.pid]
        assert [p.pid for p in agent_side if p.name() != "sleep"] == [agent_process.pid]
        listeners = [c.laddr for c in psutil.Process(agent_process.pid).net_connections(kind="inet")
                     if c.status == psutil.CONN_LISTEN]
        assert all(address.ip in ("127.0.0.1", "::1") for address in listeners), listeners
    finally:
        assert agent_process.wait(timeout=60) == 0
    assert [r["message"] for r in receiver.store.fetch("tlisten")] == ["done"]


def test_near_the_memory_limit_the_agent_says_so_and_relieves_itself(agent, receiver, tmp_path):
    # Eight Python processes never fit in 16 MB: the first reading is over the limit.
    agent.env["KERUTA_LOGSTREAMING__PERFORMANCE__MEMORYLIMITMB"] = "16"
    finished = agent.run("start", "--task-id", "tmem", "--", "sh", "-c", "sleep 6; echo done")
    assert finished.returncode == 0
    stderr = finished.stderr.decode()
    assert "memory:" in stderr and "of 16 MiB" in stderr and "releasing memory and shrinking buffers" in stderr
    assert [r["message"] for r in receiver.store.fetch("tmem")] == ["done"]
