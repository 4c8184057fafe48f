"""Live subscribe on `/ws/tasks/{taskId}`: a subscriber gets a real agent's
records, filtered, within 100 ms of their being stored; one that never reads
neither slows ingest nor grows without bound."""

from __future__ import annotations

import json
import socket
import sqlite3
import sys
import threading
import time

import pytest
import websocket

from keruta_actors.receiver import ReceiverThread, subscribers

# 300 lines, 150 a second, on both streams; every 5th is an error.
CHILD = """
import sys, time
for i in range(1, 301):
    stream = sys.stderr if i % 2 else sys.stdout
    print(("ERROR" if i % 5 == 0 else "INFO") + f" line {i}", file=stream, flush=True)
    time.sleep(1 / 150)
"""


def subscribe(receiver, task_id: str, options: dict, **kwargs) -> websocket.WebSocket:
    ws = websocket.create_connection(f"{receiver.ws_url}/{task_id}", timeout=10, **kwargs)
    assert json.loads(ws.recv())["type"] == "hello"
    ws.send(json.dumps({"type": "subscribe", "taskId": task_id, "options": options}))
    reply = json.loads(ws.recv())
    assert reply["type"] == "subscribed" and reply["taskId"] == task_id
    return ws


def test_a_subscriber_sees_a_real_agents_lines_filtered_within_100_ms(receiver, agent):
    ws = subscribe(receiver, "tsub", {"sources": ["stdout"], "levels": ["ERROR"], "realtime": True})
    arrived: dict[str, float] = {}

    def read() -> None:
        try:
            while data := ws.recv():
                frame = json.loads(data)
                assert frame["type"] == "log", frame
                arrived[frame["id"]] = time.time()
        except (websocket.WebSocketConnectionClosedException, OSError):
            pass

    reader = threading.Thread(target=read)
    reader.start()
    finished = agent.run("start", "--task-id", "tsub", "--", sys.executable, "-c", CHILD)
    assert finished.returncode == 0, finished.stderr.decode()
    time.sleep(0.3)
    ws.close()
    reader.join()
    with sqlite3.connect(receiver.db_path) as db:
        stored = dict(
            db.execute(
                "SELECT id, received_at FROM logs WHERE task_id = 'tsub' AND source = 'stdout' AND level = 'ERROR'"
            )
        )
    assert len(stored) == 30 and set(arrived) == set(stored)
    delays = sorted(arrived[i] - stored[i] for i in stored)
    assert delays[-1] < 0.1, f"slowest {delays[-1] * 1000:.0f} ms, median {delays[len(delays) // 2] * 1000:.0f} ms"


@pytest.mark.parametrize(
    "frame, problem",
    [
        ({"options": {"sources": ["stdin"]}}, "'options.sources' must be a list of stdout, stderr, agent"),
        ({"options": {"levels": "ERROR"}}, "'options.levels' must be a list of DEBUG, INFO, WARN, ERROR"),
        ({"options": {"realtime": "yes"}}, "'options.realtime' must be true or false"),
        ({"options": []}, "'options' must be an object"),
        ({"taskId": "other"}, "'taskId' does not match the task in the URL"),
    ],
)
def test_bad_subscriptions_get_an_error_frame(tmp_path, frame, problem):
    with ReceiverThread(str(tmp_path / "logs.db")) as receiver:
        ws = websocket.create_connection(f"{receiver.ws_url}/t", timeout=5)
        ws.recv()  # hello
        ws.send(json.dumps({"type": "subscribe"} | frame))
        reply = json.loads(ws.recv())
        assert (reply["type"], reply["code"], reply["message"]) == ("error", "INVALID_LOG_FORMAT", problem)
        ws.send(json.dumps({"type": "ping"}))
        assert json.loads(ws.recv()) == {"type": "pong"}
        ws.close()


