from datetime import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keruta_actors.units import (
    DURATION_UNITS,
    SIZE_UNITS,
    parse_cron,
    parse_duration,
    parse_size,
)

# --- durations -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, seconds",
    [
        ("500ms", 0.5), ("1s", 1.0), ("5m", 300.0), ("2h", 7200.0), ("30d", 2_592_000.0),
        ("1h30m", 5400.0), ("1.5h", 5400.0), (".5s", 0.5), ("2 m", 120.0), (" 30s ", 30.0),
        ("30", 30.0), ("0.25", 0.25), ("0", 0.0), ("0s", 0.0),
        (1, 1.0), (0.5, 0.5), (0, 0.0),
    ],
)
def test_durations(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)
    assert isinstance(parse_duration(text), float)


@pytest.mark.parametrize(
    "bad", ["", "abc", "5x", "s", "5 minutes", "5M", "1S", "-1s", "-1", -1, -0.5, True, None,
            float("nan"), float("inf"), "inf", [1], "1s-", "1..5s"],
)
def test_bad_durations_raise(bad):
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(bad)


def test_a_bad_duration_message_names_the_text_and_the_units():
    with pytest.raises(ValueError) as error:
        parse_duration("5 minutes")
    assert "'5 minutes'" in str(error.value)
    assert "ms, s, m, h, d" in str(error.value)


@given(st.integers(0, 10**6), st.sampled_from(sorted(DURATION_UNITS)))
def test_a_number_and_a_unit_is_the_product(number, unit):
    assert parse_duration(f"{number}{unit}") == pytest.approx(number * DURATION_UNITS[unit])


@given(st.floats(0, 1e9, allow_nan=False))
def test_a_bare_number_is_seconds_whatever_its_form(number):
    assert parse_duration(number) == number
    assert parse_duration(repr(number)) == number


@given(st.lists(st.tuples(st.integers(0, 1000), st.sampled_from(sorted(DURATION_UNITS))), min_size=1, max_size=4))
def test_compound_durations_add_up(parts):
    text = "".join(f"{n}{u}" for n, u in parts)
    assert parse_duration(text) == pytest.approx(sum(n * DURATION_UNITS[u] for n, u in parts))


# --- sizes -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, size",
    [
        ("512KB", 512 * 1024), ("100MB", 100 * 1024**2), ("10GB", 10 * 1024**3), ("1TB", 1024**4),
        ("1KiB", 1024), ("5MiB", 5 * 1024**2), ("2GiB", 2 * 1024**3),
        ("10gb", 10 * 1024**3), ("100 MB", 100 * 1024**2), ("7B", 7), ("1.5KB", 1536),
        ("0.1KB", 102),  # rounds down to whole bytes
        ("123", 123), (123, 123), (0, 0), (1e9, 10**9),
    ],
)
def test_sizes(text, size):
    assert parse_size(text) == size
    assert type(parse_size(text)) is int


def test_kb_is_binary_like_kib():
    # The documented choice: KB/MB/GB follow the rotation tools (1024-based).
    assert parse_size("1KB") == parse_size("1KiB") == 1024
    assert parse_size("1MB") == 1024 * 1024


@pytest.mark.parametrize("bad", ["", "MB", "10XB", "10 K B", "-1", "-1MB", -5, True, 1.5, None, "ten", [1]])
def test_bad_sizes_raise(bad):
    with pytest.raises(ValueError, match="invalid size"):
        parse_size(bad)


@given(st.integers(0, 10**6), st.sampled_from(["KB", "MB", "GB", "TB"]))
def test_decimal_looking_units_equal_the_binary_ones(number, unit):
    binary = unit[0] + "iB"
    assert parse_size(f"{number}{unit}") == parse_size(f"{number}{binary}") == number * SIZE_UNITS[unit.upper()]


@given(st.integers(0, 2**62))
def test_bare_integers_are_bytes(number):
    assert parse_size(number) == parse_size(str(number)) == number


# --- cron ---------------------------------------------------------------------------------


