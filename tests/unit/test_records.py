import json
import time

from hypothesis import given
from hypothesis import strategies as st

from keruta_actors.records import LEVELS, LogMessageEncoder, make_record, rfc3339, to_log_message

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


@given(st.lists(records, max_size=20), texts)
def test_encoder_writes_the_same_json_value_as_the_reference(batch, task_id):
    encoder = LogMessageEncoder(task_id)
    for record in batch:
        assert json.loads(encoder.encode(record)) == json.loads(json.dumps(to_log_message(record, task_id)))


def test_shared_metadata_is_encoded_once_and_changes_are_not_missed():
    encoder = LogMessageEncoder("t")
    shared = {"processId": 1}
    first = make_record("r", "stdout", 1, 0.0, "INFO", "a", shared)
    assert json.loads(encoder.encode(first))["metadata"] == {"processId": 1}
    other = make_record("r", "stdout", 2, 0.0, "INFO", "b", {"processId": 1, "partial": True})
    assert json.loads(encoder.encode(other))["metadata"] == {"processId": 1, "partial": True}


def test_timestamps_are_rfc3339_utc_with_milliseconds():
    assert rfc3339(0.25) == "1970-01-01T00:00:00.250Z"
    encoder = LogMessageEncoder("t")
    now = time.time()
    encoded = json.loads(encoder.encode(make_record("r", "stdout", 1, now, "INFO", "x", {})))
    assert encoded["timestamp"] == rfc3339(now)
