import time

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from keruta_actors import config, telemetry
from keruta_actors.policy.signals import Latency
from keruta_actors.records import RecordBlock, SOURCES
from keruta_actors.telemetry import (
    GROUPS,
    build_metrics,
    count_error,
    count_not_shipped,
    count_read,
    count_reconnect,
    count_sent,
    observe_delivered,
    set_alert,
    set_transport,
    set_websocket_status,
)

SHARED = tuple({} for _ in SOURCES)


def block(source, levels, read_at=1000.0):
    return RecordBlock.of_lines("run", source, 1, read_at, levels, [("line", None)] * len(levels), SHARED)


@pytest.fixture
def registry():
    return CollectorRegistry()


@pytest.fixture
def metrics(registry):
    return build_metrics(registry, "task-1", GROUPS)


def test_groups_are_the_configuration_s_metric_names():
    assert tuple(GROUPS) == config.METRIC_NAMES


def test_records_read_are_counted_by_source_and_level(registry, metrics):
    count_read(metrics, block("stdout", ["INFO", "INFO", "ERROR"]))
    count_read(metrics, RecordBlock.concat([block("stderr", ["WARN"]), block("stdout", ["INFO"])]))
    value = lambda source, level: registry.get_sample_value(
        "keruta_logs_total", {"source": source, "level": level, "task_id": "task-1"})
    assert (value("stdout", "INFO"), value("stdout", "ERROR"), value("stderr", "WARN")) == (3, 1, 1)
    assert value("agent", "DEBUG") == 0  # present from the start, so rate() sees a 0


def test_delivery_latency_is_a_histogram_per_source(registry, metrics):
    counts = observe_delivered(metrics, block("stdout", ["INFO"] * 3, read_at=100.0), confirmed_at=100.3)
    observe_delivered(metrics, block("stderr", ["INFO"], read_at=100.0), confirmed_at=102.0)
    sample = lambda name, **labels: registry.get_sample_value(f"keruta_log_latency_seconds_{name}", labels)
    assert sample("bucket", source="stdout", le="0.25") == 0
    assert sample("bucket", source="stdout", le="0.5") == 3
    assert sample("bucket", source="stdout", le="+Inf") == 3
    assert sample("count", source="stdout") == 3
    assert sample("sum", source="stdout") == pytest.approx(0.9)
    assert sample("bucket", source="stderr", le="1.0") == 0 and sample("bucket", source="stderr", le="2.5") == 1
    window = Latency()
    window.add(counts, 0.0)
    assert window.value(0.0) == pytest.approx(0.25 + 0.25 * 0.99)


def test_unknown_label_values_are_counted_as_other(registry, metrics):
    count_not_shipped(metrics, {"excluded": 2, "something new": 1})
    count_error(metrics, "websocket")
    count_error(metrics, "a message with a path /tmp/x in it")
    assert registry.get_sample_value("keruta_logs_not_shipped_total", {"reason": "excluded"}) == 2
    assert registry.get_sample_value("keruta_logs_not_shipped_total", {"reason": "other"}) == 1
    assert registry.get_sample_value("keruta_errors_total", {"type": "other"}) == 1


def test_transports_states_and_alerts(registry, metrics):
    count_sent(metrics, "rest", batches=2, size=300)
    count_reconnect(metrics, "websocket")
    set_websocket_status(metrics, "disconnected")
    set_transport(metrics, "rest")
    set_alert(metrics, "websocket_disconnected", "critical", firing=True)
    get = registry.get_sample_value
    assert get("keruta_sent_batches_total", {"transport": "rest"}) == 2
    assert get("keruta_sent_bytes_total", {"transport": "rest"}) == 300
    assert get("keruta_reconnects_total", {"transport": "websocket"}) == 1
    assert get("keruta_websocket_status", {"status": "disconnected"}) == 1
    assert get("keruta_websocket_status", {"status": "connected"}) == 0
    assert get("keruta_transport_active", {"transport": "rest"}) == 1
    assert get("keruta_transport_active", {"transport": "websocket"}) == 0
    assert get("keruta_alerts_firing", {"rule": "websocket_disconnected", "severity": "critical"}) == 1
    assert get("keruta_build_info", {"version": telemetry.__version__, "python": telemetry.platform.python_version()}) == 1


def test_a_group_left_out_is_not_exported_but_still_callable(registry):
    metrics = build_metrics(registry, "t", ["latency"])
    count_read(metrics, block("stdout", ["INFO"]))
    observe_delivered(metrics, block("stdout", ["INFO"]), 1000.1)
    text = generate_latest(registry).decode()
    assert "keruta_log_latency_seconds_count" in text and "keruta_logs_total" not in text
    assert "keruta_buffer_size" in text and "_created" not in text
    with pytest.raises(ValueError, match="unknown metric groups"):
        build_metrics(CollectorRegistry(), "t", ["logcount"])


def test_counting_a_chunk_costs_well_under_a_microsecond_a_record(metrics):
    chunk = block("stdout", ["INFO"] * 900 + ["ERROR"] * 100)
    started = time.perf_counter()
    for _ in range(50):
        count_read(metrics, chunk)
        observe_delivered(metrics, chunk, 1000.5)
    per_record = (time.perf_counter() - started) / (50 * len(chunk))
    assert per_record < 1e-6, f"{per_record * 1e9:.0f} ns a record"
