import json
import pickle
import time

from hypothesis import given
from hypothesis import strategies as st

from keruta_actors.records import (
    ID,
    LEVELS,
    LINE_NUMBER,
    MESSAGE,
    METADATA,
    SOURCE_CODE,
    SOURCES,
    LogMessageEncoder,
    RecordBlock,
    empty_block,
    make_record,
    rfc3339,
    to_log_message,
)

texts = st.text(st.characters(codec="utf-8"), max_size=200)
metadata = st.dictionaries(st.sampled_from(["processId", "command", "truncated", "originalLength", "partial"]),
                           st.one_of(st.integers(0, 10**6), texts, st.booleans()), max_size=5)
records = st.builds(
    make_record,
    st.text("0123456789abcdef", min_size=1, max_size=12),
    st.sampled_from(["stdout", "stderr", "agent"]),
    st.integers(1, 10**9),
    st.floats(0, 4_000_000_000, allow_nan=False),
    st.sampled_from(LEVELS),
    texts,
    metadata,
)


ENCODED_SHARED = ({"processId": 1, "command": "job"}, {"processId": 1}, {})
one_run_id = st.text("0123456789abcdef.", min_size=1, max_size=12)
line_texts = st.text(st.characters(codec="utf-8", blacklist_characters="\n"), max_size=200)
# Rows of one block: its metadata is its source's shared dict, or its own.
drawn_rows = st.tuples(st.sampled_from(SOURCES), st.integers(1, 10**9), st.floats(0, 4_000_000_000, allow_nan=False),
                 st.sampled_from(LEVELS), line_texts, st.one_of(st.none(), metadata))


def block_of(run_id, drawn) -> RecordBlock:
    return RecordBlock.of_rows(run_id, [
        make_record(run_id, source, number, timestamp, level, text,
                    ENCODED_SHARED[SOURCE_CODE[source]] if own is None else own)
        for source, number, timestamp, level, text, own in drawn
    ], ENCODED_SHARED)


@given(one_run_id, st.lists(drawn_rows, max_size=20), texts)
def test_encoder_writes_the_same_json_value_as_the_reference(run_id, drawn, task_id):
    block = block_of(run_id, drawn)
    encoded = LogMessageEncoder(task_id).encode_block(block)
    assert [json.loads(text) for text in encoded] == [to_log_message(row, task_id) for row in block.rows()]


@given(one_run_id, st.lists(drawn_rows, max_size=20), texts)
def test_for_rest_the_metadata_also_carries_what_the_keruta_api_throws_away(run_id, drawn, task_id):
    block = block_of(run_id, drawn)
    encoded = LogMessageEncoder(task_id, position_in_metadata=True).encode_block(block)
    for text, row in zip(encoded, block.rows(), strict=True):
        expected = to_log_message(row, task_id)
        position = {key: expected[key] for key in ("lineNumber", "timestamp", "id")}
        expected["metadata"] = {**expected["metadata"], **position}
        assert json.loads(text) == expected


def test_shared_metadata_is_encoded_once_and_changes_are_not_missed():
    encoder = LogMessageEncoder("t")
    first = block_of("r", [("stdout", 1, 0.0, "INFO", "a", None)])
    assert json.loads(encoder.encode_block(first)[0])["metadata"] == ENCODED_SHARED[0]
    other = block_of("r", [("stdout", 2, 0.0, "INFO", "b", {"processId": 1, "partial": True})])
    assert json.loads(encoder.encode_block(other)[0])["metadata"] == {"processId": 1, "command": "job", "partial": True}


def test_timestamps_are_rfc3339_utc_with_milliseconds():
    assert rfc3339(0.25) == "1970-01-01T00:00:00.250Z"
    now = time.time()
    encoded = json.loads(LogMessageEncoder("t").encode_block(block_of("r", [("stdout", 1, now, "INFO", "x", None)]))[0])
    assert encoded["timestamp"] == rfc3339(now)


# RecordBlock: records column by column, as they travel between actors.

SHARED = ({"processId": 7, "command": "make"}, {"processId": 7, "stream": "err"}, {"agentVersion": "1.0"})
no_newline = st.text(st.characters(codec="utf-8", exclude_characters="\n"), max_size=40)
# Where only the structure matters, short messages keep the examples quick.
short = st.text("ab \t\r", max_size=4)
extras = st.dictionaries(st.sampled_from(["truncated", "originalLength", "partial", "continuation"]),
                         st.one_of(st.integers(0, 10**6), st.booleans()), min_size=1, max_size=3)