def test_cron_nightly_schedule():
    cron = parse_cron("0 2 * * *")
    assert cron.minutes == {0} and cron.hours == {2}
    assert cron.days == set(range(1, 32)) and cron.months == set(range(1, 13))
    assert cron.weekdays == set(range(7))
    assert cron.matches(datetime(2024, 5, 17, 2, 0))
    assert not cron.matches(datetime(2024, 5, 17, 2, 1))
    assert not cron.matches(datetime(2024, 5, 17, 3, 0))


def test_cron_lists_ranges_steps_and_names():
    cron = parse_cron("*/15 9-17/4 1,15 jan-MAR mon-fri")
    assert cron.minutes == {0, 15, 30, 45}
    assert cron.hours == {9, 13, 17}
    assert cron.days == {1, 15}
    assert cron.months == {1, 2, 3}
    assert cron.weekdays == {1, 2, 3, 4, 5}
    assert parse_cron("5/20 * * * *").minutes == {5, 25, 45}


def test_cron_sunday_is_0_or_7():
    assert parse_cron("0 0 * * 7").weekdays == {0}
    assert parse_cron("0 0 * * sun").weekdays == {0}


def test_cron_day_of_month_or_weekday_when_both_restricted():
    cron = parse_cron("0 0 13 * fri")
    assert cron.matches(datetime(2024, 9, 13, 0, 0))  # Friday the 13th
    assert cron.matches(datetime(2024, 9, 6, 0, 0))  # a Friday
    assert cron.matches(datetime(2024, 8, 13, 0, 0))  # a Tuesday the 13th
    assert not cron.matches(datetime(2024, 9, 7, 0, 0))
    only_weekday = parse_cron("0 0 * * fri")
    assert not only_weekday.matches(datetime(2024, 8, 13, 0, 0))


def test_cron_macros():
    assert parse_cron("@daily") == parse_cron("0 0 * * *")
    assert parse_cron("@hourly") == parse_cron("0 * * * *")
    assert parse_cron("@weekly").weekdays == {0}


@pytest.mark.parametrize(
    "bad, fragment",
    [
        ("60 * * * *", "minute field: 60 is out of range 0-59"),
        ("0 24 * * *", "hour field: 24 is out of range 0-23"),
        ("0 0 0 * *", "day of month field: 0 is out of range 1-31"),
        ("0 0 * 13 *", "month field"),
        ("0 0 * * 8", "day of week field"),
        ("* * *", "expected 5 fields"),
        ("* * * * * *", "expected 5 fields"),
        ("5-1 * * * *", "runs backwards"),
        ("*/0 * * * *", "step"),
        ("a * * * *", "not a number"),
        ("0 0 * foo *", "month field"),
        ("*-5 * * * *", "cannot read"),
        ("1,,2 * * * *", "cannot read"),
        ("@sometimes", "expected 5 fields"),
        ("", "expected 5 fields"),
    ],
)
def test_bad_cron_expressions_name_the_field(bad, fragment):
    with pytest.raises(ValueError) as error:
        parse_cron(bad)
    assert fragment in str(error.value)
    assert repr(bad) in str(error.value)


def test_cron_needs_a_string():
    with pytest.raises(ValueError):
        parse_cron(5)


@given(st.integers(0, 59), st.integers(0, 23), st.integers(1, 31), st.integers(1, 12), st.integers(0, 6))
def test_single_values_parse_to_themselves(minute, hour, day, month, weekday):
    cron = parse_cron(f"{minute} {hour} {day} {month} {weekday}")
    assert (cron.minutes, cron.hours, cron.days, cron.months, cron.weekdays) == (
        {minute}, {hour}, {day}, {month}, {weekday})


@given(st.integers(0, 59), st.integers(0, 59), st.integers(1, 60))
def test_ranges_with_steps_match_python_ranges(a, b, step):
    low, high = min(a, b), max(a, b)
    assert parse_cron(f"{low}-{high}/{step} * * * *").minutes == set(range(low, high + 1, step))
