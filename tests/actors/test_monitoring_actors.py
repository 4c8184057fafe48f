"""The health checker and the alert evaluator, under the in-process base,
with a meter installed and a stand-in supervisor."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry
from thespian.actors import ActorTypeDispatcher

from keruta_actors import meter
from keruta_actors.actors.alert_evaluator import AlertEvaluator
from keruta_actors.actors.health_checker import HealthChecker
from keruta_actors.agent_meter import Meter
from keruta_actors.messages import Configure, MemoryMeasured, QueryMemory, ShipAgentRecord
from keruta_actors.policy.memory import MemoryReading

MIB = 1 << 20


class Supervisor(ActorTypeDispatcher):
    """Answers QueryMemory as the real one does; keeps everything else."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.seen = []

    def receiveMessage(self, message, sender):
        if isinstance(message, QueryMemory):
            self.send(sender, MemoryMeasured(MemoryReading(100 * MIB, 1, 512 * MIB)))
        elif message == "report":
            self.send(sender, list(self.seen))
        else:
            self.seen.append(message)


@pytest.fixture
def agent_meter():
    installed = Meter(CollectorRegistry(), "task", ["logCount", "errorRate", "latency", "memoryUsage"],
                            512 * MIB, now=0.0)
    meter.install(installed)
    yield installed
    meter.uninstall()


def test_the_health_checker_publishes_every_check_and_the_round_trip(system, plan, make_settings, wait_until,
                                                                     agent_meter, closed_port):
    settings = make_settings(**{"api.url": f"http://127.0.0.1:{closed_port}/api/v1",
                                "monitoring.health.interval": "100ms"})
    supervisor = system.createActor(Supervisor)
    system.tell(system.createActor(HealthChecker), Configure(settings, plan, supervisor))
    snapshot = wait_until(lambda: len(agent_meter.health.checks) == 3 and agent_meter.health)
    checks = dict(snapshot.checks)
    assert checks["memory"].healthy and checks["memory"].message.startswith("100.0 MiB of 512 MiB")
    assert not checks["api"].healthy and "connection refused" in checks["api"].error
    assert checks["websocket"].message.startswith("connecting")
    status, body = snapshot.liveness(snapshot.replied_at + 1, stale_after=30)
    assert (status, body["status"]) == (200, "alive")
    agent_meter.link_up("websocket")
    wait_until(lambda: dict(agent_meter.health.checks)["websocket"].healthy)


def test_the_alert_evaluator_reports_a_rule_that_fires_and_resolves(system, plan, make_settings, wait_until,
                                                                   agent_meter):
    settings = make_settings(**{
        "alerts": [{"name": "ws_down", "condition": "websocket_status == 'disconnected'", "duration": "0s",
                    "severity": "warning"}],
        "alerting.evaluationInterval": "50ms",
    })
    supervisor = system.createActor(Supervisor)
    system.tell(system.createActor(AlertEvaluator), Configure(settings, plan, supervisor))
    firing = lambda: agent_meter.registry.get_sample_value(
        "keruta_alerts_firing", {"rule": "ws_down", "severity": "warning"})
    assert firing() == 0
    agent_meter.link_lost("websocket")
    wait_until(lambda: firing() == 1)
    agent_meter.link_up("websocket")
    wait_until(lambda: firing() == 0)
    shipped = [m for m in system.ask(supervisor, "report", 1) if isinstance(m, ShipAgentRecord)]
    assert [(m.level, dict(m.metadata)["state"]) for m in shipped] == [("WARN", "firing"), ("WARN", "resolved")]
    assert shipped[0].message == "alert ws_down firing: websocket_status == 'disconnected' has held for 0s (now disconnected)"