def rows(messages=short, max_size=10, shared=SHARED):
    """Rows as the agent makes them: each source's metadata is the shared
    dict itself, or that dict plus per-line keys."""

    def row(fields):
        code, extra, line_number, timestamp, level, message = fields
        metadata = shared[code] if extra is None else {**shared[code], **extra}
        return make_record("run", SOURCES[code], line_number, timestamp, level, message, metadata)

    fields = st.tuples(
        st.integers(0, 2),
        st.one_of(st.none(), extras),
        st.integers(0, 2**63 - 1),
        st.floats(0, 4_000_000_000, allow_nan=False),
        st.sampled_from(LEVELS),
        messages,
    )
    return st.lists(fields.map(row), max_size=max_size)


def of_rows(made, run_id="run", shared=SHARED):
    return RecordBlock.of_rows(run_id, made, shared)


def with_message(row, message):
    return row[:MESSAGE] + (message,) + row[MESSAGE + 1 :]


# The source reader shares one dict between all sources.
READER_SHARED = (SHARED[0],) * len(SOURCES)


@given(st.sampled_from([SHARED, READER_SHARED]), st.data())
def test_rows_without_newlines_round_trip_exactly(shared, data):
    made = data.draw(rows(no_newline, shared=shared))
    block = of_rows(made, shared=shared)
    assert len(block) == len(made)
    assert list(block.rows()) == made
    assert block.messages() == [row[MESSAGE] for row in made]
    assert list(block.line_numbers) == [row[LINE_NUMBER] for row in made]


@given(rows(messages=st.text(st.characters(codec="utf-8"), max_size=40)))
def test_newlines_in_a_message_become_spaces(made):
    assert list(of_rows(made).rows()) == [with_message(row, row[MESSAGE].replace("\n", " ")) for row in made]


def test_rows_share_their_sources_metadata_dict_unless_the_line_has_its_own_keys():
    made = [
        make_record("run", "stdout", 1, 5.0, "INFO", "a", SHARED[0]),
        make_record("run", "stdout", 2, 5.0, "WARN", "b", {**SHARED[0], "truncated": True}),
        make_record("run", "agent", 3, 5.0, "ERROR", "c", SHARED[2]),
    ]
    block = of_rows(made)
    assert block.extras == ((1, {**SHARED[0], "truncated": True}),)
    first, second, third = block.rows()
    assert first[METADATA] is SHARED[0] and third[METADATA] is SHARED[2]
    assert second[METADATA] == {**SHARED[0], "truncated": True}
    assert [row[ID] for row in block.rows()] == ["run-stdout-1", "run-stdout-2", "run-agent-3"]


@given(
    source=st.sampled_from(SOURCES),
    first=st.integers(1, 10**9),
    timestamp=st.floats(0, 4_000_000_000, allow_nan=False),
    lines=st.lists(st.tuples(no_newline, st.one_of(st.none(), st.just({}), extras), st.sampled_from(LEVELS)),
                   max_size=12),
)
def test_lines_read_together_become_consecutive_records(source, first, timestamp, lines):
    shared = SHARED[SOURCE_CODE[source]]
    block = RecordBlock.of_lines("run", source, first, timestamp, [level for *_, level in lines],
                                 [(text, extra) for text, extra, _ in lines], SHARED)
    expected = [
        make_record("run", source, first + n, timestamp, level, text, {**shared, **extra} if extra else shared)
        for n, (text, extra, level) in enumerate(lines)
    ]
    assert list(block.rows()) == expected
    # A line without keys of its own carries the shared dict itself.
    assert all(row[METADATA] is shared for row, (_, extra, _) in zip(block.rows(), lines) if not extra)
    assert list(of_rows(expected, shared=SHARED).rows()) == expected


@given(st.lists(rows(max_size=5), max_size=4))
def test_concatenated_blocks_equal_one_block_of_all_their_rows(groups):
    blocks = [of_rows(group) for group in groups]
    assert all(blocks[0].joins(block) for block in blocks)
    everything = [row for group in groups for row in group]
    if blocks:
        assert RecordBlock.concat(blocks) == of_rows(everything)
        assert list(RecordBlock.concat(blocks).rows()) == everything


