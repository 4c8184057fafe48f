"""The alert evaluator: the `alerts` rules, evaluated every
`alerting.evaluationInterval` (SPEC §8).

The rules and their Prometheus-style `for` states are
`policy.alerts.AlertEvaluator`'s; the signals' values come from the meter.
A rule that fires or resolves is reported in four places:
- a record of the agent's own (source `agent`, WARN or ERROR by severity)
  on the task's stream, through the supervisor to the source reader and
  down the pipeline, so it is delivered like any record;
- a line in the agent's own log;
- `keruta_alerts_firing{rule,severity}`;
- with `alerting.webhookUrl`, Alertmanager's API v2, posted from this
  actor's worker thread. Firing alerts are posted again every
  RESEND_EVERY seconds, as Prometheus does, so Alertmanager keeps them.
"""

from __future__ import annotations

import logging
import time

from keruta_actors import meter
from keruta_actors.actors.base import KerutaActor
from keruta_actors.adapters import reactor
from keruta_actors.logsetup import python_level
from keruta_actors.messages import Configure, ShipAgentRecord, WorkDone
from keruta_actors.policy.alerts import AlertEvaluator as Rules
from keruta_actors.policy.alerts import Decision, Rule, alert_note


class AlertEvaluator(KerutaActor):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.configured: Configure | None = None
        self.client = None  # adapters.alertmanager.AlertmanagerClient, with alerting.webhookUrl

    def receiveMsg_Configure(self, message: Configure, sender) -> None:
        if self.configured is not None:
            return  # a repeated delivery
        self.configured = message
        settings = message.settings
        rules = [Rule.parse(r.name, r.condition, r.duration, r.severity) for r in settings.alerts]
        self.rules = Rules(rules)
        for rule in rules:
            meter.current().alert(rule.name, rule.severity, firing=False)
        self.interval = settings.alerting.evaluation_interval
        if settings.alerting.webhook_url:
            from keruta_actors.adapters import alertmanager  # requests: loaded only for a webhook

            self.alertmanager = alertmanager
            self.client = alertmanager.AlertmanagerClient(settings.alerting.webhook_url, settings.alerting.timeout)
            self.worker = reactor.Worker(reactor.current(), self.myAddress, "keruta-alertmanager")
            self.resend_due = time.monotonic() + alertmanager.RESEND_EVERY
        if rules:
            self.wake_at(time.monotonic() + self.interval)

    def on_tick(self, now: float) -> None:
        wall = time.time()
        for decision in self.rules.observe(meter.current().signals(wall), wall):
            self._report(decision, wall)
        if self.client is not None and now >= self.resend_due:
            self.resend_due = now + self.alertmanager.RESEND_EVERY
            self._post(self.rules.firing(), wall)
        self.wake_at(now + self.interval)

    def receiveMsg_WorkDone(self, message: WorkDone, sender) -> None:
        if message.tag == "post" and message.result is not None:
            problem = message.result if isinstance(message.result, str) else repr(message.result)
            self.log.warning("could not post alerts to Alertmanager: %s", problem)
            meter.current().error("webhook")

    def on_exit(self) -> None:
        if self.client is not None:
            self.worker.submit("close", self.client.close)
            self.worker.stop()

    def _report(self, decision: Decision, wall: float) -> None:
        level, text, metadata = alert_note(decision)
        self.log.log(logging.getLevelName(python_level(level)), "%s", text)
        rule = decision.rule
        meter.current().alert(rule.name, rule.severity, firing=metadata["state"] == "firing")
        self.send(self.configured.supervisor, ShipAgentRecord(level, text, tuple(metadata.items())))
        self._post([decision], wall)

    def _post(self, decisions: list[Decision], wall: float) -> None:
        if self.client is None or not decisions:
            return
        client, task_id = self.client, self.configured.plan.task_id
        alerts = [self.alertmanager.alert_payload(decision, task_id, wall) for decision in decisions]
        self.worker.submit("post", lambda: client.post(alerts))
