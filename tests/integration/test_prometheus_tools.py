"""The metrics, the rules in deploy/ and the Alertmanager adapter, against
Debian's real prometheus, promtool and prometheus-alertmanager, on loopback.

tools/system_packages.sh installs them. Without them these tests skip, except
in CI (CI=true), where a missing tool is a failure.
"""

import json
import os
import shutil
import socket
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote
from urllib.request import urlopen

import pytest
from prometheus_client import CollectorRegistry, generate_latest, start_http_server

from keruta_actors.adapters.alertmanager import AlertmanagerClient, alert_payload
from keruta_actors.policy.alerts import AlertEvaluator, AlertFired, AlertResolved, Rule
from keruta_actors.records import SOURCES, RecordBlock
from keruta_actors.telemetry import (
    GROUPS,
    build_metrics,
    count_error,
    count_not_shipped,
    count_read,
    count_sent,
    observe_delivered,
    set_alert,
    set_websocket_status,
)

RULES = Path(__file__).parents[2] / "deploy" / "prometheus"


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None and os.environ.get("CI") == "true":
        pytest.fail(f"{name} is not installed; tools/system_packages.sh installs it")
    if path is None:
        pytest.skip(f"{name} is not installed; tools/system_packages.sh installs it")
    return path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def get_json(url: str) -> dict:
    with urlopen(url, timeout=5) as response:
        return json.load(response)


def poll(find, timeout: float = 20.0):
    """find()'s first truthy answer, asked every 0.2 s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = find()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"nothing found within {timeout}s")


@contextmanager
def server(command: list[str], port: int, log: Path):
    """A server started on loopback, ready when it answers /-/ready; stopped at the end."""
    with log.open("wb") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
    try:
        def ready():
            assert process.poll() is None, log.read_text()
            try:
                with urlopen(f"http://127.0.0.1:{port}/-/ready", timeout=1) as answer:
                    return answer.status == 200
            except OSError:
                return False
        poll(ready)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def filled_registry() -> CollectorRegistry:
    """Every metric, with a little of everything counted."""
    registry = CollectorRegistry()
    metrics = build_metrics(registry, "task-7", GROUPS)
    shared = tuple({} for _ in SOURCES)
    chunk = RecordBlock.of_lines("run", "stdout", 1, 1000.0, ["INFO"] * 8 + ["ERROR"] * 2,
                                 [("line", None)] * 10, shared)
    count_read(metrics, chunk)
    observe_delivered(metrics, chunk, confirmed_at=1000.3)  # every latency 0.3 s: bucket (0.25, 0.5]
    count_not_shipped(metrics, {"excluded": 3})
    count_sent(metrics, "websocket", batches=1, size=2048)
    count_error(metrics, "api")
    set_websocket_status(metrics, "connected")
    set_alert(metrics, "high_latency", "warning", firing=False)
    metrics.memory.set(64 * 1024 * 1024)
    metrics.buffer.labels("used").set(10)
    return registry


def test_promtool_accepts_the_exposition():
    checked = subprocess.run([tool("promtool"), "check", "metrics"], input=generate_latest(filled_registry()),
                             capture_output=True, timeout=30)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_deploy_rules_pass_their_promtool_tests():
    tested = subprocess.run([tool("promtool"), "test", "rules", "keruta-alerts.test.yml"], cwd=RULES,
                            capture_output=True, timeout=60)
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_a_real_prometheus_scrapes_the_metrics_with_their_labels(tmp_path):
    prometheus = tool("prometheus")
    exporter, thread = start_http_server(0, addr="127.0.0.1", registry=filled_registry())
    config = tmp_path / "prometheus.yml"
    config.write_text(json.dumps({  # JSON is YAML
        "global": {"scrape_interval": "1s"},
        "scrape_configs": [{"job_name": "keruta",
                            "static_configs": [{"targets": [f"127.0.0.1:{exporter.server_port}"]}]}],
    }))
    port = free_port()
    command = [prometheus, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'data'}",
               f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"]
    try:
        with server(command, port, tmp_path / "prometheus.log") as url:
            def query(promql):
                answer = get_json(f"{url}/api/v1/query?query={quote(promql)}")
                return answer["data"]["result"]

            [errors] = poll(lambda: query('keruta_logs_total{level="ERROR",source="stdout"}'))
            labels = errors["metric"]
            assert (labels["source"], labels["level"], labels["task_id"], labels["job"]) == (
                "stdout", "ERROR", "task-7", "keruta")
            assert errors["value"][1] == "2"
            [p50] = query('histogram_quantile(0.5, sum by (le) (keruta_log_latency_seconds_bucket{source="stdout"}))')
            assert float(p50["value"][1]) == pytest.approx(0.25 + 0.25 * 0.5)
            assert query('keruta_buffer_size{type="used"}')[0]["value"][1] == "10"
            assert query('keruta_errors_total{type="api"}')[0]["value"][1] == "1"
    finally:
        exporter.shutdown()
        thread.join(5)


def test_a_real_alertmanager_sees_an_alert_fire_and_resolve(tmp_path):
    alertmanager = tool("prometheus-alertmanager")
    config = tmp_path / "alertmanager.yml"
    config.write_text(json.dumps({"route": {"receiver": "nobody"}, "receivers": [{"name": "nobody"}]}))
    port = free_port()
    command = [alertmanager, f"--config.file={config}", f"--storage.path={tmp_path / 'data'}",
               f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address=", "--log.level=warn"]
    rule = Rule.parse("websocket_disconnected", "websocket_status != 'connected'", 30.0, "critical")
    evaluator = AlertEvaluator([rule])
    with server(command, port, tmp_path / "alertmanager.log") as url:
        client = AlertmanagerClient(url, timeout=5)

        def post(decision):
            assert client.post([alert_payload(decision, "task-7", time.time())]) is None

        def ours():
            return [a for a in get_json(f"{url}/api/v2/alerts") if a["labels"].get("task_id") == "task-7"]

        began = time.time() - 31
        evaluator.observe({"websocket_status": "disconnected"}, began)
        [fired] = evaluator.observe({"websocket_status": "disconnected"}, time.time())
        assert isinstance(fired, AlertFired)
        post(fired)
        [active] = poll(ours, timeout=10)
        assert active["status"]["state"] == "active"
        assert active["labels"] == {"alertname": "websocket_disconnected", "severity": "critical",
                                    "task_id": "task-7"}

        [resolved] = evaluator.observe({"websocket_status": "connected"}, time.time())
        assert isinstance(resolved, AlertResolved)
        post(resolved)
        poll(lambda: not ours(), timeout=10)  # a resolved alert is no longer listed
        client.close()
