import pickle
from itertools import accumulate

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keruta_actors.policy.alerts import (
    FIRING,
    INACTIVE,
    PENDING,
    RESOLVED,
    AlertEvaluator,
    AlertFired,
    AlertResolved,
    Rule,
    alert_note,
)

DEFAULTS = [  # the design document's four rules
    Rule.parse("high_error_rate", "error_rate > 0.05", 300.0, "warning"),
    Rule.parse("high_latency", "latency > 1s", 120.0, "warning"),
    Rule.parse("memory_usage_high", "memory_usage > 80%", 60.0, "critical"),
    Rule.parse("websocket_disconnected", "websocket_status != 'connected'", 30.0, "critical"),
]
DISCONNECTED = DEFAULTS[3]


def test_a_rule_goes_pending_then_fires_after_its_duration_then_resolves():
    evaluator = AlertEvaluator([DISCONNECTED])
    assert evaluator.observe({"websocket_status": "connected"}, 0.0) == []
    assert evaluator.state("websocket_disconnected") == INACTIVE
    assert evaluator.observe({"websocket_status": "disconnected"}, 10.0) == []
    assert evaluator.state("websocket_disconnected") == PENDING
    assert evaluator.observe({"websocket_status": "connecting"}, 39.9) == []
    fired = AlertFired(DISCONNECTED, "disconnected", since=10.0, at=40.0)
    assert evaluator.observe({"websocket_status": "disconnected"}, 40.0) == [fired]
    assert evaluator.state("websocket_disconnected") == FIRING
    assert evaluator.firing() == [fired]
    assert evaluator.observe({"websocket_status": "disconnected"}, 50.0) == []
    resolved = AlertResolved(DISCONNECTED, "connected", since=10.0, at=55.0)
    assert evaluator.observe({"websocket_status": "connected"}, 55.0) == [resolved]
    assert evaluator.state("websocket_disconnected") == RESOLVED
    assert evaluator.firing() == []


def test_a_pending_rule_that_stops_holding_starts_over():
    evaluator = AlertEvaluator([DISCONNECTED])
    evaluator.observe({"websocket_status": "disconnected"}, 0.0)
    evaluator.observe({"websocket_status": "connected"}, 29.0)
    assert evaluator.state("websocket_disconnected") == INACTIVE
    assert evaluator.observe({"websocket_status": "disconnected"}, 30.0) == []
    assert evaluator.observe({"websocket_status": "disconnected"}, 60.0) == [
        AlertFired(DISCONNECTED, "disconnected", since=30.0, at=60.0)]


def test_duration_zero_fires_at_once_and_a_missing_signal_resolves():
    rule = Rule.parse("spool", "spool_bytes > 1MB", 0.0, "info")
    evaluator = AlertEvaluator([rule])
    assert evaluator.observe({"spool_bytes": 2 * 1024**2}, 5.0) == [AlertFired(rule, 2 * 1024**2, 5.0, 5.0)]
    assert evaluator.observe({}, 6.0) == [AlertResolved(rule, None, 5.0, 6.0)]


def test_each_rule_reads_its_own_signal():
    evaluator = AlertEvaluator(DEFAULTS)
    signals = {"error_rate": 0.5, "latency": 0.2, "memory_usage": 0.9, "websocket_status": "connected"}
    evaluator.observe(signals, 0.0)
    assert [d.rule.name for d in evaluator.observe(signals, 60.0)] == ["memory_usage_high"]
    assert [d.rule.name for d in evaluator.observe(signals, 300.0)] == ["high_error_rate"]


def test_rule_names_are_unique_and_decisions_pickle():
    with pytest.raises(ValueError, match="'high_latency' is used more than once"):
        AlertEvaluator([DEFAULTS[1], DEFAULTS[1]])
    decision = AlertFired(DEFAULTS[0], 0.5, 1.0, 2.0)
    assert pickle.loads(pickle.dumps(decision)) == decision


# --- properties: a plain model of Prometheus' `for` beside the evaluator -----------------

steps = st.lists(st.tuples(st.floats(0, 20, allow_nan=False), st.booleans()), max_size=60)


@given(steps, st.sampled_from([0.0, 1.0, 7.5, 30.0]))
def test_fires_only_after_holding_for_duration_and_resolves_when_it_stops(script, duration):
    rule = Rule.parse("r", "latency > 1s", duration, "warning")
    evaluator = AlertEvaluator([rule])
    times = list(accumulate(dt for dt, _ in script))
    held_since = None  # the model: when the current run of "holds" began
    firing = False
    for now, (_, holds) in zip(times, script):
        decisions = evaluator.observe({"latency": 2.0 if holds else 0.5}, now)
        if holds and held_since is None:
            held_since = now
        if holds and not firing and now - held_since >= duration:
            # Never before the condition has held for `duration`, at every observation.
            assert decisions == [AlertFired(rule, 2.0, held_since, now)]
            firing = True
        elif not holds and firing:
            # Always at the first observation where it no longer holds.
            assert decisions == [AlertResolved(rule, 0.5, held_since, now)]
            firing = False
        else:
            assert decisions == []
        if not holds:
            held_since = None
        assert (evaluator.state("r") == FIRING) == firing
        assert len(evaluator.firing()) == firing


def test_alert_notes_say_what_fired_and_what_resolved_at_the_severity_s_level():
    critical = Rule.parse("websocket_disconnected", "websocket_status != 'connected'", 30.0, "critical")
    level, message, metadata = alert_note(AlertFired(critical, "retired", since=0.0, at=30.0))
    assert (level, message) == ("ERROR", "alert websocket_disconnected firing: websocket_status != 'connected' "
                                         "has held for 30s (now retired)")
    assert metadata == {"alert": "websocket_disconnected", "severity": "critical", "state": "firing",
                        "condition": "websocket_status != 'connected'", "value": "retired"}
    warning = Rule.parse("high_latency", "latency > 1s", 120.0, "warning")
    level, message, metadata = alert_note(AlertResolved(warning, 0.25, since=0.0, at=200.0))
    assert (level, metadata["state"]) == ("WARN", "resolved")
    assert message == "alert high_latency resolved: latency > 1s no longer holds (now 0.25)"
