import json

from keruta_actors.policy.receipts import Receipts, encode_batch
from keruta_actors.records import LogMessageEncoder, make_record

RECORDS = tuple(make_record("r", "stderr", i, 0.0, "WARN", f"m{i}", {"processId": 9}) for i in (1, 2))


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
    plain = [json.loads(frame) for frame in encode_batch(7, RECORDS, LogMessageEncoder("t"), batch_frames=False)]
    assert [frame["type"] for frame in plain] == ["log", "log"]
    assert plain[0]["source"] == "stderr" and plain[0]["taskId"] == "t" and plain[0]["lineNumber"] == 1
    (batch,) = encode_batch(7, RECORDS, LogMessageEncoder("t"), batch_frames=True)
    decoded = json.loads(batch)
    assert decoded["type"] == "logs" and decoded["batchId"] == 7 and len(decoded["logs"]) == 2
