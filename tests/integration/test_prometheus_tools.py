"""The metrics, the rules in deploy/ and the Alertmanager adapter, against
Debian's real prometheus, promtool and prometheus-alertmanager, on loopback.

tools/system_packages.sh installs them. Without them these tests skip, except
in CI (CI=true), where a missing tool is a failure.
"""

import subprocess
import time
from pathlib import Path

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
from tests.integration.peers import alertmanager, alerts_of, poll, prometheus, tool

RULES = Path(__file__).parents[2] / "deploy" / "prometheus"


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
    tool("prometheus")
    exporter, thread = start_http_server(0, addr="127.0.0.1", registry=filled_registry())
    try:
        with prometheus(tmp_path, exporter.server_port) as query:
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
    tool("prometheus-alertmanager")
    rule = Rule.parse("websocket_disconnected", "websocket_status != 'connected'", 30.0, "critical")
    evaluator = AlertEvaluator([rule])
    with alertmanager(tmp_path) as url:
        client = AlertmanagerClient(url, timeout=5)

        def post(decision):
            assert client.post([alert_payload(decision, "task-7", time.time())]) is None

        began = time.time() - 31
        evaluator.observe({"websocket_status": "disconnected"}, began)
        [fired] = evaluator.observe({"websocket_status": "disconnected"}, time.time())
        assert isinstance(fired, AlertFired)
        post(fired)
        [active] = poll(lambda: alerts_of(url, "task-7"), timeout=10)
        assert active["status"]["state"] == "active"
        assert active["labels"] == {"alertname": "websocket_disconnected", "severity": "critical",
                                    "task_id": "task-7"}

        [resolved] = evaluator.observe({"websocket_status": "connected"}, time.time())
        assert isinstance(resolved, AlertResolved)
        post(resolved)
        poll(lambda: not alerts_of(url, "task-7"), timeout=10)  # a resolved alert is no longer listed
        client.close()
