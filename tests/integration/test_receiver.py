"""The reference receiver on 127.0.0.1, driven by a real WebSocket client."""

from __future__ import annotations

import contextlib
import json
import signal
import socket
import sqlite3
import struct
import subprocess
import sys
import urllib.request
import uuid

import pytest
import websocket

from keruta_actors.receiver import (
    ReceiverError,
    ReceiverThread,
    run_receiver,
    ws_ingest,
)

TOKEN = "s3cret-token"
HELLO = {"type": "hello", "capabilities": ["batch", "ack"]}


def log(task_id: str, line: int, **fields) -> dict:
    record = {
        "type": "log",
        "id": f"{task_id}-stdout-{line}",
        "taskId": task_id,
        "timestamp": "2026-11-29T01:02:03.456Z",
        "source": "stdout",
        "level": "INFO",
        "message": f"line {line}",
        "lineNumber": line,
        "metadata": {"processId": 7, "command": "job.sh"},
    }
    return record | fields


def batch(task_id: str, batch_id, lines) -> str:
    logs = [log(task_id, n) for n in lines]
    return json.dumps({"type": "logs", "batchId": batch_id, "taskId": task_id, "logs": logs})


def recv_json(ws: websocket.WebSocket) -> dict:
    return json.loads(ws.recv())


def next_control(ws: websocket.WebSocket, opcode: int) -> bytes:
    while True:
        got, frame = ws.recv_data_frame(control_frame=True)
        if got == opcode:
            return frame.data


def close_code(ws: websocket.WebSocket) -> int:
    """The code of the close frame that must come next."""
    opcode, frame = ws.recv_data_frame(control_frame=True)
    assert opcode == websocket.ABNF.OPCODE_CLOSE, f"expected a close frame, got {frame.data!r}"
    return struct.unpack("!H", frame.data[:2])[0]


def confirm(ws: websocket.WebSocket) -> None:
    """A WebSocket ping whose pong vouches for every frame sent before it."""
    ws.ping(b"sync")
    assert next_control(ws, websocket.ABNF.OPCODE_PONG) == b"sync"


@pytest.fixture(scope="module")
def open_receiver(tmp_path_factory):
    with ReceiverThread(str(tmp_path_factory.mktemp("open") / "logs.db")) as receiver:
        yield receiver


@pytest.fixture(scope="module")
def guarded(tmp_path_factory):
    with ReceiverThread(str(tmp_path_factory.mktemp("guarded") / "logs.db"), token=TOKEN) as receiver:
        yield receiver


@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    db = str(tmp_path_factory.mktemp("plain") / "logs.db")
    with ReceiverThread(db, capabilities=None) as receiver:
        yield receiver


@pytest.fixture
def connect():
    """Opens WebSockets to a receiver, and shuts them all when the test ends."""
    opened = []

    def connect(receiver: ReceiverThread, task_id: str, header=()) -> websocket.WebSocket:
        ws = websocket.create_connection(f"{receiver.ws_url}/{task_id}", timeout=5, header=list(header))
        opened.append(ws)
        return ws

    yield connect
    for ws in opened:
        ws.shutdown()


@pytest.fixture
def task_id():
    return "task-" + uuid.uuid4().hex[:12]

# --- authentication and hello ---------------------------------------------------


def test_without_a_token_hello_comes_at_once_and_auth_frames_are_ignored(open_receiver, task_id, connect):
    ws = connect(open_receiver, task_id)
    assert recv_json(ws) == HELLO
    ws.send(json.dumps({"type": "auth", "token": "anything"}))
    ws.send(json.dumps({"type": "ping"}))
    assert recv_json(ws) == {"type": "pong"}


def test_hello_waits_for_the_auth_frame(guarded, task_id, connect):
    ws = connect(guarded, task_id)
    ws.settimeout(0.2)
    with pytest.raises(websocket.WebSocketTimeoutException):
        ws.recv()
    ws.settimeout(5)
    ws.send(json.dumps({"type": "auth", "token": TOKEN}))
    assert recv_json(ws) == HELLO


