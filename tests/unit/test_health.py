import json

from keruta_actors.policy.health import (
    Check,
    Snapshot,
    api_check,
    health_report,
    liveness_report,
    memory_check,
    websocket_check,
)
from keruta_actors.policy.memory import MemoryReading

MIB = 1024 * 1024
NOW = 1_714_564_800.25  # 2024-05-01T12:00:00.250Z


def test_all_healthy_is_200_in_the_design_document_s_shape():
    checks = {
        "websocket": websocket_check("connected", "websocket", None, NOW),
        "api": api_check(200, 0.012),
        "memory": memory_check(MemoryReading(100 * MIB, 3, 512 * MIB)),
    }
    status, body = health_report(checks, NOW)
    assert status == 200
    assert body == {
        "status": "healthy",
        "timestamp": "2024-05-01T12:00:00.250Z",
        "checks": {
            "websocket": {"healthy": True, "message": "connected", "latency": 0.0, "error": ""},
            "api": {"healthy": True, "message": "HTTP 200", "latency": 0.012, "error": ""},
            "memory": {"healthy": True, "message": "100.0 MiB of 512 MiB (20%) in 3 processes",
                       "latency": 0.0, "error": ""},
        },
    }
    assert json.loads(json.dumps(body)) == body


def test_a_websocket_down_is_503_and_says_where_records_go():
    checks = {
        "websocket": websocket_check("disconnected", "rest", down_since=NOW - 42, now=NOW),
        "api": api_check(204, 0.01),
        "memory": memory_check(MemoryReading(10 * MIB, 1, 512 * MIB)),
    }
    status, body = health_report(checks, NOW)
    assert (status, body["status"]) == (503, "unhealthy")
    assert body["checks"]["websocket"] == {
        "healthy": False, "message": "disconnected for 42s; records go over REST", "latency": 0.0,
        "error": "disconnected"}
    assert websocket_check("retired", "spool", None, NOW).message == "retired; records wait in the spool"


def test_api_and_memory_failures_and_checks_not_run_yet():
    assert api_check(None, 5.0, "no answer within 5s") == Check(False, "no answer", 5.0, "no answer within 5s")
    assert api_check(500, 0.1) == Check(False, "HTTP 500", 0.1, "HTTP 500")
    over = memory_check(MemoryReading(600 * MIB, 9, 512 * MIB))
    assert not over.healthy and over.error == "above the memory limit"
    status, body = health_report({"websocket": websocket_check("connected", "websocket", None, NOW)}, NOW)
    assert status == 503
    assert body["checks"]["api"] == {"healthy": False, "message": "not checked yet", "latency": 0.0, "error": ""}


def test_liveness_looks_only_at_the_actors_replies():
    assert liveness_report({"batcher": NOW - 1, "connection": NOW - 2}, NOW, stale_after=10) == (
        200, {"status": "alive", "timestamp": "2024-05-01T12:00:00.250Z", "silent": []})
    status, body = liveness_report({"batcher": NOW - 11, "connection": None, "filter": NOW}, NOW, stale_after=10)
    assert (status, body["status"], body["silent"]) == (503, "dead", ["batcher", "connection"])


def test_a_retired_websocket_is_healthy_while_rest_carries_the_records():
    # The deployed keruta API serves no log WebSocket: REST is its way, not a fallback.
    assert websocket_check("retired", "rest", NOW - 100, NOW).healthy
    assert "records go over REST" in websocket_check("retired", "rest", NOW - 100, NOW).message
    assert not websocket_check("retired", "spool", NOW - 100, NOW).healthy
    assert not websocket_check("disconnected", "rest", NOW - 100, NOW).healthy


def test_a_snapshot_answers_from_cached_checks_and_goes_stale_with_the_actors():
    checks = (("websocket", websocket_check("connected", "websocket", None, NOW)), ("api", api_check(200, 0.01)),
              ("memory", memory_check(MemoryReading(10 * MIB, 1, 512 * MIB))))
    snapshot = Snapshot(checks, checked_at=NOW, replied_at=NOW)
    assert snapshot.health(NOW + 1, stale_after=30)[0] == 200
    assert snapshot.liveness(NOW + 1, stale_after=30)[0] == 200
    status, body = snapshot.health(NOW + 31, stale_after=30)
    assert status == 503 and body["checks"]["api"]["error"].startswith("not checked for 31s")
    assert snapshot.liveness(NOW + 31, stale_after=30) == (
        503, {"status": "dead", "timestamp": "2024-05-01T12:00:31.250Z", "silent": ["actors"]})
    assert Snapshot().health(NOW, 30)[0] == 503  # nothing checked yet
