"""Sources besides the child: the agent's stdin and tailed files."""

from __future__ import annotations

import subprocess


def test_stdin_alone_is_streamed_until_it_ends(agent, receiver):
    finished = agent.run("start", "--task-id", "tstdin", "--source", "stdin", input=b"first\nsecond\nlast without newline")
    assert finished.returncode == 0, finished.stderr.decode()[-2000:]
    records = receiver.store.fetch("tstdin")
    assert [r["message"] for r in records] == ["first", "second", "last without newline"]
    assert [r["lineNumber"] for r in records] == [1, 2, 3]
    assert all(r["source"] == "stdout" and r["metadata"]["stream"] == "stdin" for r in records)


def test_stdin_beside_a_command_keeps_its_own_numbering_and_ids(agent, receiver):
    finished = agent.run("start", "--task-id", "tboth", "--source", "stdin", "--", "sh", "-c", "echo from child; sleep 0.5",
                         input=b"from stdin\n")
    assert finished.returncode == 0, finished.stderr.decode()[-2000:]
    records = receiver.store.fetch("tboth")
    by_stream = {r["metadata"].get("stream", "child"): r for r in records}
    assert by_stream["stdin"]["message"] == "from stdin" and by_stream["stdin"]["lineNumber"] == 1
    assert by_stream["child"]["message"] == "from child" and by_stream["child"]["lineNumber"] == 1
    assert by_stream["stdin"]["id"] != by_stream["child"]["id"]


def test_too_many_streams_is_a_clear_error(agent, tmp_path):
    agent.env["KERUTA_LOGSTREAMING__PERFORMANCE__MAXCONCURRENTSTREAMS"] = "2"
    finished = agent.run("start", "--task-id", "t", "--source", "stdin", "--", "true", stdin=subprocess.DEVNULL)
    assert finished.returncode == 2
    assert finished.stderr.decode().strip() == (
        "keruta-actors: error: 3 streams to read (the command's stdout and stderr count as two, each --source as one) "
        "exceed logStreaming.performance.maxConcurrentStreams (2)"
    )


def test_a_malformed_source_is_a_clear_error(agent):
    finished = agent.run("start", "--task-id", "t", "--source", "socket:9000")
    assert finished.returncode == 2
    assert finished.stderr.decode().strip() == "keruta-actors: error: --source 'socket:9000': expected file:PATH or stdin"