def test_auth_frame_and_records_sent_before_reading_hello(guarded, task_id, connect):
    ws = connect(guarded, task_id)
    ws.send(json.dumps({"type": "auth", "token": TOKEN}))
    ws.send(json.dumps(log(task_id, 1)))
    assert recv_json(ws) == HELLO
    confirm(ws)
    assert guarded.store.count(task_id) == 1


@pytest.mark.parametrize("header", [f"Authorization: Bearer {TOKEN}", f"X-API-Key: {TOKEN}"])
def test_credentials_in_the_handshake_get_hello_at_once(guarded, task_id, header, connect):
    ws = connect(guarded, task_id, [header])
    assert recv_json(ws) == HELLO
    ws.send(json.dumps({"type": "auth", "token": TOKEN}))  # the agent sends both
    ws.send(json.dumps({"type": "ping"}))
    assert recv_json(ws) == {"type": "pong"}  # no second hello


def assert_refused(ws: websocket.WebSocket) -> None:
    reply = recv_json(ws)
    assert reply["type"] == "error" and reply["code"] == "WEBSOCKET_CONNECTION_FAILED"
    assert reply["message"].startswith("authentication")
    assert close_code(ws) == 4401


@pytest.mark.parametrize("header", ["Authorization: Bearer wrong", "X-API-Key: wrong"])
def test_wrong_handshake_credentials_are_refused_at_once(guarded, task_id, header, connect):
    assert_refused(connect(guarded, task_id, [header]))


@pytest.mark.parametrize(
    "header, auth",
    [
        ([], {"type": "auth", "token": "wrong"}),
        ([], {"type": "auth"}),
        ([], None),
        ([f"X-API-Key: {TOKEN}"], {"type": "auth", "token": "wrong"}),
    ],
)
def test_records_after_a_wrong_or_missing_auth_frame_are_refused(guarded, task_id, header, auth, connect):
    ws = connect(guarded, task_id, header)
    if header:
        assert recv_json(ws) == HELLO
    frames = ([json.dumps(auth)] if auth else []) + [batch(task_id, 1, [1, 2]), json.dumps(log(task_id, 3))]
    with contextlib.suppress(OSError, websocket.WebSocketConnectionClosedException):
        for frame in frames:  # the server may hang up before the last
            ws.send(frame)
    assert_refused(ws)
    assert guarded.store.count(task_id) == 0


def test_a_client_that_never_authenticates_is_closed(guarded, task_id, monkeypatch, connect):
    monkeypatch.setattr(ws_ingest, "AUTH_TIMEOUT", 0.1)
    ws = connect(guarded, task_id)
    assert recv_json(ws)["code"] == "WEBSOCKET_CONNECTION_FAILED"
    assert close_code(ws) == 4401


# --- records ---------------------------------------------------------------------


def test_batches_are_acked_once_stored(open_receiver, task_id, connect):
    ws = connect(open_receiver, task_id)
    recv_json(ws)
    ws.send(batch(task_id, 1, range(1, 11)))
    ws.send(batch(task_id, "b-2", range(11, 111)))
    ws.send(batch(task_id, 3, []))
    assert [recv_json(ws) for _ in range(3)] == [
        {"type": "ack", "batchId": 1},
        {"type": "ack", "batchId": "b-2"},
        {"type": "ack", "batchId": 3},
    ]
    assert open_receiver.store.count(task_id) == 110


