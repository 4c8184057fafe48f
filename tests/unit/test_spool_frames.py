"""The spool's frames (policy/spool_frames.py) and decisions (policy/spool.py)."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keruta_actors.policy.spool import FsyncPolicy, Limits, StatusTally, StreamStatus, deletable
from keruta_actors.policy.spool_frames import (
    HEADER_SIZE,
    Damage,
    MetadataCodec,
    Stream,
    decode_records,
    encode_mark,
    encode_records,
    parse_header,
    scan_marks,
    scan_records,
)
from keruta_actors.records import RecordBlock

SHARED = ({"processId": 7, "command": "make"},) * 3


def block(first=1, count=3, source="stdout", namespace="ns", text="line"):
    lines = [(f"{text} {n}", {"partial": True} if n % 5 == 0 else None) for n in range(first, first + count)]
    return RecordBlock.of_lines(namespace, source, first, 1700000000.25, ["INFO"] * count, lines, SHARED)


def frame_bytes(b, codec=None):
    parts, size = encode_records(b, codec or MetadataCodec())
    data = b"".join(bytes(part) for part in parts)
    assert len(data) == size
    return data


def decoded(data):
    header = parse_header(data)
    return decode_records(header, data[HEADER_SIZE : header.frame_size], MetadataCodec())


messages = st.text(st.characters(blacklist_characters="\n", blacklist_categories=("Cs",)), max_size=40)


@given(st.lists(messages, min_size=1, max_size=20), st.sampled_from(["stdout", "stderr", "agent"]),
       st.integers(1, 2**40), st.text(min_size=1, max_size=20))
def test_a_block_comes_back_from_its_frame_record_for_record(texts, source, first, namespace):
    original = RecordBlock.of_lines(namespace, source, first, 12.5, ["WARN"] * len(texts),
                                    [(text, None) for text in texts], SHARED)
    assert list(decoded(frame_bytes(original)).rows()) == list(original.rows())


def test_per_line_metadata_and_the_header_fields_survive():
    data = frame_bytes(block(first=4, count=4))
    header = parse_header(data)
    assert (header.count, header.first, header.last, header.frame_size) == (4, 4, 7, len(data))
    assert list(decoded(data).rows()) == list(block(first=4, count=4).rows())
    assert dict(decoded(data).extras) == {1: {"partial": True}}


def test_a_flipped_bit_anywhere_is_caught():
    data = frame_bytes(block())
    for at in range(0, len(data), 7):
        damaged = bytearray(data)
        damaged[at] ^= 0x10
        frames, damage = scan_records(bytes(damaged))
        assert frames == [] and damage == [Damage(0, len(data))]


def test_a_scan_skips_damage_and_finds_the_frames_after_it():
    one, two = frame_bytes(block(1)), frame_bytes(block(4))
    torn = two[: len(two) // 2]
    frames, damage = scan_records(one + b"\0" * 9 + two + torn)
    assert [(frame.offset, frame.header.first) for frame in frames] == [(0, 1), (len(one) + 9, 4)]
    assert damage == [Damage(len(one), 9), Damage(len(one) + 9 + len(two), len(torn))]
    assert frames[0].stream == Stream("ns", "stdout")


def test_marks_keep_the_highest_line_per_stream_and_skip_damage():
    a, b = Stream("ns", "stdout"), Stream("ns", "stderr")
    log = encode_mark(a, 5) + encode_mark(b, 2) + b"junk" + encode_mark(a, 9) + encode_mark(a, 3)
    torn = encode_mark(b, 8)[:-1]
    marks, damage = scan_marks(log + torn)
    assert marks == {a: 9, b: 2}
    assert [d.size for d in damage] == [4, len(torn)]


def test_metadata_is_encoded_once_per_change():
    codec = MetadataCodec()
    first = codec.encode(SHARED, ())
    assert codec.encode(SHARED, ()) is first
    assert codec.encode(SHARED, ((0, {"partial": True}),)) != first


def test_limits_rotate_before_a_segment_overflows_and_report_full():
    limits = Limits(max_size=100, segment_size=10)
    assert not limits.rotate(0, 50)  # an oversized frame still goes whole into a fresh segment
    assert not limits.rotate(4, 6) and limits.rotate(5, 6)
    assert not limits.full(99) and limits.full(100)
    assert limits.would_exceed(90, 11) and not limits.would_exceed(90, 10)


def test_fsync_on_an_interval_only_when_something_was_written():
    policy = FsyncPolicy("interval", 1.0)
    assert not policy.due(False, 0.0, 5.0)
    assert not policy.due(True, 4.5, 5.0) and policy.due(True, 4.0, 5.0)
    assert FsyncPolicy("always", 1.0).after_write() and not policy.after_write()
    assert not FsyncPolicy("never", 1.0).due(True, 0.0, 99.0)
    with pytest.raises(ValueError):
        FsyncPolicy("sometimes", 1.0)


def test_only_wholly_confirmed_segments_other_than_the_active_one_go():
    out, err = Stream("ns", "stdout"), Stream("ns", "stderr")
    segments = {1: {out: 10}, 2: {out: 20, err: 3}, 3: {err: 9}, 4: {out: 25}}
    assert deletable(segments, {out: 20, err: 2}, active=4) == [1]
    assert deletable(segments, {out: 30, err: 9}, active=4) == [1, 2, 3]
    assert deletable(segments, {out: 30, err: 9}, active=None) == [1, 2, 3, 4]


def test_status_adds_up_frames_per_stream():
    out, err = Stream("ns", "stdout"), Stream("ns", "stderr")
    tally = StatusTally({out: 4}, {out: 12, err: 2})
    tally.add(out, 3, 100, 5)
    tally.add(out, 5, 120, 8)
    assert tally.result() == (StreamStatus(err, 0, 0, 0, 2, 0), StreamStatus(out, 8, 220, 5, 12, 4))


def test_a_block_with_uneven_columns_is_refused_not_written_unreadable():
    uneven = RecordBlock.of_lines("ns", "stdout", 1, 0.0, ["INFO"] * 3, [("a", None), ("b", None)], SHARED)
    with pytest.raises(ValueError, match="different lengths"):
        encode_records(uneven, MetadataCodec())
