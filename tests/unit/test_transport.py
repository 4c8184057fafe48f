import random

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from keruta_actors.policy.backoff import ReconnectPolicy
from keruta_actors.policy.transport import (
    REST,
    WEBSOCKET,
    Retire,
    Start,
    TransportPlan,
    Use,
)


def plan(max_attempts=3, rest_interval=5.0, seed=0):
    rng = random.Random(seed)
    return TransportPlan(ReconnectPolicy(1.0, max_attempts, 60.0, rng), rest_interval, rng)


def test_the_websocket_comes_first_and_is_used_when_up():
    p = plan()
    assert p.start() == [Start(WEBSOCKET)]
    assert p.up(WEBSOCKET) == [Use(WEBSOCKET)]


def test_rest_takes_over_after_max_attempts_and_the_websocket_is_probed():
    p = plan(max_attempts=3)
    p.start()
    p.up(WEBSOCKET)
    assert p.lost(WEBSOCKET, 0.0, fatal=False) == [Use(None)]
    for attempt in range(2):
        due = p.next_due()
        assert p.tick(due) == [Start(WEBSOCKET)]
        actions = p.lost(WEBSOCKET, due, fatal=False)
        assert (Start(REST) in actions) == (attempt == 1)
    assert p.up(REST) == [Use(REST)]
    probe_at = p.due[WEBSOCKET]
    assert p.tick(probe_at - 0.001) == []
    assert p.tick(probe_at) == [Start(WEBSOCKET)]
    assert p.lost(WEBSOCKET, probe_at, fatal=False) == []  # a failed probe leaves REST in use
    assert p.active == REST and WEBSOCKET in p.due
    assert p.tick(p.due[WEBSOCKET]) == [Start(WEBSOCKET)]
    assert p.up(WEBSOCKET) == [Use(WEBSOCKET), Retire(REST)]
    assert p.active == WEBSOCKET and not p.falling_back


def test_a_fatal_websocket_failure_goes_to_rest_at_once_and_is_never_retried():
    p = plan()
    p.start()
    assert p.lost(WEBSOCKET, 0.0, fatal=True) == [Start(REST)]
    assert WEBSOCKET not in p.due and p.tick(1e9) == []


def test_a_websocket_the_server_does_not_serve_goes_to_rest_at_once_and_is_probed_on_the_backoff():
    p = plan(max_attempts=10)
    p.start()
    assert p.lost(WEBSOCKET, 0.0, fatal=False, unserved=True) == [Start(REST)]
    assert p.falling_back and 0.5 <= p.due[WEBSOCKET] <= 1.0  # the first backoff step
    assert p.up(REST) == [Use(REST)]
    probes = []
    for _ in range(8):
        due = p.next_due()
        assert p.tick(due) == [Start(WEBSOCKET)]
        assert p.lost(WEBSOCKET, due, fatal=False, unserved=True) == []
        probes.append(p.due[WEBSOCKET] - due)
    assert p.active == REST
    assert probes[-1] > probes[0] and max(probes) <= 60.0  # growing, capped
    assert p.tick(p.due[WEBSOCKET]) == [Start(WEBSOCKET)]
    assert p.up(WEBSOCKET) == [Use(WEBSOCKET), Retire(REST)]


def test_a_failed_rest_connection_is_started_again_after_a_backoff():
    p = plan(max_attempts=1, rest_interval=5.0)
    p.start()
    p.lost(WEBSOCKET, 0.0, fatal=False)
    p.up(REST)
    assert p.lost(REST, 10.0, fatal=False) == [Use(None)]
    assert 12.5 <= p.due[REST] <= 15.0
    assert p.tick(p.due[REST]) in ([Start(REST)], [Start(REST), Start(WEBSOCKET)], [Start(WEBSOCKET), Start(REST)])


def test_rest_refused_for_good_is_not_started_again():
    p = plan(max_attempts=1)
    p.start()
    p.lost(WEBSOCKET, 0.0, fatal=False)
    p.up(REST)
    p.lost(REST, 1.0, fatal=True)
    assert REST not in p.due
    assert all(action != Start(REST) for action in p.tick(1e9))


def test_a_rest_connection_that_comes_up_after_the_websocket_is_retired():
    p = plan(max_attempts=1)
    p.start()
    p.lost(WEBSOCKET, 0.0, fatal=False)  # REST starts
    p.tick(p.due[WEBSOCKET])
    p.up(WEBSOCKET)
    assert p.up(REST) == [Retire(REST)]
    assert p.active == WEBSOCKET


class TransportMachine(RuleBasedStateMachine):
    """Connections fail, come up and die in any order; the supervisor's view
    (which connections run, which one the batcher has) must stay coherent."""

    def __init__(self):
        super().__init__()
        self.plan = plan(max_attempts=2, seed=7)
        self.now = 0.0
        self.running = set()
        self.used = None
        self.apply(self.plan.start())

    def apply(self, actions):
        for action in actions:
            if isinstance(action, Start):
                assert action.kind not in self.running, "started twice"
                self.running.add(action.kind)
            elif isinstance(action, Retire):
                self.running.discard(action.kind)
            elif isinstance(action, Use):
                assert action.kind is None or action.kind in self.running
                self.used = action.kind

    @precondition(lambda self: self.running)
    @rule(data=st.data())
    def comes_up(self, data):
        kind = data.draw(st.sampled_from(sorted(self.running)))
        self.apply(self.plan.up(kind))

    @precondition(lambda self: self.running)
    @rule(data=st.data(), how=st.sampled_from(["transient", "unserved", "fatal"]))
    def fails(self, data, how):
        kind = data.draw(st.sampled_from(sorted(self.running)))
        self.running.discard(kind)
        self.apply(self.plan.lost(kind, self.now, how == "fatal", how == "unserved" and kind == WEBSOCKET))
        if how == "unserved" and kind == WEBSOCKET:
            assert self.plan.falling_back

    @rule(seconds=st.floats(0, 120))
    def time_passes(self, seconds):
        self.now += seconds
        self.apply(self.plan.tick(self.now))

    @invariant()
    def the_batcher_has_a_live_connection_or_none(self):
        assert self.used == self.plan.active
        assert self.used is None or self.used in self.running

    @invariant()
    def rest_runs_only_while_falling_back(self):
        if REST in self.running:
            assert self.plan.falling_back

    @invariant()
    def the_websocket_is_never_given_up(self):
        if WEBSOCKET not in self.plan.dead:
            assert WEBSOCKET in self.running or WEBSOCKET in self.plan.due

    @invariant()
    def falling_back_means_rest_runs_or_will(self):
        if self.plan.falling_back and self.used != WEBSOCKET and REST not in self.plan.dead:
            assert REST in self.running or REST in self.plan.due


TestTransportMachine = TransportMachine.TestCase