def test_single_log_frames_are_stored_before_a_later_ping_is_answered(open_receiver, task_id, connect):
    ws = connect(open_receiver, task_id)
    recv_json(ws)
    sent = [log(task_id, n, level=("DEBUG", "INFO", "WARN", "ERROR")[n % 4]) for n in range(1, 701)]
    # One write, so the server reads the ping together with the records before it.
    frames = [websocket.ABNF.create_frame(json.dumps(r), websocket.ABNF.OPCODE_TEXT) for r in sent]
    frames.append(websocket.ABNF.create_frame(b"sync", websocket.ABNF.OPCODE_PING))
    ws.sock.sendall(b"".join(frame.format() for frame in frames))
    assert next_control(ws, websocket.ABNF.OPCODE_PONG) == b"sync"
    stored = open_receiver.store.fetch(task_id)
    assert stored == [{k: v for k, v in r.items() if k != "type"} for r in sent]


def test_duplicates_are_dropped_by_id(open_receiver, task_id, connect):
    ws = connect(open_receiver, task_id)
    recv_json(ws)
    for batch_id in (1, 2):
        ws.send(batch(task_id, batch_id, [1, 2, 3]))
        assert recv_json(ws) == {"type": "ack", "batchId": batch_id}
    ws.send(json.dumps(log(task_id, 2)))
    ws.send(json.dumps(log(task_id, 4)))
    confirm(ws)
    assert open_receiver.store.count(task_id) == 4


@pytest.mark.parametrize(
    "frame",
    [
        "not json",
        "[1, 2]",
        '{"type": "nope"}',
        '{"type": ["log"]}',
        '{"no": "type"}',
        "[" * 100_000,
        '{"type": "log", "message": "\\udc80"}',
    ],
)
def test_bad_frames_are_answered_and_the_connection_stays_open(open_receiver, task_id, frame, connect):
    ws = connect(open_receiver, task_id)
    recv_json(ws)
    ws.send(frame)
    assert recv_json(ws)["code"] == "INVALID_LOG_FORMAT"
    ws.send(batch(task_id, 1, [1]))
    assert recv_json(ws) == {"type": "ack", "batchId": 1}


@pytest.mark.parametrize(
    "change",
    [
        {"message": None},
        {"level": "TRACE"},
        {"source": "stdin"},
        {"lineNumber": "3"},
        {"lineNumber": True},
        {"lineNumber": 2**64},
        {"metadata": []},
        {"id": 17},
        {"taskId": "someone-else"},
    ],
)
def test_invalid_records_are_refused_alone_or_in_a_batch(open_receiver, task_id, change, connect):
    ws = connect(open_receiver, task_id)
    recv_json(ws)
    ws.send(json.dumps(log(task_id, 1) | change))
    assert recv_json(ws)["code"] == "INVALID_LOG_FORMAT"
    logs = [log(task_id, 2), log(task_id, 3) | change]
    ws.send(json.dumps({"type": "logs", "batchId": 9, "taskId": task_id, "logs": logs}))
    reply = recv_json(ws)
    assert (reply["code"], reply["batchId"]) == ("INVALID_LOG_FORMAT", 9)
    assert reply["message"].startswith("logs[1]")
    confirm(ws)
    assert open_receiver.store.count(task_id) == 0


@pytest.mark.parametrize(
    "frame",
    [
        {"type": "logs", "taskId": "T", "logs": []},  # no batchId
        {"type": "logs", "batchId": True, "taskId": "T", "logs": []},
        {"type": "logs", "batchId": 1, "taskId": "T", "logs": {}},
        {"type": "logs", "batchId": 1, "taskId": "someone-else", "logs": []},
    ],
)
def test_malformed_batches_are_refused(open_receiver, task_id, frame, connect):
    ws = connect(open_receiver, task_id)
    recv_json(ws)
    ws.send(json.dumps(frame).replace('"T"', json.dumps(task_id)))
    assert recv_json(ws)["code"] == "INVALID_LOG_FORMAT"


def test_binary_frames_are_refused(open_receiver, task_id, connect):
    ws = connect(open_receiver, task_id)
    recv_json(ws)
    ws.send_binary(json.dumps(log(task_id, 1)).encode())
    assert recv_json(ws)["code"] == "INVALID_LOG_FORMAT"


