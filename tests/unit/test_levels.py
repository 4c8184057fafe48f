import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keruta_actors.policy.levels import default_level, detect_level
from keruta_actors.records import LEVELS


@pytest.mark.parametrize(
    ("line", "level"),
    [
        ("ERROR: disk full", "ERROR"),
        ("ERROR disk full", "ERROR"),
        ("[error] disk full", "ERROR"),
        ("[Warn] slow", "WARN"),
        ("<debug> x", "DEBUG"),
        ("2024-01-01 12:00:00 WARN x", "WARN"),
        ("2024-01-01T12:00:00.123Z INFO starting", "INFO"),
        ("[2024-01-01 12:00:00] CRITICAL boom", "ERROR"),
        ("2024-01-01 12:00:00,123 - app.db - ERROR - lost connection", "ERROR"),
        ("2024-01-01 12:00:00.123 [main] DEBUG c.e.Foo - x", "DEBUG"),
        ("WARNING:root:low memory", "WARN"),
        ("CRITICAL:app:gone", "ERROR"),
        ("time=2024-01-01T12:00:00Z level=warn msg=slow", "WARN"),
        ('time="2024-01-01" level="error" msg="x"', "ERROR"),
        ("E1129 12:00:00.123456    1234 main.go:12] failed", "ERROR"),
        ("W1129 12:00:00.123456    1234 main.go:12] careful", "WARN"),
        ("I1129 12:00:00.123456    1234 main.go:12] ok", "INFO"),
        ("error: pathspec 'x' did not match", "ERROR"),
        ("fatal: not a git repository", "ERROR"),
        ("warning: unused variable", "WARN"),
        ("Error: Cannot find module 'x'", "ERROR"),
        ("PANIC everything", "ERROR"),
        ("TRACE enter f()", "DEBUG"),
        ("NOTICE: fyi", "INFO"),
        ('{"level": "warn", "msg": "x"}', "WARN"),
        ('{"severity": "ERROR", "message": "x"}', "ERROR"),
        ('{"lvl": "Information", "msg": "x"}', "INFO"),
        ('{"level": 50, "msg": "pino"}', "ERROR"),
        ('{"level": 30, "msg": "pino"}', "INFO"),
        ('{"level": 20, "msg": "pino"}', "DEBUG"),
    ],
)
def test_detects_common_shapes(line, level):
    assert detect_level(line, "UNSET") == level


@pytest.mark.parametrize(
    "line",
    [
        "",
        "Processed 120 files, 0 errors",
        "error handling is done by the caller",
        "Error handling is done by the caller",
        "retrying after an error in step 3",
        "1 2 3 4 5 6 7 8 ERROR far beyond the first tokens",
        "ERRORS: 0",
        "MY_ERROR_CODE=3",
        "Traceback (most recent call last):",
        '{"msg": "ERROR in text is not a level field"}',
        '{"level": "loud"}',
        '{"level": true}',
        '{"level": 5}',
        "[1, 2, 3]",
        "{not json at all",
        "I12 not klog",
    ],
)
def test_prose_and_unknown_values_keep_the_default(line):
    assert detect_level(line, "UNSET") == "UNSET"


def test_the_first_level_named_wins():
    assert detect_level("INFO retry after ERROR", "UNSET") == "INFO"


def test_default_levels_per_source():
    assert default_level("stdout") == "INFO"
    assert default_level("stderr") == "WARN"
    assert default_level("agent") == "INFO"
    assert default_level("stderr", stderr="ERROR") == "ERROR"
    assert default_level("stdout", stdout="DEBUG") == "DEBUG"


@settings(deadline=None)
@given(st.text(max_size=200))
def test_any_text_gives_a_level_or_the_default(text):
    assert detect_level(text, "UNSET") in (*LEVELS, "UNSET")
