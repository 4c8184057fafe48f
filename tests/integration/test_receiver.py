"""The reference receiver on 127.0.0.1: its WebSocket ingest, driven by a real
WebSocket client, and its REST ingest, driven by `requests`."""

from __future__ import annotations

import contextlib
import json
import re
import signal
import socket
import sqlite3
import struct
import subprocess
import sys
import time
import urllib.request
import uuid

import pytest
import requests
import websocket
from aiohttp import web

from keruta_actors.receiver import (
    ReceiverError,
    ReceiverThread,
    run_receiver,
    ws_ingest,
)

TOKEN = "s3cret-token"
HELLO = {"type": "hello", "capabilities": ["batch", "ack"]}
RFC3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
# One field made invalid: both ways in refuse each (REST tests a foreign
# taskId on its own, since its URL names the task).
INVALID_FIELDS = [
    {"message": None},
    {"level": "TRACE"},
    {"source": "stdin"},
    {"lineNumber": "3"},
    {"lineNumber": True},
    {"lineNumber": -1},
    {"lineNumber": 2**64},
    {"metadata": []},
    {"id": 17},
    {"timestamp": None},
]


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


def stored_form(record: dict) -> dict:
    """A LogMessage as the store gives it back: without its "type"."""
    return {key: value for key, value in record.items() if key != "type"}


def post(receiver: ReceiverThread, task_id: str, body, batch: bool = False, **kwargs) -> requests.Response:
    url = f"{receiver.api_url}/tasks/{task_id}/logs" + ("/batch" if batch else "")
    if isinstance(body, (str, bytes)):
        return requests.post(url, data=body, timeout=5, **kwargs)
    return requests.post(url, json=body, timeout=5, **kwargs)


def assert_rest_refused(response: requests.Response, status: int, code: str) -> str:
    """The refusal's message, once its status and code are as expected."""
    assert (response.status_code, response.json()["code"]) == (status, code), response.text
    return response.json()["message"]


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
    assert stored == [stored_form(r) for r in sent]


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


@pytest.mark.parametrize("change", INVALID_FIELDS + [{"taskId": "someone-else"}])
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
        health = json.load(response)
    assert (health["status"], health["checks"]["database"]["healthy"]) == ("healthy", True)
    assert RFC3339.fullmatch(health["timestamp"]) and health["checks"]["database"]["latency"] >= 0


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
            port = line.removeprefix("receiver listening on ws://127.0.0.1:").partition("/")[0]
            assert port.isdigit(), line
            assert line == (
                f"receiver listening on ws://127.0.0.1:{port}/ws/tasks/{{taskId}}"
                f" and http://127.0.0.1:{port}/api/v1 (db: {db})\n"
            )
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


# --- REST ingest: storing ------------------------------------------------------------------


def test_one_record_is_stored(open_receiver, task_id):
    record = log(task_id, 1, message="naïve ✓ text")
    response = post(open_receiver, task_id, record)
    assert (response.status_code, response.json()) == (201, {"stored": 1, "duplicates": 0})
    assert open_receiver.store.fetch(task_id) == [stored_form(record)]


def test_a_batch_is_stored(open_receiver, task_id):
    records = [log(task_id, n, level=("DEBUG", "INFO", "WARN", "ERROR")[n % 4]) for n in range(1, 251)]
    response = post(open_receiver, task_id, records, batch=True)
    assert (response.status_code, response.json()) == (201, {"stored": 250, "duplicates": 0})
    assert open_receiver.store.fetch(task_id) == [stored_form(r) for r in records]


def test_an_empty_batch_stores_nothing(open_receiver, task_id):
    response = post(open_receiver, task_id, [], batch=True)
    assert (response.status_code, response.json()) == (201, {"stored": 0, "duplicates": 0})


def test_what_a_log_request_leaves_out_is_filled_in(open_receiver, task_id):
    bare = {"source": "stderr", "level": "WARN", "message": "m", "lineNumber": 0}
    before = time.time()
    assert post(open_receiver, task_id, bare).status_code == 201
    assert post(open_receiver, task_id, [bare, bare], batch=True).json() == {"stored": 2, "duplicates": 0}
    stored = open_receiver.store.fetch(task_id)
    assert len(stored) == 3
    assert len({r["id"] for r in stored}) == 3  # minted ids never collide
    for record in stored:
        assert re.fullmatch(r"[0-9a-f]{32}", record["id"])
        assert RFC3339.fullmatch(record["timestamp"])
        assert record["timestamp"] >= time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(int(before)))
        assert (record["taskId"], record["metadata"]) == (task_id, {})


