import json
import random
import tracemalloc

from hypothesis import given, settings
from hypothesis import strategies as st

from keruta_actors.policy.lines import LineSplitter


def split_all(data: bytes, max_length: int = 8192) -> list:
    splitter = LineSplitter(max_length, partial_timeout=5.0)
    return splitter.feed(data, now=0.0) + splitter.finish(now=0.0)


def expected_lines(data: bytes, max_length: int) -> list:
    """SPEC §4 applied to the whole stream at once."""
    *complete, last = data.decode("utf-8", "replace").split("\n")
    expected = []
    for line in complete + ([last] if last else []):
        line = line.removesuffix("\r")
        extra = {"truncated": True, "originalLength": len(line)} if len(line) > max_length else None
        expected.append((line[:max_length], extra))
    return expected


def texts(lines: list) -> list[str]:
    return [text for text, _ in lines]


def test_splits_on_newline_and_keeps_the_rest_for_later():
    splitter = LineSplitter(100, 5.0)
    assert splitter.feed(b"one\ntwo\nthr", now=0.0) == [("one", None), ("two", None)]
    assert splitter.feed(b"ee\n", now=0.1) == [("three", None)]
    assert splitter.finish(now=0.2) == []


def test_removes_one_trailing_carriage_return():
    assert texts(split_all(b"crlf\r\ntwo\r\r\n\r\n")) == ["crlf", "two\r", ""]


def test_carriage_return_and_newline_in_different_reads():
    splitter = LineSplitter(100, 5.0)
    assert splitter.feed(b"crlf\r", now=0.0) == []
    assert splitter.feed(b"\nnext\n", now=0.0) == [("crlf", None), ("next", None)]


def test_invalid_utf8_becomes_replacement_characters():
    assert texts(split_all(b"bad \xff\xfe end\n\xc3\n")) == ["bad \ufffd\ufffd end", "\ufffd"]


def test_a_character_cut_by_a_read_boundary_is_decoded_whole():
    splitter = LineSplitter(100, 5.0)
    euro = "€".encode()
    assert splitter.feed(b"price " + euro[:1], now=0.0) == []
    assert splitter.feed(euro[1:2], now=0.0) == []
    assert splitter.feed(euro[2:] + b"\n", now=0.0) == [("price €", None)]


def test_nul_and_ansi_escapes_are_kept():
    assert texts(split_all(b"a\x00b \x1b[31mred\x1b[0m\n")) == ["a\x00b \x1b[31mred\x1b[0m"]


def test_long_line_is_truncated_with_its_original_length():
    [(text, extra)] = split_all(b"x" * 20_000 + b"\n")
    assert text == "x" * 8192
    assert extra == {"truncated": True, "originalLength": 20_000}


def test_long_line_read_in_pieces_is_truncated_the_same_way():
    splitter = LineSplitter(8192, 5.0)
    lines = []
    for _ in range(20):
        lines += splitter.feed(b"y" * 999 + "é".encode(), now=0.0)
    lines += splitter.feed(b"\r\nshort\n", now=0.0)
    assert lines == [
        ((("y" * 999 + "é") * 9)[:8192], {"truncated": True, "originalLength": 20_000}),
        ("short", None),
    ]


def test_original_length_counts_characters_not_bytes():
    [(text, extra)] = split_all("é".encode() * 10 + b"\n", max_length=4)
    assert text == "éééé"
    assert extra == {"truncated": True, "originalLength": 10}


def test_a_line_of_exactly_max_length_plus_carriage_return_is_not_truncated():
    assert split_all(b"abcd\r\n", max_length=4) == [("abcd", None)]


def test_last_line_without_newline_is_shipped_at_end_of_stream():
    splitter = LineSplitter(100, 5.0)
    assert splitter.feed(b"first\nlast words", now=0.0) == [("first", None)]
    assert splitter.finish(now=1.0) == [("last words", None)]
    assert splitter.finish(now=1.0) == []


def test_incomplete_character_at_end_of_stream_becomes_replacement():
    splitter = LineSplitter(100, 5.0)
    splitter.feed(b"cut \xe2\x82", now=0.0)
    assert splitter.finish(now=0.0) == [("cut \ufffd", None)]


def test_partial_line_is_shipped_after_the_timeout_then_its_continuation():
    splitter = LineSplitter(100, partial_timeout=2.0)
    assert splitter.deadline() is None
    splitter.feed(b"progress: 10%", now=10.0)
    splitter.feed(b" 20%", now=11.0)  # more bytes do not postpone the deadline
    assert splitter.deadline() == 12.0
    assert splitter.expire(now=11.9) == []
    assert splitter.expire(now=12.0) == [("progress: 10% 20%", {"partial": True})]
    assert splitter.deadline() is None
    assert splitter.feed(b" done\nnext\n", now=13.0) == [
        (" done", {"continuation": True}),
        ("next", None),
    ]


