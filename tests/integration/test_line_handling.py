"""Whatever bytes a child writes, the agent delivers them as SPEC §4 says,
and keeps running."""

from __future__ import annotations

import sys
import textwrap

HOSTILE_WRITER = textwrap.dedent(
    """
    import os, sys
    out = sys.stdout.buffer
    out.write(b"bad \\xff\\xfe bytes\\n")
    out.write(b"nul\\x00byte\\n")
    out.write(b"\\x1b[31mred\\x1b[0m\\n")
    out.write(b"x" * 20000 + b"\\n")
    out.write(b"my password is hunter2\\n")
    out.write(b"crlf line\\r\\n")
    out.flush()
    sys.stderr.buffer.write(os.urandom(1 << 20))
    sys.stderr.buffer.write(b"\\n")
    sys.stderr.flush()
    out.write(b"still alive\\n")
    out.write(b"the end without newline")
    """
)


def test_hostile_bytes_are_delivered_as_specified(agent, receiver, tmp_path):
    writer = tmp_path / "hostile.py"
    writer.write_text(HOSTILE_WRITER)
    finished = agent.run("start", "--task-id", "thostile", "--", sys.executable, str(writer))
    assert finished.returncode == 0, finished.stderr.decode(errors="replace")[-2000:]

    records = receiver.store.fetch("thostile")
    stdout = [r for r in records if r["source"] == "stdout"]
    messages = [r["message"] for r in stdout]
    assert messages == [
        "bad \ufffd\ufffd bytes",
        "nul\x00byte",
        "\x1b[31mred\x1b[0m",
        "x" * 8192,
        # line 5, the password, is not shipped: the gap in lineNumber shows it
        "crlf line",
        "still alive",
        "the end without newline",
    ]
    assert [r["lineNumber"] for r in stdout] == [1, 2, 3, 4, 6, 7, 8]
    truncated = stdout[3]["metadata"]
    assert truncated["truncated"] is True and truncated["originalLength"] == 20000
    for record in records:
        metadata = record["metadata"]
        assert metadata["processId"] > 0 and metadata["hostname"] and metadata["agentVersion"]
        assert len(record["message"]) <= 8192
    # the megabyte of noise arrived as lines of text, none lost to a crash
    noise = [r for r in records if r["source"] == "stderr"]
    assert noise and [r["lineNumber"] for r in noise] == sorted(r["lineNumber"] for r in noise)
    # the agent's own log accounts for the record it did not ship
    assert "not shipped, by reason: excluded 1" in finished.stderr.decode(errors="replace")


def test_a_partial_line_waiting_too_long_is_shipped_as_partial(agent, receiver, tmp_path):
    writer = tmp_path / "slow.py"
    writer.write_text("import sys, time\nsys.stdout.write('waiting for'); sys.stdout.flush()\n"
                      "time.sleep(1.5)\nprint(' the rest')\n")
    assert agent.run("start", "--task-id", "tpartial", "--", sys.executable, str(writer)).returncode == 0
    first, rest = receiver.store.fetch("tpartial")
    assert first["message"] == "waiting for" and first["metadata"]["partial"] is True
    assert rest["message"] == " the rest" and rest["metadata"]["continuation"] is True
