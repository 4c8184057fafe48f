import pickle
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keruta_actors.policy.conditions import (
    OPERATORS,
    SIGNALS,
    WEBSOCKET_STATUSES,
    Condition,
    ConditionError,
    parse_condition,
)

SEED_ALERTS = Path(__file__).parent / "data" / "seed_alerts.yaml"


def test_the_seed_rules_parse_to_what_they_mean():
    conditions = re.findall(r'condition: "(.*)"', SEED_ALERTS.read_text())
    assert [parse_condition(text) for text in conditions] == [
        Condition("error_rate", ">", 0.05, "0.05"),
        Condition("latency", ">", 1.0, "1s"),
        Condition("memory_usage", ">", 0.8, "80%"),
        Condition("websocket_status", "!=", "connected", "'connected'"),
    ]


@pytest.mark.parametrize("text, value", [
    ("latency > 500ms", 0.5), ("latency>=2m", 120.0), ("latency < 1.5", 1.5),
    ("error_rate >= 5%", 0.05), ("buffer_usage > .9", 0.9), ("memory_usage <= 120%", 1.2),
    ("spool_bytes > 1GB", 1024.0**3), ("spool_bytes > 4096", 4096.0),
    ('websocket_status == "retired"', "retired"),
])
def test_values_arrive_in_the_signals_unit(text, value):
    assert parse_condition(text).value == pytest.approx(value)


@pytest.mark.parametrize("text, message", [
    ("nosuch_signal > 1", "unknown signal 'nosuch_signal' in 'nosuch_signal > 1' (known signals: "
     "error_rate, latency, memory_usage, websocket_status, buffer_usage, spool_bytes)"),
    ("error_rat > 0.05", "unknown signal 'error_rat' in 'error_rat > 0.05' (did you mean 'error_rate'?)"),
    ("latency > 80%", "latency in 'latency > 80%': invalid duration '80%'"),
    ("memory_usage > 80", "memory_usage is a share from 0 to 1 in 'memory_usage > 80' (did you mean '80%'?)"),
    ("memory_usage > 1s", "memory_usage is a share: write 80% or 0.8, not 's', in 'memory_usage > 1s'"),
    ("latency > 'slow'", "latency is a number, not text, in \"latency > 'slow'\""),
    ("websocket_status > 'connected'", "websocket_status is text: compare it with == or !=, not >, "),
    ("websocket_status != 'conected'", "'conected' is not a websocket_status in "),
    ("websocket_status != 1", "websocket_status is text: quote the value"),
    ("websocket_status != connected", "expected a condition 'signal op value'"),
    ("spool_bytes > 1.5", "spool_bytes in 'spool_bytes > 1.5': invalid size"),
])
def test_mistakes_are_explained(text, message):
    with pytest.raises(ConditionError) as error:
        parse_condition(text)
    assert str(error.value).startswith(message)


def test_an_unquoted_status_gets_a_hint():
    with pytest.raises(ConditionError, match=r"\(quote text values: 'connected'\)$"):
        parse_condition("websocket_status != connected")


@pytest.mark.parametrize("text", ["latency 1s", "latency >", "> 1s", "latency => 1s", "1x > 2",
                                  "error_rate > 0.05 and latency > 1s", 5, None])
def test_bad_syntax_is_explained(text):
    with pytest.raises(ConditionError, match=r"^expected a condition 'signal op value' .*, got "):
        parse_condition(text)


def test_holds_compares_and_a_missing_value_never_holds():
    assert parse_condition("latency > 1s").holds(1.5)
    assert not parse_condition("latency > 1s").holds(1.0)
    assert not parse_condition("latency < 1s").holds(None)
    assert parse_condition("websocket_status != 'connected'").holds("disconnected")
    assert not parse_condition("websocket_status != 'connected'").holds(None)


numbers = st.one_of(
    st.integers(0, 10**6).map(str),
    st.decimals(0, 1000, places=3, allow_nan=False, allow_infinity=False).map(str),
)
numeric_conditions = st.one_of(
    st.tuples(st.just("latency"), numbers, st.sampled_from(["", "ms", "s", "m", "h", "d"])),
    st.tuples(st.sampled_from(["error_rate", "memory_usage", "buffer_usage"]), numbers, st.just("%")),
    st.tuples(st.just("spool_bytes"), st.integers(0, 10**6).map(str), st.sampled_from(["", "KB", "MiB", "GB"])),
)
text_conditions = st.tuples(
    st.just("websocket_status"), st.sampled_from(["==", "!="]), st.sampled_from(WEBSOCKET_STATUSES),
    st.sampled_from(["'", '"']),
)
spaces = st.sampled_from(["", " ", "  "])


@given(numeric_conditions, st.sampled_from(sorted(OPERATORS)), spaces, spaces)
def test_numeric_conditions_round_trip(parts, op, before, after):
    signal, number, unit = parts
    condition = parse_condition(f"{before}{signal}{before}{op}{after}{number}{unit}{after}")
    assert parse_condition(str(condition)) == condition
    assert str(condition) == f"{signal} {op} {number}{unit}"
    assert pickle.loads(pickle.dumps(condition)) == condition


@given(text_conditions, spaces)
def test_text_conditions_round_trip(parts, space):
    signal, op, status, quote = parts
    condition = parse_condition(f"{signal}{space}{op}{space}{quote}{status}{quote}")
    assert condition.value == status
    assert parse_condition(str(condition)) == condition


@given(st.from_regex(r"[a-z_]{1,20}", fullmatch=True).filter(lambda name: name not in SIGNALS))
def test_every_unknown_signal_is_refused_with_a_hint(name):
    with pytest.raises(ConditionError, match=r"\((did you mean '\w+'\?|known signals: .*)\)$"):
        parse_condition(f"{name} > 1")