@given(rows(), st.data())
def test_cut_pieces_have_the_given_sizes_and_concatenate_back(made, data):
    block = of_rows(made)
    points = sorted(data.draw(st.lists(st.integers(0, len(made)), max_size=6)))
    bounds = [0, *points, len(made)]
    sizes = [stop - start for start, stop in zip(bounds, bounds[1:])]
    pieces = block.cut(sizes)
    assert [len(piece) for piece in pieces] == sizes
    assert [list(piece.rows()) for piece in pieces] == [made[a:b] for a, b in zip(bounds, bounds[1:])]
    assert RecordBlock.concat(pieces) == block


@given(rows(), st.data())
def test_span_is_the_rows_between_two_positions(made, data):
    block = of_rows(made)
    start = data.draw(st.integers(0, len(made)))
    stop = data.draw(st.integers(start, len(made)))
    assert list(block.span(start, stop).rows()) == made[start:stop]
    assert block.span(start, stop, block.messages()) == block.span(start, stop)
    assert block.span(start, stop).messages() == [row[MESSAGE] for row in made[start:stop]]


@given(rows(), st.data())
def test_select_keeps_exactly_the_chosen_rows_with_their_replaced_messages(made, data):
    block = of_rows(made)
    chosen = data.draw(st.lists(st.booleans(), min_size=len(made), max_size=len(made)))
    indices = [index for index, keep in enumerate(chosen) if keep]
    replaced = data.draw(st.dictionaries(st.sampled_from(indices), short) if indices else st.just({}))
    selected = block.select(indices, replaced)
    expected = [with_message(made[i], replaced.get(i, made[i][MESSAGE])) for i in indices]
    assert list(selected.rows()) == expected
    assert list(block.select(indices).rows()) == [made[i] for i in indices]


def test_per_line_metadata_follows_its_record_through_cut_concat_and_select():
    lines = [("zero", None), ("one", {"partial": True}), ("two", None), ("three", {"truncated": True})]
    block = RecordBlock.of_lines("run", "stdout", 10, 1.0, ["INFO"] * 4, lines, SHARED)

    def keys(b):
        return {row[LINE_NUMBER]: row[METADATA] for row in b.rows() if row[METADATA] is not SHARED[0]}

    expected = {11: {**SHARED[0], "partial": True}, 13: {**SHARED[0], "truncated": True}}
    assert keys(block) == expected
    head, tail = block.cut([2, 2])
    assert keys(head) == {11: expected[11]} and keys(tail) == {13: expected[13]}
    assert head.extras == ((1, {"partial": True}),) and tail.extras == ((1, {"truncated": True}),)
    assert keys(RecordBlock.concat([tail, head])) == expected
    assert RecordBlock.concat([tail, head]).extras == ((1, {"truncated": True}), (3, {"partial": True}))
    assert keys(block.select([0, 3], {3: "THREE"})) == {13: expected[13]}
    assert keys(block.span(2, 4)) == {13: expected[13]}


@given(rows(no_newline))
def test_blocks_survive_pickling(made):
    block = of_rows(made)
    copy = pickle.loads(pickle.dumps(block))
    assert copy == block
    assert list(copy.rows()) == list(block.rows())


def test_blocks_of_one_run_and_metadata_join_and_others_do_not():
    block = of_rows([])
    assert block.joins(of_rows([], shared=tuple(dict(d) for d in SHARED)))
    assert not block.joins(of_rows([], run_id="other"))
    assert not block.joins(of_rows([], shared=({}, {}, {})))


def test_repr_does_not_grow_with_the_block():
    made = [make_record("run", "stdout", n, 0.0, "INFO", "x" * 100, SHARED[0]) for n in range(10_000)]
    block = of_rows(made)
    assert repr(block) == str(block) == "RecordBlock(n=10000)"


def test_empty_blocks_have_no_records_and_no_messages():
    for block in (empty_block(), empty_block("run", SHARED), of_rows([]),
                  RecordBlock.of_lines("run", "stdout", 1, 0.0, [], [], SHARED)):
        assert len(block) == 0 and not block
        assert block.messages() == [] and list(block.rows()) == []
    assert of_rows([]) == empty_block("run", SHARED)
    # One record with an empty message is not an empty block.
    one = of_rows([make_record("run", "stdout", 1, 0.0, "INFO", "", SHARED[0])])
    assert len(one) == 1 and one.messages() == [""]
    assert RecordBlock.concat([empty_block("run", SHARED), one, of_rows([])]).messages() == [""]
