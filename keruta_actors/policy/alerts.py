"""Alert rules and their states, with Prometheus' `for` semantics (SPEC §8).

Every transition lives in `_NEXT`. A rule is

    inactive  its condition does not hold
    pending   it holds, for less than the rule's `duration` so far
    firing    it has held for at least `duration`, at every observation since
              it began to hold
    resolved  it was firing and has stopped holding (then as inactive)

The evaluator is fed the signals' current values with `observe(signals, now)`
and answers with what changed: `AlertFired` when a rule starts firing,
`AlertResolved` at the first observation after that where it no longer holds.
Pending is never reported. A signal missing from `signals` (or None) means
"no value yet", which never satisfies a condition.

`now` is any clock that does not go backwards; pass wall-clock seconds
(time.time()) when the decisions go to Alertmanager, which wants timestamps.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping

from keruta_actors.policy.conditions import Condition, parse_condition

INACTIVE, PENDING, FIRING, RESOLVED = "inactive", "pending", "firing", "resolved"
SEVERITIES = ("info", "warning", "critical")

# (state, the condition holds, it has held for `duration`) -> next state
_NEXT = {
    (INACTIVE, False, False): INACTIVE,
    (INACTIVE, True, False): PENDING,
    (INACTIVE, True, True): FIRING,  # duration 0
    (PENDING, False, False): INACTIVE,
    (PENDING, True, False): PENDING,
    (PENDING, True, True): FIRING,
    (FIRING, False, False): RESOLVED,
    (FIRING, True, False): FIRING,  # cannot happen: a firing rule has held long enough
    (FIRING, True, True): FIRING,
    (RESOLVED, False, False): RESOLVED,
    (RESOLVED, True, False): PENDING,
    (RESOLVED, True, True): FIRING,
}


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    condition: Condition
    duration: float  # seconds the condition must hold before the rule fires
    severity: str

    @classmethod
    def parse(cls, name: str, condition: str, duration: float, severity: str) -> "Rule":
        """A rule from the configuration's fields (config.AlertRule's, in order)."""
        return cls(name, parse_condition(condition), duration, severity)


@dataclass(frozen=True, slots=True)
class AlertFired:
    rule: Rule
    value: float | str  # the signal's value when the rule fired
    since: float  # when the condition began to hold: Alertmanager's startsAt
    at: float  # when the rule fired


@dataclass(frozen=True, slots=True)
class AlertResolved:
    rule: Rule
    value: float | str | None  # the signal's value when the condition stopped holding
    since: float  # as in the AlertFired this ends
    at: float  # when the condition was first seen not holding: Alertmanager's endsAt


Decision = AlertFired | AlertResolved


class _Tracked:
    __slots__ = ("rule", "state", "since", "fired")

    def __init__(self, rule: Rule) -> None:
        self.rule = rule
        self.state = INACTIVE
        self.since = 0.0  # when the condition began to hold, if it holds
        self.fired: AlertFired | None = None


class AlertEvaluator:
    def __init__(self, rules: Iterable[Rule]) -> None:
        self._rules = {}
        for rule in rules:
            if rule.name in self._rules:
                raise ValueError(f"rule name {rule.name!r} is used more than once")
            self._rules[rule.name] = _Tracked(rule)

    def observe(self, signals: Mapping[str, float | str | None], now: float) -> list[Decision]:
        """Advance every rule to `now`; the alerts that fired or resolved."""
        decisions = []
        for tracked in self._rules.values():
            decision = self._step(tracked, signals.get(tracked.rule.condition.signal), now)
            if decision is not None:
                decisions.append(decision)
        return decisions

    def state(self, name: str) -> str:
        return self._rules[name].state

    def firing(self) -> list[AlertFired]:
        """The alerts firing now, as they fired: Alertmanager forgets an alert
        that is not sent again, so the caller resends these periodically."""
        return [t.fired for t in self._rules.values() if t.state == FIRING and t.fired]

    @staticmethod
    def _step(tracked: _Tracked, value: float | str | None, now: float) -> Decision | None:
        rule, before = tracked.rule, tracked.state
        holds = rule.condition.holds(value)
        if holds and before in (INACTIVE, RESOLVED):
            tracked.since = now
        held = holds and now - tracked.since >= rule.duration
        tracked.state = _NEXT[before, holds, held]
        if tracked.state == FIRING and before != FIRING:
            tracked.fired = AlertFired(rule, value, tracked.since, now)
            return tracked.fired
        if tracked.state == RESOLVED and before == FIRING:
            tracked.fired = None
            return AlertResolved(rule, value, tracked.since, now)
        return None


def alert_note(decision: Decision) -> tuple[str, str, dict]:
    """How a decision is reported on the task's stream and in the agent's log:
    (level, message, metadata). The level follows the rule's severity, for
    firing and resolving alike: critical is ERROR, the others WARN."""
    rule = decision.rule
    firing = isinstance(decision, AlertFired)
    level = "ERROR" if rule.severity == "critical" else "WARN"
    value = _shown(decision.value)
    if firing:
        message = f"alert {rule.name} firing: {rule.condition} has held for {rule.duration:g}s (now {value})"
    else:
        message = f"alert {rule.name} resolved: {rule.condition} no longer holds (now {value})"
    metadata = {"alert": rule.name, "severity": rule.severity, "state": "firing" if firing else "resolved",
                "condition": str(rule.condition), "value": decision.value}
    return level, message, metadata


def _shown(value: float | str | None) -> str:
    if value is None:
        return "no value"
    return value if isinstance(value, str) else f"{value:.4g}"