def test_frames_over_16_mib_close_the_connection(open_receiver, task_id, connect):
    ws = connect(open_receiver, task_id)
    recv_json(ws)
    # Only the header: the server must refuse by the announced length.
    fin_text, masked_64bit_length = 0x81, 0x80 | 127
    ws.sock.sendall(struct.pack("!BBQ", fin_text, masked_64bit_length, 16 * 1024 * 1024 + 1) + bytes(4))
    assert close_code(ws) == 1009  # message too big


# --- pings, no-hello mode, health, failures ---------------------------------------


def test_websocket_and_app_pings_are_answered(open_receiver, task_id, connect):
    ws = connect(open_receiver, task_id)
    recv_json(ws)
    ws.ping(b"payload")
    assert next_control(ws, websocket.ABNF.OPCODE_PONG) == b"payload"
    ws.send(json.dumps({"type": "ping"}))
    assert recv_json(ws) == {"type": "pong"}


def test_without_capabilities_there_is_no_hello_and_no_batches(plain, task_id, connect):
    ws = connect(plain, task_id)
    ws.send(json.dumps(log(task_id, 1)))
    ws.send(batch(task_id, 1, [2, 3]))
    reply = recv_json(ws)  # the first frame the server sends
    assert (reply["code"], reply["message"]) == ("INVALID_LOG_FORMAT", "unknown frame type 'logs'")
    confirm(ws)
    assert plain.store.count(task_id) == 1


def test_health(open_receiver):
    with urllib.request.urlopen(f"http://127.0.0.1:{open_receiver.port}/health", timeout=5) as response:
        assert json.load(response) == {"status": "UP"}


@pytest.mark.parametrize("then_ping", [False, True], ids=["stored-when-idle", "stored-before-a-reply"])
def test_a_failed_store_is_reported_and_ends_the_connection(tmp_path, task_id, connect, then_ping):
    with ReceiverThread(str(tmp_path / "logs.db")) as receiver:
        ws = connect(receiver, task_id)
        recv_json(ws)
        ws.send(batch(task_id, 1, [1]))
        assert recv_json(ws) == {"type": "ack", "batchId": 1}
        with contextlib.closing(sqlite3.connect(receiver.db_path)) as db:
            db.execute("DROP TABLE logs")
        frames = [batch(task_id, 2, [2])] + ([json.dumps({"type": "ping"})] if then_ping else [])
        ws.sock.sendall(b"".join(websocket.ABNF.create_frame(f, websocket.ABNF.OPCODE_TEXT).format() for f in frames))
        assert recv_json(ws)["code"] == "DATABASE_ERROR"  # and neither an ack nor a pong
        assert close_code(ws) == 1011


def test_stopping_closes_open_connections(tmp_path, task_id, connect):
    with ReceiverThread(str(tmp_path / "logs.db")) as receiver:
        ws = connect(receiver, task_id)
        recv_json(ws)
    assert close_code(ws) == 1001


# --- running it ------------------------------------------------------------------


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_run_receiver_announces_itself_and_stops_on_a_signal(tmp_path, signum):
    db = str(tmp_path / "logs.db")
    code = f"from keruta_actors.receiver import run_receiver; run_receiver(port=0, db_path={db!r})"
    with subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True) as child:
        try:
            line = child.stdout.readline()
            assert line.startswith("receiver listening on ws://127.0.0.1:")
            assert line.endswith(f"/ws/tasks/{{taskId}} (db: {db})\n")
            child.send_signal(signum)
            assert child.wait(timeout=5) == 0
        finally:
            child.kill()


def test_run_receiver_reports_a_busy_port(tmp_path):
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        with pytest.raises(ReceiverError, match=f"cannot listen on 127.0.0.1:{port}"):
            run_receiver(port=port, db_path=str(tmp_path / "logs.db"))


def test_run_receiver_reports_a_database_it_cannot_open(tmp_path):
    db = str(tmp_path / "missing-dir" / "logs.db")
    with pytest.raises(ReceiverError, match="cannot open database"):
        run_receiver(port=0, db_path=db)
