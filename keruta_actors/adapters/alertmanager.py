"""Alerts to Alertmanager, over its API v2 (SPEC §8, `alerting.webhookUrl`).

    POST {webhookUrl}/api/v2/alerts   a JSON array of
        {"labels": {"alertname", "severity", "task_id", ...},
         "annotations": {"summary", "description"},
         "startsAt": RFC 3339, "endsAt": RFC 3339}

As Prometheus does, a firing alert is sent with an `endsAt` a few resend
periods ahead and sent again every `RESEND_EVERY` seconds while it fires
(AlertEvaluator.firing()): should the agent die, Alertmanager resolves the
alert by itself once `endsAt` passes. A resolved alert is sent once, with
`endsAt` the moment its condition stopped holding. `startsAt` is when the
condition began to hold, in both.

`post` blocks for up to `timeout`: the actor runs it on a worker thread. It
never raises for a failed post; it returns the reason, for the agent's log
and `keruta_errors_total{type="webhook"}`.
"""

from __future__ import annotations

import json
from typing import Mapping, Sequence

import requests

from keruta_actors.errors import classify, root_cause
from keruta_actors.policy.alerts import AlertFired, AlertResolved
from keruta_actors.records import rfc3339

PATH = "/api/v2/alerts"
RESEND_EVERY = 60.0
VALID_FOR = 4 * RESEND_EVERY  # Prometheus' margin: three resends may be lost


def alert_payload(decision: AlertFired | AlertResolved, task_id: str, now: float,
                  extra_labels: Mapping[str, str] | None = None) -> dict:
    """One alert of the POST body. `now` is when it is sent (wall clock)."""
    rule = decision.rule
    firing = isinstance(decision, AlertFired)
    state = "fires" if firing else "resolved"
    return {
        "labels": {**(extra_labels or {}), "alertname": rule.name, "severity": rule.severity, "task_id": task_id},
        "annotations": {
            "summary": f"{rule.name} {state}: {rule.condition} (for {rule.duration:g}s)",
            "description": f"{rule.condition.signal} was {decision.value!r} on task {task_id}",
        },
        "startsAt": rfc3339(decision.since),
        "endsAt": rfc3339(now + VALID_FOR if firing else decision.at),
    }


class AlertmanagerClient:
    def __init__(self, url: str, timeout: float) -> None:
        self.url = url if url.endswith(PATH) else url.rstrip("/") + PATH
        self.timeout = timeout
        self._session = requests.Session()
        self._session.trust_env = False  # no proxies or CA bundles from the environment (SPEC §10)

    def post(self, alerts: Sequence[dict]) -> str | None:
        """None once Alertmanager has taken the alerts; else why not."""
        try:
            response = self._session.post(
                self.url, data=json.dumps(list(alerts)), timeout=self.timeout, allow_redirects=False,
                headers={"Content-Type": "application/json"})
        except requests.RequestException as error:
            return f"cannot reach {self.url}: {classify(root_cause(error))[1]}"
        if response.status_code != 200:
            return f"{self.url} answered HTTP {response.status_code}: {response.text[:200]}"
        return None

    def close(self) -> None:
        self._session.close()

