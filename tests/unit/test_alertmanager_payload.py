from keruta_actors.adapters.alertmanager import VALID_FOR, AlertmanagerClient, alert_payload
from keruta_actors.policy.alerts import AlertFired, AlertResolved, Rule

RULE = Rule.parse("websocket_disconnected", "websocket_status != 'connected'", 30.0, "critical")
T0 = 1_714_564_800.0  # 2024-05-01T12:00:00Z


def test_a_firing_alert_ends_a_few_resends_ahead():
    payload = alert_payload(AlertFired(RULE, "disconnected", since=T0, at=T0 + 30), "task-1", now=T0 + 31,
                            extra_labels={"instance": "pod-a", "alertname": "not this"})
    assert payload == {
        "labels": {"instance": "pod-a", "alertname": "websocket_disconnected", "severity": "critical",
                   "task_id": "task-1"},
        "annotations": {
            "summary": "websocket_disconnected fires: websocket_status != 'connected' (for 30s)",
            "description": "websocket_status was 'disconnected' on task task-1",
        },
        "startsAt": "2024-05-01T12:00:00.000Z",
        "endsAt": "2024-05-01T12:04:31.000Z",
    }
    assert VALID_FOR == 240


def test_a_resolved_alert_ends_when_the_condition_stopped_holding():
    payload = alert_payload(AlertResolved(RULE, "connected", since=T0, at=T0 + 90.5), "task-1", now=T0 + 91)
    assert payload["startsAt"] == "2024-05-01T12:00:00.000Z"
    assert payload["endsAt"] == "2024-05-01T12:01:30.500Z"
    assert payload["annotations"]["summary"].startswith("websocket_disconnected resolved: ")


def test_the_client_posts_to_the_v2_path_and_reports_failures_without_raising():
    assert AlertmanagerClient("http://am:9093/", 1).url == "http://am:9093/api/v2/alerts"
    assert AlertmanagerClient("http://am:9093/api/v2/alerts", 1).url == "http://am:9093/api/v2/alerts"
    client = AlertmanagerClient("http://127.0.0.1:9", timeout=2)  # the discard port: nothing listens
    assert client.post([]) == "cannot reach http://127.0.0.1:9/api/v2/alerts: connection refused"
    client.close()
