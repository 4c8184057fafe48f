import re
from collections import Counter
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keruta_actors.policy.filters import (
    FilterChain,
    PatternSet,
    SecretMasker,
    credentials,
)
from keruta_actors.records import (
    LEVEL,
    LEVEL_RANK,
    LEVELS,
    LINE_NUMBER,
    MESSAGE,
    RecordBlock,
    empty_block,
    make_record,
)

TOKEN = "eyJhbGciOiJIUzI1NiJ9.payload.sig"
SHARED = ({"processId": 3}, {"processId": 3}, {"agentVersion": "1"})


def block(rows):
    return RecordBlock.of_rows("run", rows, SHARED)


def records(*lines, level="INFO", first=1):
    return [
        make_record("run", "stdout", n, 0.0, level, line, SHARED[0]) for n, line in enumerate(lines, first)
    ]


def apply(chain, rows):
    """The chain applied to `rows` as one block; the kept block checked to be one."""
    kept, dropped = chain.apply(block(rows))
    assert isinstance(kept, RecordBlock)
    return kept, dropped


def messages(kept):
    return kept.messages()


def test_default_excludes_drop_secret_looking_lines_in_any_case():
    chain = FilterChain()
    kept, dropped = apply(
        chain, records("starting", "password=hunter2", "DB_PASSWORD=x", "Secret sauce", "TOKEN ok", "done")
    )
    assert messages(kept) == ["starting", "done"]
    assert list(kept.line_numbers) == [1, 6]
    assert dropped == Counter(excluded=4)


def test_configured_secret_is_masked_in_kept_lines():
    chain = FilterChain(exclude_patterns=(), secrets=(TOKEN, "", "k3y"))
    kept, dropped = apply(chain, records(f"auth {TOKEN} then {TOKEN}", "key=k3y", "nothing"))
    assert messages(kept) == ["auth **** then ****", "key=****", "nothing"]
    assert not dropped


def test_masking_leaves_the_rest_of_the_record_alone():
    plain, own_keys = [
        make_record("run", "stderr", 4, 12.5, "WARN", f"x {TOKEN}", SHARED[1]),
        make_record("run", "stderr", 5, 12.5, "ERROR", f"{TOKEN} y", {**SHARED[1], "partial": True}),
    ]
    kept, _ = apply(FilterChain(exclude_patterns=(), secrets=(TOKEN,)), [plain, own_keys])
    for masked, original in zip(kept.rows(), [plain, own_keys], strict=True):
        assert TOKEN not in masked[MESSAGE]
        assert masked[:MESSAGE] == original[:MESSAGE] and masked[MESSAGE + 1 :] == original[MESSAGE + 1 :]


def test_include_patterns_keep_only_matching_lines():
    chain = FilterChain(exclude_patterns=(), include_patterns=(r"^step \d+", "DONE"))
    kept, dropped = apply(chain, records("step 1", "noise", "all done", "xstep 2"))
    assert messages(kept) == ["step 1", "all done"]
    assert dropped == Counter(not_included=2)


def test_empty_include_list_keeps_everything():
    kept, _ = apply(FilterChain(exclude_patterns=(), include_patterns=()), records("a", "b"))
    assert messages(kept) == ["a", "b"]


def test_records_below_the_level_are_counted_not_shipped():
    chain = FilterChain(min_level="WARN")
    batch = records("d", level="DEBUG", first=1) + records("i", level="INFO", first=2)
    batch += records("w", level="WARN", first=3)
    batch += records("e password", level="ERROR", first=4) + records("e", level="ERROR", first=5)
    kept, dropped = apply(chain, batch)
    assert messages(kept) == ["w", "e"]
    assert list(kept.line_numbers) == [3, 5] and [row[LEVEL] for row in kept.rows()] == ["WARN", "ERROR"]
    assert dropped == Counter(below_level=2, excluded=1)


def test_a_record_is_counted_under_its_first_reason():
    chain = FilterChain(include_patterns=("keep",), min_level="INFO")
    batch = records("keep password", first=1) + records("drop", level="DEBUG", first=2)
    batch += records("other", first=3)
    assert apply(chain, batch)[1] == Counter(excluded=1, below_level=1, not_included=1)


def test_anchors_match_at_each_record_of_a_block():
    # The chain searches a block's text whole: ^ and $ must still mean each message's ends.
    chain = FilterChain(exclude_patterns=("^secret", "fired$"), include_patterns=())
    kept, dropped = apply(chain, records("alert fired", "secret: x", "no secret here", "fired twice"))
    assert messages(kept) == ["no secret here", "fired twice"]
    assert dropped == Counter(excluded=2)


def test_multi_line_messages_are_matched_as_a_whole():
    # A block's messages hold no newline; a PatternSet given lines that do
    # searches each line whole rather than mapping hits by counting newlines.
    assert PatternSet(["^secret"]).matching(["alert fired\nsecret: x", "alert fired\nall good"]) == {0}
    assert PatternSet(["fired$"]).matching(["alert fired\nsecret: x", "fired"]) == {0, 1}


def test_an_empty_block_gives_an_empty_block_and_counts_nothing():
    kept, dropped = FilterChain(min_level="WARN", secrets=(TOKEN,)).apply(empty_block("run", SHARED))
    assert len(kept) == 0 and kept.messages() == [] and not dropped


def test_a_block_all_below_the_level_keeps_nothing():
    kept, dropped = apply(FilterChain(min_level="ERROR"), records("a", "b", level="WARN"))
    assert len(kept) == 0 and kept.messages() == [] and list(kept.rows()) == []
    assert dropped == Counter(below_level=2)


def test_credentials_are_the_configured_token_and_api_key():
    assert credentials(SimpleNamespace(token="t0k", api_key="k3y")) == ("t0k", "k3y")
    assert credentials(SimpleNamespace(token="", api_key="k3y")) == ("k3y",)
    assert credentials(SimpleNamespace(token=None, api_key=None)) == ()


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
    batch = [make_record("run", "stderr", n, 0.0, levels[n], text, SHARED[1]) for n, text in enumerate(lines)]
    kept, dropped = apply(FilterChain(excludes, (".*",), min_level, (secret, "other")), batch)
    # A block's messages hold no newline: the chain sees each line as of_rows stored it.
    stored = block(batch).messages()
    kept_rows = list(kept.rows())
    assert all(secret not in record[MESSAGE] for record in kept_rows)
    assert len(kept) + sum(dropped.values()) == len(batch)
    numbers = [record[LINE_NUMBER] for record in kept_rows]
    assert numbers == sorted(numbers) and len(set(numbers)) == len(numbers)
    at_level = [n for n in range(len(batch)) if LEVEL_RANK[levels[n]] >= LEVEL_RANK[min_level]]
    assert set(numbers) <= set(at_level)
    assert dropped["below_level"] == len(batch) - len(at_level)
    masker = SecretMasker((secret, "other"))
    for record in kept_rows:
        original = batch[record[LINE_NUMBER]]
        assert record[MESSAGE] == masker.mask_text(stored[record[LINE_NUMBER]])
        assert record[:MESSAGE] == original[:MESSAGE] and record[MESSAGE + 1 :] == original[MESSAGE + 1 :]


@pytest.mark.parametrize("every", [1, 2, 50])
def test_kept_records_keep_their_order_whatever_the_share_excluded(every):
    lines = [f"line {n} password" if n % every == 0 else f"line {n}" for n in range(200)]
    kept, dropped = apply(FilterChain(), records(*lines))
    assert messages(kept) == [line for line in lines if "password" not in line]
    assert dropped["excluded"] == len(lines) - len(kept)
