import json

from keruta_actors.policy.receipts import Receipts, encode_batch
from keruta_actors.records import (
    LogMessageEncoder,
    RecordBlock,
    make_record,
    to_log_message,
)

SHARED = ({"processId": 9}, {"processId": 9}, {})
ROWS = (
    make_record("r", "stderr", 1, 0.0, "WARN", "m1", SHARED[1]),
    make_record("r", "stderr", 2, 0.0, "WARN", "m2", {**SHARED[1], "partial": True}),
)
RECORDS = RecordBlock.of_rows("r", ROWS, SHARED)


def test_without_ack_capability_a_pong_confirms_every_batch_sent_before_its_ping():
    receipts = Receipts()
    first = receipts.sent((1, 2), now=0.0)
    second = receipts.sent((3,), now=0.1)
    assert receipts.oldest_unanswered() == 0.0
    assert receipts.ponged(second.marker) == (1, 2, 3)  # the first pong was lost
    assert receipts.ponged(first.marker) == ()
    assert receipts.oldest_unanswered() is None


def test_with_ack_capability_batches_wait_for_their_ack():
    receipts = Receipts()
    receipts.announced(["batch", "ack"])
    assert receipts.sent((5,), now=0.0) is None
    assert receipts.acked(5) == (5,)
    assert receipts.acked(5) == ()
    assert receipts.acked("junk") == ()


def test_a_pong_with_a_foreign_payload_confirms_nothing():
    receipts = Receipts()
    receipts.sent((1,), now=0.0)
    assert receipts.ponged("not-a-marker") == ()


def test_frames_for_plain_and_batch_servers():
    frames = encode_batch(7, RECORDS, LogMessageEncoder("t"), batch_frames=False)
    plain = [json.loads(frame) for frame in frames]
    assert [frame["type"] for frame in plain] == ["log", "log"]
    assert plain[0]["source"] == "stderr" and plain[0]["taskId"] == "t" and plain[0]["lineNumber"] == 1
    # Every record of the block, in order, as the reference LogMessage, its own metadata keys included.
    assert plain == [to_log_message(row, "t") for row in ROWS]
    assert [frame["id"] for frame in plain] == ["r-stderr-1", "r-stderr-2"]
    assert plain[1]["metadata"] == {"processId": 9, "partial": True}
    (batch,) = encode_batch(7, RECORDS, LogMessageEncoder("t"), batch_frames=True)
    decoded = json.loads(batch)
    assert decoded["type"] == "logs" and decoded["batchId"] == 7 and len(decoded["logs"]) == 2
    assert decoded["taskId"] == "t" and decoded["logs"] == plain