def test_unsubscribe_stops_the_records(tmp_path):
    with ReceiverThread(str(tmp_path / "logs.db")) as receiver:
        ws = subscribe(receiver, "t", {})
        ws.send(json.dumps({"type": "unsubscribe", "taskId": "t"}))
        assert json.loads(ws.recv()) == {"type": "unsubscribed", "taskId": "t"}
        sender = websocket.create_connection(f"{receiver.ws_url}/t", timeout=5)
        sender.recv()
        sender.send(json.dumps({"type": "logs", "batchId": 1, "taskId": "t", "logs": batch("t", 0, 5)}))
        assert json.loads(sender.recv())["type"] == "ack"
        ws.send(json.dumps({"type": "ping"}))
        assert json.loads(ws.recv()) == {"type": "pong"}  # and no record before it
        ws.close()
        sender.close()


def test_a_resent_record_reaches_a_subscriber_once(tmp_path):
    # An agent resends what the server had not confirmed (same ids) after a
    # reconnect; the store drops the repeats, and so must the live stream.
    with ReceiverThread(str(tmp_path / "logs.db")) as receiver:
        ws = subscribe(receiver, "t", {})
        sender = websocket.create_connection(f"{receiver.ws_url}/t", timeout=5)
        sender.recv()
        for batch_id, records in enumerate((batch("t", 0, 5), batch("t", 0, 5) + batch("t", 5, 1), batch("t", 3, 1))):
            sender.send(json.dumps({"type": "logs", "batchId": batch_id, "taskId": "t", "logs": records}))
            assert json.loads(sender.recv())["type"] == "ack"
        ws.send(json.dumps({"type": "ping"}))
        seen = []
        while (frame := json.loads(ws.recv()))["type"] != "pong":
            seen += [frame["id"]] if frame["type"] == "log" else [log["id"] for log in frame.get("logs", [])]
        assert seen == [f"t-{n}" for n in range(6)]
        ws.close()
        sender.close()


def batch(task_id: str, start: int, size: int) -> list[dict]:
    return [
        {
            "type": "log", "id": f"{task_id}-{n}", "taskId": task_id, "timestamp": "2026-01-01T00:00:00.000Z",
            "source": "stdout", "level": "INFO", "message": f"a line of text, number {n}, " + "x" * 80,
            "lineNumber": n, "metadata": {"processId": 1},
        }  # fmt: skip
        for n in range(start, start + size)
    ]


def ingest_seconds(receiver, task_id: str, total: int, size: int = 500) -> float:
    frames = [
        json.dumps({"type": "logs", "batchId": k, "taskId": task_id, "logs": batch(task_id, k * size, size)})
        for k in range(total // size)
    ]
    ws = websocket.create_connection(f"{receiver.ws_url}/{task_id}", timeout=30)
    ws.recv()
    started = time.perf_counter()
    for k, frame in enumerate(frames):
        ws.send(frame)
        assert json.loads(ws.recv()) == {"type": "ack", "batchId": k}
    elapsed = time.perf_counter() - started
    ws.close()
    return elapsed


def test_a_subscriber_that_never_reads_neither_slows_ingest_nor_grows(tmp_path, monkeypatch):
    monkeypatch.setattr(subscribers, "QUEUE_LIMIT", 2000)
    total = 40_000
    with ReceiverThread(str(tmp_path / "logs.db")) as receiver:
        ingest_seconds(receiver, "warmup", 5000)
        alone = ingest_seconds(receiver, "alone", total)
        stalled = subscribe(receiver, "watched", {}, sockopt=((socket.SOL_SOCKET, socket.SO_RCVBUF, 4096),))
        watched = ingest_seconds(receiver, "watched", total)
        assert watched < alone * 1.5 + 0.2, f"alone {alone:.2f} s, with a stalled subscriber {watched:.2f} s"
        got = skipped = 0
        stalled.settimeout(2)
        try:
            while got + skipped < total:
                frame = json.loads(stalled.recv())
                if frame["type"] == "log":
                    got += 1
                else:
                    assert (frame["type"], frame["code"]) == ("error", "RATE_LIMIT_EXCEEDED")
                    skipped += frame["skipped"]
        finally:
            stalled.close()
        # Every record is accounted for: sent (into the socket buffers, which
        # the kernel grows to megabytes on loopback, then the queue) or skipped.
        assert got + skipped == total and skipped > 0
