"""Sources besides the child: the agent's stdin and tailed files."""

from __future__ import annotations

import subprocess
import sys
import textwrap


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


def test_a_rotated_file_is_tailed_with_no_line_lost_or_repeated(agent, receiver, tmp_path):
    log = tmp_path / "app.log"
    log.write_text("")
    agent.env["KERUTA_LOGSTREAMING__STATEDIR"] = str(tmp_path / "state")
    # The child writes 3,000 lines, rotating the file twice as logrotate does:
    # once by rename (with a few late writes to the old file), once by copytruncate.
    writer = tmp_path / "rotating_writer.py"
    writer.write_text(textwrap.dedent(f"""
        import os, shutil, time
        path = {str(log)!r}
        out = open(path, "a", buffering=1)
        for i in range(1, 3001):
            out.write(f"file line {{i}}\\n")
            if i % 100 == 0:
                time.sleep(0.02)
            if i == 1000:
                os.rename(path, path + ".1")    # rename rotation ...
            if i == 1010:
                out.close()
                out = open(path, "a", buffering=1)  # ... the writer reopens ten lines later
            if i == 2000:
                time.sleep(0.3)                 # copytruncate: copy, then truncate in place
                shutil.copyfile(path, path + ".2")
                out.truncate(0)
                out.seek(0)
        out.close()
        time.sleep(0.5)
    """))
    finished = agent.run("start", "--task-id", "ttail", "--source", f"file:{log}", "--", sys.executable, str(writer))
    assert finished.returncode == 0, finished.stderr.decode()[-2000:]
    records = [r for r in receiver.store.fetch("ttail") if r["metadata"].get("stream") == f"file:{log}"]
    assert [r["message"] for r in records] == [f"file line {i}" for i in range(1, 3001)]
    assert [r["lineNumber"] for r in records] == list(range(1, 3001))
    assert len({r["id"] for r in records}) == 3000


def test_a_restarted_agent_resumes_a_file_where_delivery_stopped(agent, receiver, tmp_path):
    log = tmp_path / "resume.log"
    log.write_text("".join(f"first run {i}\n" for i in range(1, 51)))
    agent.env["KERUTA_LOGSTREAMING__STATEDIR"] = str(tmp_path / "state")
    source = f"file:{log}"
    assert agent.run("start", "--task-id", "tresume", "--source", source, "--", "sleep", "2").returncode == 0
    with log.open("a") as out:
        out.write("".join(f"second run {i}\n" for i in range(1, 21)))
    second = agent.run("start", "--task-id", "tresume", "--source", source, "--", "sleep", "2")
    assert second.returncode == 0
    # Stable ids would hide a full re-read in the receiver: the run's own
    # account shows that only the new lines were sent.
    assert "run finished: 20 records delivered" in second.stderr.decode()
    records = [r for r in receiver.store.fetch("tresume") if r["metadata"].get("stream") == source]
    expected = [f"first run {i}" for i in range(1, 51)] + [f"second run {i}" for i in range(1, 21)]
    assert [r["message"] for r in records] == expected
    assert [r["lineNumber"] for r in records] == list(range(1, 71))