def test_a_continuation_can_itself_be_partial():
    splitter = LineSplitter(100, partial_timeout=1.0)
    splitter.feed(b"a", now=0.0)
    assert splitter.expire(now=1.0) == [("a", {"partial": True})]
    splitter.feed(b"b", now=2.0)
    assert splitter.expire(now=3.0) == [("b", {"partial": True, "continuation": True})]
    splitter.feed(b"c", now=4.0)
    assert splitter.finish(now=4.5) == [("c", {"continuation": True})]


def test_an_empty_continuation_is_not_shipped():
    splitter = LineSplitter(100, partial_timeout=1.0)
    splitter.feed(b"whole line\r", now=0.0)
    assert splitter.expire(now=1.0) == [("whole line", {"partial": True})]
    assert splitter.feed(b"\nnext\n", now=2.0) == [("next", None)]


def test_a_long_partial_line_is_also_marked_truncated():
    splitter = LineSplitter(4, partial_timeout=1.0)
    splitter.feed(b"abcdefgh", now=0.0)
    [(text, extra)] = splitter.expire(now=1.0)
    assert text == "abcd"
    assert extra == {"partial": True, "truncated": True, "originalLength": 8}


def test_one_megabyte_of_random_binary_does_not_crash():
    data = random.Random(7).randbytes(1 << 20)
    lines = split_all(data)
    assert lines
    for text, _ in lines:
        json.dumps(text, ensure_ascii=False).encode("utf-8")
    assert sum(len(text) for text, _ in lines) <= len(data)


def test_a_huge_line_without_newline_keeps_memory_bounded():
    splitter = LineSplitter(8192, partial_timeout=60.0)
    chunk = b"z" * (1 << 20)
    tracemalloc.start()
    try:
        for _ in range(32):
            assert splitter.feed(chunk, now=0.0) == []
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20  # a few chunks, not the 32 MiB written
    [(text, extra)] = splitter.finish(now=1.0)
    assert len(text) == 8192
    assert extra == {"truncated": True, "originalLength": 32 << 20}


# Pieces of valid and invalid UTF-8 (cut, overlong, surrogate, out of range)
# that hypothesis would rarely build byte by byte.
TRICKY = [b"\n", b"\r", b"ab", "€".encode(), "😀".encode(), b"\xe2\x82", b"\xf0\x9f", b"\xff",
          b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\x00", b"\x1b[0m"]  # fmt: skip


@settings(deadline=None)
@given(
    data=st.binary(max_size=300) | st.lists(st.sampled_from(TRICKY), max_size=60).map(b"".join),
    cuts=st.lists(st.integers(min_value=0, max_value=300), max_size=8),
    max_length=st.integers(min_value=1, max_value=12),
)
def test_read_boundaries_never_change_the_lines(data, cuts, max_length):
    whole = split_all(data, max_length)
    splitter = LineSplitter(max_length, partial_timeout=5.0)
    pieces, start = [], 0
    for cut in sorted(cut % (len(data) + 1) for cut in cuts):
        pieces.append(data[start:cut])
        start = cut
    pieces.append(data[start:])
    lines = []
    for piece in pieces:
        lines += splitter.feed(piece, now=0.0)
    assert lines + splitter.finish(now=0.0) == whole == expected_lines(data, max_length)
    for text, _ in whole:
        json.dumps(text, ensure_ascii=False).encode("utf-8")


def rebuild(lines: list) -> list[str]:
    """What a receiver shows: partial records joined with their continuations.
    A line ends at a record without `partial`, or before one without
    `continuation`, or at the end of the stream."""
    whole, current = [], None
    for text, extra in lines:
        extra = extra or {}
        if extra.get("continuation"):
            current += text
        else:
            if current is not None:
                whole.append(current)
            current = text
        if not extra.get("partial"):
            whole.append(current)
            current = None
    return whole + ([] if current is None else [current])


@settings(deadline=None)
@given(
    # No \r: a partial record's trailing \r is dropped as if it ended the line.
    data=st.lists(st.sampled_from([piece for piece in TRICKY if piece != b"\r"]), max_size=60).map(b"".join),
    steps=st.lists(st.tuples(st.integers(min_value=0, max_value=300), st.booleans()), max_size=10),
)
def test_partial_records_and_their_continuations_rebuild_the_lines(data, steps):
    splitter = LineSplitter(max_length=1000, partial_timeout=1.0)
    lines, start, now = [], 0, 0.0
    for cut, wait in sorted((cut % (len(data) + 1), wait) for cut, wait in steps):
        lines += splitter.feed(data[start:cut], now=now)
        start = cut
        if wait:
            now += 1.0
            lines += splitter.expire(now=now)
    lines += splitter.feed(data[start:], now=now) + splitter.finish(now=now)
    assert rebuild(lines) == texts(expected_lines(data, 1000))
