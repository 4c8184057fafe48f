"""Metrics, health, alerts and debug endpoints of a RUNNING agent (SPEC §8),
against real peers: promtool, Prometheus, Alertmanager (tests/integration/
peers.py), and the reference receiver behind a proxy that can take it away.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.error import HTTPError, URLError
from urllib.request import Request, urlopen

import psutil
import pytest
import websockets.sync.server

from tests.integration.link_proxy import LinkProxy
from tests.integration.peers import alertmanager, alerts_of, free_port, poll, prometheus, tool, wait_or_kill

# Writes a line every 50 ms (every fifth also an ERROR line on stderr) until
# the file named by its argument exists.
CHILD = """
import os, sys, time
n = 0
while not os.path.exists(sys.argv[1]):
    n += 1
    print(f"line {n}", flush=True)
    if n % 5 == 0:
        print(f"ERROR something failed {n}", file=sys.stderr, flush=True)
    time.sleep(0.05)
"""
SEED_METRICS = ("keruta_logs_total", "keruta_log_latency_seconds", "keruta_buffer_size", "keruta_errors_total")


@dataclass
class Running:
    task_id: str
    port: int  # monitoring
    process: subprocess.Popen

    def get(self, path: str, port: int | None = None, method: str = "GET") -> tuple[int, bytes]:
        request = Request(f"http://127.0.0.1:{port or self.port}{path}", method=method)
        try:
            with urlopen(request, timeout=30) as answer:
                return answer.status, answer.read()
        except HTTPError as error:
            return error.code, error.read()

    def json(self, path: str) -> tuple[int, dict]:
        status, body = self.get(path)
        return status, json.loads(body)

    def sample(self, line_start: str) -> float | None:
        """The value of the first exposition line starting with `line_start`."""
        text = self.get("/metrics")[1].decode()
        values = [float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(line_start)]
        return values[0] if values else None


@contextmanager
def running_agent(agent, tmp_path, **env: str):
    """The agent running CHILD, with /metrics, /health and /livez on a free
    port; stopped (the child told to end, the run drained) at the end."""
    port = free_port()
    stop = tmp_path / "stop-the-child"
    task_id = f"mon-{port}"
    agent.env.update({
        "KERUTA_MONITORING__PROMETHEUS__ENABLED": "true",
        "KERUTA_MONITORING__PROMETHEUS__PORT": str(port),
        "KERUTA_MONITORING__HEALTH__INTERVAL": "0.5s",
        "KERUTA_LOG_FLUSH_INTERVAL": "100ms",
    } | env)
    with open(tmp_path / "agent.log", "wb") as log:
        process = agent.popen("start", "--task-id", task_id, "--", sys.executable, "-c", CHILD, str(stop),
                              stdout=subprocess.DEVNULL, stderr=log)
    run = Running(task_id, port, process)
    try:
        def serving():
            assert process.poll() is None, (tmp_path / "agent.log").read_text()
            try:
                return run.get("/metrics")[0] == 200
            except URLError:
                return False
        poll(serving, timeout=20)
        yield run
    finally:
        stop.touch()
        wait_or_kill(process, 60)


def test_promtool_accepts_a_running_agent_s_exposition(agent, tmp_path):
    with running_agent(agent, tmp_path) as run:
        poll(lambda: (run.sample('keruta_log_latency_seconds_count{source="stdout"}') or 0) > 0)
        exposition = run.get("/metrics")[1]
    checked = subprocess.run([tool("promtool"), "check", "metrics"], input=exposition, capture_output=True, timeout=30)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    names = {line.split()[2] for line in exposition.decode().splitlines() if line.startswith("# TYPE")}
    assert set(SEED_METRICS) <= names
    assert {"keruta_logs_not_shipped_total", "keruta_sent_batches_total", "keruta_sent_bytes_total",
            "keruta_reconnects_total", "keruta_websocket_status", "keruta_transport_active", "keruta_spool_bytes",
            "keruta_spool_records", "keruta_memory_pss_bytes", "keruta_alerts_firing", "keruta_build_info"} <= names


def test_a_real_prometheus_scrapes_a_running_agent(agent, tmp_path):
    tool("prometheus")
    with running_agent(agent, tmp_path) as run, prometheus(tmp_path, run.port) as query:
        def one(promql):
            found = query(promql)
            return found[0] if found and float(found[0]["value"][1]) > 0 else None

        stdout = poll(lambda: one(f'keruta_logs_total{{task_id="{run.task_id}",source="stdout",level="INFO"}}'))
        assert {key: stdout["metric"][key] for key in ("source", "level", "task_id", "job")} == {
            "source": "stdout", "level": "INFO", "task_id": run.task_id, "job": "keruta"}
        assert poll(lambda: one('keruta_logs_total{source="stderr",level="ERROR"}'))
        p99 = poll(lambda: one('histogram_quantile(0.99, sum by (le) (keruta_log_latency_seconds_bucket{source="stdout"}))'))
        assert 0 < float(p99["value"][1]) <= 5.0  # on loopback: well under a flush interval or two
        [capacity] = query('keruta_buffer_size{type="capacity"}')
        assert capacity["value"][1] == "1000"
        assert {r["metric"]["type"] for r in query("keruta_errors_total")} >= {"websocket", "api", "invalid_log_format"}
        assert poll(lambda: one('keruta_websocket_status{status="connected"}'))
        assert poll(lambda: one('keruta_sent_batches_total{transport="websocket"}'))
        assert poll(lambda: one("keruta_memory_pss_bytes"), timeout=30)  # read every 5 s
        assert one('keruta_alerts_firing{rule="websocket_disconnected",severity="critical"}') is None  # 0: not firing


def test_a_server_that_goes_away_turns_health_503_fires_an_alert_and_both_recover(agent, receiver, tmp_path):
    tool("prometheus-alertmanager")
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps({"alerts": [{"name": "websocket_disconnected", "duration": "2s", "severity": "critical",
                                             "condition": "websocket_status != 'connected'"}]}))
    with LinkProxy(receiver.port) as proxy, alertmanager(tmp_path) as alertmanager_url:
        with running_agent(
            agent, tmp_path,
            KERUTA_WEBSOCKET_URL=f"ws://127.0.0.1:{proxy.port}/ws/tasks",
            KERUTA_API_URL=f"http://127.0.0.1:{proxy.port}/api/v1",
            KERUTA_WEBSOCKET_RECONNECT_INTERVAL="200ms",
            KERUTA_WEBSOCKET_MAX_RECONNECT_ATTEMPTS="1000",
            KERUTA_CONFIG=str(rules),
            KERUTA_ALERTING__WEBHOOKURL=alertmanager_url,
            KERUTA_ALERTING__EVALUATIONINTERVAL="500ms",
        ) as run:
            poll(lambda: run.json("/health")[0] == 200)
            assert run.json("/health")[1]["checks"]["websocket"]["message"] == "connected"

            proxy.refusing = True  # the server goes away
            proxy.drop()
            status, body = poll(lambda: (health := run.json("/health"))[0] == 503 and health)
            assert body["status"] == "unhealthy" and not body["checks"]["websocket"]["healthy"]
            assert run.json("/livez")[0] == 200 and run.json("/livez")[1]["status"] == "alive"
            [alert] = poll(lambda: alerts_of(alertmanager_url, run.task_id), timeout=20)
            assert alert["labels"]["alertname"] == "websocket_disconnected"
            assert alert["status"]["state"] == "active"
            assert run.sample('keruta_alerts_firing{rule="websocket_disconnected",severity="critical"}') == 1
            assert run.get("/livez")[0] == 200  # falling back is not dying
            # what is read waits in the spool while nothing can take it
            poll(lambda: run.sample("keruta_spool_records") >= 40 and run.sample("keruta_spool_bytes") > 0)
            backlog = run.sample("keruta_spool_records")

            proxy.refusing = False  # it comes back
            poll(lambda: run.json("/health")[0] == 200, timeout=20)
            poll(lambda: not alerts_of(alertmanager_url, run.task_id), timeout=20)
            assert run.sample('keruta_alerts_firing{rule="websocket_disconnected",severity="critical"}') == 0
            assert run.sample('keruta_reconnects_total{transport="websocket"}') >= 1
            # The backlog drains. Not to 0: the child goes on writing, and what
            # it wrote in the last second or so is not confirmed yet.
            poll(lambda: run.sample("keruta_spool_records") < backlog / 2, timeout=20)
    # The alert and its resolution reached the task's stream as agent records.
    agent_records = [r for r in receiver.store.fetch(run.task_id) if r["source"] == "agent"]
    assert [(r["level"], r["metadata"]["state"]) for r in agent_records] == [("ERROR", "firing"), ("ERROR", "resolved")]
    assert agent_records[0]["message"].startswith("alert websocket_disconnected firing")


def listening_addresses(pid: int) -> dict[int, str]:
    """port -> address the agent process listens on."""
    connections = psutil.Process(pid).net_connections(kind="tcp")
    return {c.laddr.port: c.laddr.ip for c in connections if c.status == psutil.CONN_LISTEN}


def test_debug_endpoints_answer_on_loopback_only_when_enabled(agent, tmp_path):
    debug_port = free_port()
    trace = tmp_path / "trace.json"
    with running_agent(agent, tmp_path, KERUTA_MONITORING__BINDADDRESS="0.0.0.0",
                       KERUTA_DEBUG__ENABLED="true", KERUTA_DEBUG__PPROF__PORT=str(debug_port),
                       KERUTA_DEBUG__TRACE__ENABLED="true", KERUTA_DEBUG__TRACE__OUTPUT=str(trace)) as run:
        listening = listening_addresses(run.process.pid)
        assert listening[debug_port] == "127.0.0.1" and listening[run.port] == "0.0.0.0"
        status, body = run.get("/debug/gc", debug_port, method="POST")
        assert status == 200 and {"collected", "objectsBefore", "rssFreedBytes"} <= json.loads(body).keys()
        assert run.get("/debug/gc", debug_port)[0] == 405  # GET is not how one asks for a collection
        status, heap = run.get("/debug/pprof/heap", debug_port)
        assert status == 200 and b"KiB now" in heap and b".py:" in heap
        status, profile = run.get("/debug/pprof/profile?seconds=1", debug_port)
        assert status == 200 and b"run_once" in profile  # the loop thread's stacks
        status, events = run.get("/debug/pprof/trace?seconds=1", debug_port)
        names = {event["name"] for event in json.loads(events)["traceEvents"]}
        assert status == 200 and {"Chunk", "Batches", "BatchesAcked"} <= names
    written = json.loads(trace.read_text())  # closed at exit: a complete JSON array
    chunk = next(event for event in written if event["name"] == "Chunk")
    assert chunk["ph"] == "X" and chunk["args"]["receiver"].startswith(("Filter", "RateLimiter", "Batcher"))
    assert chunk["args"]["size"] > 0 and chunk["dur"] >= 0
    assert any(event["ph"] == "M" and event["args"]["name"].startswith("SourceReader") for event in written)


def test_no_debug_endpoints_without_debug_enabled(agent, tmp_path):
    debug_port = free_port()
    with running_agent(agent, tmp_path, KERUTA_DEBUG__PPROF__PORT=str(debug_port)) as run:
        assert debug_port not in listening_addresses(run.process.pid)
        assert run.get("/debug/pprof/heap")[0] == 404
        with pytest.raises(URLError):
            run.get("/debug/gc", debug_port, method="POST")
        assert set(listening_addresses(run.process.pid).values()) == {"127.0.0.1"}  # loopback by default


class ScriptedWebSocket:
    """A log WebSocket that announces `batch` and `ack`, and answers each
    batch with the frames `script(batch_id)` gives (default: an ack)."""

    def __init__(self, script) -> None:
        self.script = script
        self.connections = 0
        self.batches: list[tuple[float, int]] = []  # (arrival, batch id)
        self.errors_sent: list[tuple[float, str]] = []  # (when, code)
        self._server = websockets.sync.server.serve(self._handle, "127.0.0.1", 0)
        self.port = self._server.socket.getsockname()[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()

    def _handle(self, connection) -> None:
        self.connections += 1
        connection.send(json.dumps({"type": "hello", "capabilities": ["batch", "ack"]}))
        try:
            for text in connection:
                frame = json.loads(text)
                if frame.get("type") != "logs":
                    continue
                self.batches.append((time.monotonic(), frame["batchId"]))
                for reply in self.script(frame["batchId"]) or [{"type": "ack", "batchId": frame["batchId"]}]:
                    if reply["type"] == "error":
                        self.errors_sent.append((time.monotonic(), reply["code"]))
                    connection.send(json.dumps(reply))
        except websockets.exceptions.ConnectionClosed:
            pass


def error(code: str, **extra) -> dict:
    return {"type": "error", "code": code, "message": f"scripted {code}", **extra}


def test_the_server_s_error_frames_reject_a_batch_and_slow_the_sender_down(agent, tmp_path):
    def script(batch_id):
        if batch_id == 1:
            return [error("INVALID_LOG_FORMAT", batchId=1)]
        if batch_id == 3:
            return [error("RATE_LIMIT_EXCEEDED", retryAfter=1), {"type": "ack", "batchId": 3}]
        return None

    server = ScriptedWebSocket(script)
    try:
        with running_agent(agent, tmp_path, KERUTA_WEBSOCKET_URL=f"ws://127.0.0.1:{server.port}/ws/tasks") as run:
            poll(lambda: len(server.batches) >= 8)
            assert run.sample('keruta_errors_total{type="invalid_log_format"}') == 1
            assert run.sample('keruta_errors_total{type="rate_limit_exceeded"}') == 1
            assert run.sample('keruta_logs_not_shipped_total{reason="rejected_by_server"}') >= 1
    finally:
        server.close()
    [(limited_at, _)] = [sent for sent in server.errors_sent if sent[1] == "RATE_LIMIT_EXCEEDED"]
    # Batches already on their way may still arrive; then nothing until the second is up.
    quiet = [at - limited_at for at, _ in server.batches if limited_at + 0.2 < at < limited_at + 0.9]
    assert not quiet, f"batches {quiet} s after the server asked to wait 1 s"
    assert server.connections == 1


def test_an_unauthorized_frame_is_fatal_for_the_websocket(agent, tmp_path, closed_port):
    server = ScriptedWebSocket(lambda batch_id: [error("UNAUTHORIZED")])
    try:
        with running_agent(agent, tmp_path, KERUTA_WEBSOCKET_URL=f"ws://127.0.0.1:{server.port}/ws/tasks",
                           KERUTA_API_URL=f"http://127.0.0.1:{closed_port}/api/v1",
                           KERUTA_WEBSOCKET_RECONNECT_INTERVAL="100ms",
                           KERUTA_LOGSTREAMING__DRAINTIMEOUT="1s") as run:
            poll(lambda: run.sample('keruta_errors_total{type="unauthorized"}') == 1)
            assert poll(lambda: run.sample('keruta_websocket_status{status="retired"}') == 1)
            time.sleep(1.0)  # ten reconnect intervals: none is tried
            assert server.connections == 1
    finally:
        server.close()
    assert "refused our credentials" in (tmp_path / "agent.log").read_text()