def test_rest_duplicates_are_dropped_by_id(open_receiver, task_id):
    first = post(open_receiver, task_id, [log(task_id, 1), log(task_id, 2), log(task_id, 2)], batch=True)
    assert first.json() == {"stored": 2, "duplicates": 1}
    again = post(open_receiver, task_id, log(task_id, 1, message="a retry says the same"))
    assert (again.status_code, again.json()) == (201, {"stored": 0, "duplicates": 1})
    assert [r["message"] for r in open_receiver.store.fetch(task_id)] == ["line 1", "line 2"]


def test_a_record_is_stored_once_whether_it_came_by_rest_or_websocket(open_receiver, task_id):
    assert post(open_receiver, task_id, log(task_id, 1)).json()["stored"] == 1
    ws = websocket.create_connection(f"{open_receiver.ws_url}/{task_id}", timeout=5)
    try:
        assert json.loads(ws.recv())["type"] == "hello"
        for line in (1, 2):  # 1 again, as after a switch back to the WebSocket
            ws.send(json.dumps(log(task_id, line)))
        ws.ping(b"sync")  # its pong vouches for the frames before it
        while ws.recv_data_frame(control_frame=True)[0] != websocket.ABNF.OPCODE_PONG:
            pass
    finally:
        ws.close()
    assert open_receiver.store.count(task_id) == 2
    assert post(open_receiver, task_id, [log(task_id, 2)], batch=True).json() == {"stored": 0, "duplicates": 1}


# --- REST ingest: refusals -------------------------------------------------------------------


@pytest.mark.parametrize("change", INVALID_FIELDS)
def test_invalid_rest_records_are_refused_alone_or_in_a_batch(open_receiver, task_id, change):
    [(field, _)] = change.items()
    alone = assert_rest_refused(post(open_receiver, task_id, log(task_id, 1) | change), 400, "INVALID_LOG_FORMAT")
    assert repr(field) in alone
    batch = [log(task_id, 2), log(task_id, 3), log(task_id, 4) | change]
    in_batch = assert_rest_refused(post(open_receiver, task_id, batch, batch=True), 400, "INVALID_LOG_FORMAT")
    assert in_batch.startswith("body[2]: ") and repr(field) in in_batch
    assert open_receiver.store.count(task_id) == 0  # not even the good records of the batch


def test_a_task_id_other_than_the_urls_is_refused(open_receiver, task_id):
    other = log(task_id, 1, taskId="someone-else")
    message = assert_rest_refused(post(open_receiver, task_id, other), 400, "INVALID_LOG_FORMAT")
    assert "'taskId'" in message
    assert_rest_refused(post(open_receiver, task_id, [other], batch=True), 400, "INVALID_LOG_FORMAT")
    assert open_receiver.store.count(task_id) == open_receiver.store.count("someone-else") == 0


@pytest.mark.parametrize(
    "body, batch, problem",
    [
        ("not json", False, "body is not valid JSON"),
        ("[" * 100_000, True, "body is not valid JSON"),
        (b'[{"message": "\xff"}]', True, "body is not UTF-8 text"),
        ('[{"message": "\\udc80"}]', True, "body holds a lone UTF-16 surrogate"),
        ("[]", False, "a log record must be a JSON object"),
        ("{}", True, "body must be a JSON array"),
        ("[1]", True, "body[0]: a log record must be a JSON object"),
    ],
)
def test_bodies_that_are_not_log_requests_are_refused(open_receiver, task_id, body, batch, problem):
    message = assert_rest_refused(post(open_receiver, task_id, body, batch=batch), 400, "INVALID_LOG_FORMAT")
    assert message == problem


def test_bodies_over_16_mib_are_refused(open_receiver, task_id):
    response = post(open_receiver, task_id, b" " * (16 * 1024 * 1024 + 1), batch=True)
    assert_rest_refused(response, 413, "INVALID_LOG_FORMAT")


