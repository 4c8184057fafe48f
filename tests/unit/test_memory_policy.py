import pickle

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keruta_actors.policy.memory import (
    Critical,
    MemoryPolicy,
    MemoryReading,
    Relieve,
    Steady,
)

LIMIT = 1000  # bytes: pressure at 800, relief below 700


def reading(pss, limit=LIMIT, processes=9):
    return MemoryReading(pss_bytes=pss, processes=processes, limit_bytes=limit)


def run(policy, usages):
    return [policy.observe(reading(pss, policy.limit_bytes)) for pss in usages]


def names(decisions):
    return [type(decision).__name__ for decision in decisions]


# --- MemoryReading ------------------------------------------------------------


def test_a_reading_gives_its_fraction_and_health():
    assert reading(500).fraction == 0.5
    assert reading(1000).healthy
    assert not reading(1001).healthy


def test_a_reading_describes_itself_for_the_health_check():
    mib = 1024 * 1024
    assert reading(205 * mib, limit=512 * mib).describe() == "205.0 MiB of 512 MiB (40%) in 9 processes"


@pytest.mark.parametrize("pss, processes, limit", [(-1, 1, 10), (1, -1, 10), (1, 1, 0)])
def test_a_reading_rejects_impossible_values(pss, processes, limit):
    with pytest.raises(ValueError):
        MemoryReading(pss, processes, limit)


def test_readings_and_decisions_pickle():
    for value in (reading(1), Steady(), Relieve("pressure"), Critical()):
        assert pickle.loads(pickle.dumps(value)) == value


# --- MemoryPolicy: examples ------------------------------------------------------


def test_below_pressure_is_steady():
    assert names(run(MemoryPolicy(LIMIT), [0, 500, 799, 700, 799])) == ["Steady"] * 5


def test_the_pressure_line_itself_relieves():
    assert run(MemoryPolicy(LIMIT), [800]) == [Relieve("pressure")]


def test_above_the_limit_is_critical_and_the_limit_itself_is_not():
    assert run(MemoryPolicy(LIMIT), [1000]) == [Relieve("pressure")]
    assert run(MemoryPolicy(LIMIT), [1001]) == [Critical()]


def test_staying_under_pressure_repeats_every_n_readings():
    decisions = run(MemoryPolicy(LIMIT, repeat_every=3), [900] * 7)
    assert names(decisions) == ["Relieve", "Steady", "Steady", "Relieve", "Steady", "Steady", "Relieve"]


def test_hovering_around_the_pressure_line_relieves_once():
    decisions = run(MemoryPolicy(LIMIT, repeat_every=6), [810, 790, 810, 790, 810])
    assert names(decisions) == ["Relieve", "Steady", "Steady", "Steady", "Steady"]


def test_falling_below_relief_makes_the_next_crossing_new():
    decisions = run(MemoryPolicy(LIMIT, repeat_every=6), [810, 699, 810])
    assert names(decisions) == ["Relieve", "Steady", "Relieve"]


def test_the_relief_line_itself_does_not_rearm():
    decisions = run(MemoryPolicy(LIMIT, repeat_every=6), [810, 700, 810])
    assert names(decisions) == ["Relieve", "Steady", "Steady"]


def test_going_over_the_limit_escalates_at_once_but_only_once_per_episode():
    decisions = run(MemoryPolicy(LIMIT, repeat_every=4), [810, 1100, 900, 1100, 1100, 1100])
    assert names(decisions) == ["Relieve", "Critical", "Steady", "Steady", "Steady", "Critical"]


def test_under_pressure_lasts_from_a_crossing_until_below_relief():
    policy = MemoryPolicy(LIMIT)
    seen = []
    for pss in (750, 800, 750, 699, 750):
        policy.observe(reading(pss))
        seen.append(policy.under_pressure)
    assert seen == [False, True, True, False, False]
    assert policy.last == reading(750)


def test_a_reading_against_another_limit_is_refused():
    with pytest.raises(ValueError):
        MemoryPolicy(LIMIT).observe(reading(10, limit=2000))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"limit_bytes": 0},
        {"limit_bytes": LIMIT, "pressure_fraction": 0.7, "relief_fraction": 0.7},
        {"limit_bytes": LIMIT, "pressure_fraction": 1.1},
        {"limit_bytes": LIMIT, "relief_fraction": 0.0},
        {"limit_bytes": LIMIT, "repeat_every": 0},
    ],
)
def test_bad_settings_are_refused(kwargs):
    with pytest.raises(ValueError):
        MemoryPolicy(**kwargs)


# --- MemoryPolicy: properties ----------------------------------------------------

usages = st.lists(st.integers(min_value=0, max_value=2 * LIMIT), max_size=80)
repeat = st.integers(min_value=1, max_value=10)


@given(usages, repeat)
def test_never_acts_below_the_pressure_line(series, repeat_every):
    policy = MemoryPolicy(LIMIT, repeat_every=repeat_every)
    for pss, decision in zip(series, run(policy, series)):
        if pss < policy.pressure_bytes:
            assert decision == Steady()


@given(usages, repeat)
def test_critical_only_above_the_limit_and_relieve_only_at_or_below_it(series, repeat_every):
    for pss, decision in zip(series, run(MemoryPolicy(LIMIT, repeat_every=repeat_every), series)):
        if isinstance(decision, Critical):
            assert pss > LIMIT
        if isinstance(decision, Relieve):
            assert pss <= LIMIT


@given(usages, repeat)
def test_no_second_relieve_within_the_wait_unless_usage_fell_below_relief(series, repeat_every):
    policy = MemoryPolicy(LIMIT, repeat_every=repeat_every)
    decisions = run(policy, series)
    last_action = None
    for index, (pss, decision) in enumerate(zip(series, decisions)):
        if isinstance(decision, Relieve) and last_action is not None:
            rearmed = any(usage < policy.relief_bytes for usage in series[last_action + 1 : index])
            assert rearmed or index - last_action >= repeat_every
        if not isinstance(decision, Steady):
            last_action = index


@given(usages, repeat)
def test_at_most_two_actions_per_wait_within_an_episode(series, repeat_every):
    policy = MemoryPolicy(LIMIT, repeat_every=repeat_every)
    decisions = run(policy, series)
    for start in range(len(series)):
        window = range(start, min(start + repeat_every, len(series)))
        if any(series[index] < policy.relief_bytes for index in window):
            continue  # an episode ended inside: a new one may start
        actions = [decisions[index] for index in window if not isinstance(decisions[index], Steady)]
        assert len(actions) <= 2
        assert sum(isinstance(action, Relieve) for action in actions) <= 1


@given(usages, repeat)
def test_sustained_pressure_is_always_acted_on_within_the_wait(series, repeat_every):
    policy = MemoryPolicy(LIMIT, repeat_every=repeat_every)
    decisions = run(policy, series)
    quiet = 0
    for pss, decision in zip(series, decisions):
        if pss < policy.pressure_bytes or not isinstance(decision, Steady):
            quiet = 0
        else:
            quiet += 1
            assert quiet < repeat_every


@given(usages, repeat)
def test_a_first_crossing_acts_at_once(series, repeat_every):
    policy = MemoryPolicy(LIMIT, repeat_every=repeat_every)
    armed = True
    for pss in series:
        armed = armed or pss < policy.relief_bytes
        decision = policy.observe(reading(pss))
        if armed and pss >= policy.pressure_bytes:
            assert decision != Steady()
            armed = False
