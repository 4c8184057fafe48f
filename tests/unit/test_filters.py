import re
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keruta_actors.policy.filters import FilterChain, PatternSet, SecretMasker
from keruta_actors.records import LEVEL, LEVELS, LINE_NUMBER, MESSAGE, make_record

TOKEN = "eyJhbGciOiJIUzI1NiJ9.payload.sig"


def records(*lines, level="INFO"):
    return [make_record("run", "stdout", n, 0.0, level, line, {}) for n, line in enumerate(lines, 1)]


def messages(kept):
    return [record[MESSAGE] for record in kept]


def test_default_excludes_drop_secret_looking_lines_in_any_case():
    chain = FilterChain()
    kept, dropped = chain.apply(
        records("starting", "password=hunter2", "DB_PASSWORD=x", "Secret sauce", "TOKEN ok", "done")
    )
    assert messages(kept) == ["starting", "done"]
    assert dropped == Counter(excluded=4)


def test_configured_secret_is_masked_in_kept_lines():
    chain = FilterChain(exclude_patterns=(), secrets=(TOKEN, "", "k3y"))
    kept, dropped = chain.apply(records(f"auth {TOKEN} then {TOKEN}", "key=k3y", "nothing"))
    assert messages(kept) == ["auth **** then ****", "key=****", "nothing"]
    assert not dropped


def test_masking_leaves_the_rest_of_the_record_alone():
    [original] = records(f"x {TOKEN}")
    [masked], _ = FilterChain(exclude_patterns=(), secrets=(TOKEN,)).apply([original])
    assert masked[:MESSAGE] == original[:MESSAGE] and masked[MESSAGE + 1 :] == original[MESSAGE + 1 :]


def test_include_patterns_keep_only_matching_lines():
    chain = FilterChain(exclude_patterns=(), include_patterns=(r"^step \d+", "DONE"))
    kept, dropped = chain.apply(records("step 1", "noise", "all done", "xstep 2"))
    assert messages(kept) == ["step 1", "all done"]
    assert dropped == Counter(not_included=2)


def test_empty_include_list_keeps_everything():
    kept, _ = FilterChain(exclude_patterns=(), include_patterns=()).apply(records("a", "b"))
    assert messages(kept) == ["a", "b"]


def test_records_below_the_level_are_counted_not_shipped():
    chain = FilterChain(min_level="WARN")
    batch = records("d", level="DEBUG") + records("i", level="INFO") + records("w", level="WARN")
    batch += records("e password", level="ERROR") + records("e", level="ERROR")
    kept, dropped = chain.apply(batch)
    assert messages(kept) == ["w", "e"]
    assert dropped == Counter(below_level=2, excluded=1)


def test_a_record_is_counted_under_its_first_reason():
    chain = FilterChain(include_patterns=("keep",), min_level="INFO")
    batch = records("keep password") + records("drop", level="DEBUG") + records("other")
    assert chain.apply(batch)[1] == Counter(excluded=1, below_level=1, not_included=1)


def test_multi_line_messages_are_matched_as_a_whole():
    chain = FilterChain(exclude_patterns=("^secret",), include_patterns=())
    kept, dropped = chain.apply(records("alert fired\nsecret: x", "alert fired\nall good"))
    assert messages(kept) == ["alert fired\nall good"]
    assert dropped == Counter(excluded=1)


def test_invalid_pattern_and_level_are_refused():
    with pytest.raises(re.error):
        FilterChain(exclude_patterns=("(unclosed",))
    with pytest.raises(KeyError):
        FilterChain(min_level="LOUD")


def test_mask_never_rebuilds_a_secret_containing_the_mask_character():
    masker = SecretMasker(["a*", "**"])
    assert "*" not in masker.mask
    masked = masker.mask_text("aa*** a** **a*")
    assert "a*" not in masked and "**" not in masked


@pytest.mark.parametrize(
    "pattern",
    [".*password.*", "^ab", "b$", "^$", "a.c", r"\bid\b", "tok(en)?s", "[^x]+y", r"a\s+b", "x*",
     "(?=a)ab", r"\Aa", r"c\Z", "(?s)a.b", r"a\.*", "(?i)AB", "a|^c"],
)  # fmt: skip
def test_joined_search_means_per_line_search(pattern):
    lines = ["ab", "cab", "", "a\tb", "xy", "id", "tokens", "c", "abc", "a.b", "a", "x a  b"]
    expected = {index for index, line in enumerate(lines) if re.search(pattern, line, re.IGNORECASE)}
    assert PatternSet([pattern]).matching(lines) == expected


LINES = st.lists(st.text(alphabet="abxyPASSWORDpassword .\t$^*", max_size=30), max_size=20)


TRICKY_PATTERNS = ["^ab", "b$", "[^x]+y", "x*", r"\s", "a.b", ".*password.*", "SS", r"\bab\b", "(?=a)"]


@settings(deadline=None)
@given(patterns=st.lists(st.sampled_from(TRICKY_PATTERNS), max_size=3), lines=LINES)
def test_pattern_sets_match_like_a_per_line_search(patterns, lines):
    expected = {
        index
        for index, line in enumerate(lines)
        if any(re.search(pattern, line, re.IGNORECASE) for pattern in patterns)
    }
    assert PatternSet(patterns).matching(lines) == expected


@settings(deadline=None)
@given(
    secret=st.text(min_size=1, max_size=12),
    parts=st.lists(st.text(max_size=12), min_size=1, max_size=12),
    levels=st.lists(st.sampled_from(LEVELS), min_size=12, max_size=12),
    min_level=st.sampled_from(LEVELS),
    excludes=st.lists(st.sampled_from([".*password.*", "^a", "b$", "[^x]y"]), max_size=2),
)
def test_secrets_never_leave_and_every_record_is_accounted_for(
    secret, parts, levels, min_level, excludes
):
    lines = [secret.join([part, *parts[:i], ""]) for i, part in enumerate(parts)]
    batch = [make_record("run", "stderr", n, 0.0, levels[n], text, {}) for n, text in enumerate(lines)]
    kept, dropped = FilterChain(excludes, (".*",), min_level, (secret, "other")).apply(batch)
    assert all(secret not in record[MESSAGE] for record in kept)
    assert len(kept) + sum(dropped.values()) == len(batch)
    numbers = [record[LINE_NUMBER] for record in kept]
    assert numbers == sorted(numbers)
    assert all(record[LEVEL] in LEVELS for record in kept)


@pytest.mark.parametrize("every", [1, 2, 50])
def test_kept_records_keep_their_order_whatever_the_share_excluded(every):
    lines = [f"line {n} password" if n % every == 0 else f"line {n}" for n in range(200)]
    kept, dropped = FilterChain().apply(records(*lines))
    assert messages(kept) == [line for line in lines if "password" not in line]
    assert dropped["excluded"] == len(lines) - len(kept)