@pytest.mark.parametrize(
    "path",
    ["/api/v1/tasks/{t}/log", "/api/v1/tasks/{t}/logs/bulk", "/api/v1/tasks//logs", "/api/v2/tasks/{t}/logs"],
)
def test_unknown_paths_are_not_found(open_receiver, task_id, path):
    url = f"http://127.0.0.1:{open_receiver.port}{path.format(t=task_id)}"
    assert requests.post(url, json=log(task_id, 1), timeout=5).status_code == 404
    assert open_receiver.store.count(task_id) == 0


def test_a_failed_store_is_a_database_error(tmp_path, task_id):
    with ReceiverThread(str(tmp_path / "logs.db")) as receiver:
        with contextlib.closing(sqlite3.connect(receiver.db_path)) as db:
            db.execute("DROP TABLE logs")
        assert_rest_refused(post(receiver, task_id, [log(task_id, 1)], batch=True), 500, "DATABASE_ERROR")
        health = requests.get(f"http://127.0.0.1:{receiver.port}/health", timeout=5)
        assert (health.status_code, health.json()["status"]) == (503, "unhealthy")


# --- REST ingest: authentication -------------------------------------------------------------


@pytest.mark.parametrize(
    "headers, why",
    [
        ({}, "authentication required"),
        ({"Authorization": "Bearer wrong"}, "authentication failed"),
        ({"X-API-Key": "wrong"}, "authentication failed"),
        ({"Authorization": f"Basic {TOKEN}"}, "authentication required"),
        ({"Authorization": "Bearer wrong", "X-API-Key": "wrong too"}, "authentication failed"),
    ],
)
def test_requests_without_the_token_are_unauthorized(guarded, task_id, headers, why):
    for batch in (False, True):
        response = post(guarded, task_id, [log(task_id, 1)] if batch else log(task_id, 1), batch, headers=headers)
        # The API specification has no error code for this: a Spring-shaped 401.
        assert (response.status_code, response.json()["error"], response.json()["message"]) == (401, "Unauthorized", why)
        assert response.headers["WWW-Authenticate"] == "Bearer"
    assert guarded.store.count(task_id) == 0


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": f"Bearer {TOKEN}"},
        {"Authorization": f"bearer  {TOKEN} "},
        {"X-API-Key": TOKEN},
        {"Authorization": "Bearer wrong", "X-API-Key": TOKEN},
    ],
)
def test_requests_with_the_token_are_stored(guarded, task_id, headers):
    assert post(guarded, task_id, log(task_id, 1), headers=headers).status_code == 201
    assert post(guarded, task_id, [log(task_id, 2)], batch=True, headers=headers).status_code == 201
    assert guarded.store.count(task_id) == 2


def test_without_a_token_any_client_is_served(open_receiver, task_id):
    response = post(open_receiver, task_id, log(task_id, 1), headers={"Authorization": "Bearer anything"})
    assert response.status_code == 201


# --- middlewares ------------------------------------------------------------------


def test_middlewares_can_change_answers_and_watch_requests(tmp_path, task_id):
    seen = []

    @web.middleware
    async def no_batches(request, handler):
        if request.path.endswith("/batch"):
            raise web.HTTPNotFound()  # as an older server without the batch endpoint
        return await handler(request)

    @web.middleware
    async def no_websocket(request, handler):
        if request.path.startswith("/ws/"):
            raise web.HTTPServiceUnavailable()
        return await handler(request)

    @web.middleware
    async def timed(request, handler):
        seen.append((request.path, time.monotonic()))
        return await handler(request)

    db = str(tmp_path / "logs.db")
    with ReceiverThread(db, middlewares=[timed, no_batches, no_websocket]) as receiver:
        assert post(receiver, task_id, [log(task_id, 1)], batch=True).status_code == 404
        assert post(receiver, task_id, log(task_id, 2)).status_code == 201
        with pytest.raises(websocket.WebSocketBadStatusException) as refused:
            websocket.create_connection(f"{receiver.ws_url}/{task_id}", timeout=5)
        assert refused.value.status_code == 503
        assert [r["lineNumber"] for r in receiver.store.fetch(task_id)] == [2]
    paths = [path for path, _ in seen]
    api = f"/api/v1/tasks/{task_id}/logs"
    assert paths == [api + "/batch", api, f"/ws/tasks/{task_id}"]
    assert [t for _, t in seen] == sorted(t for _, t in seen)
