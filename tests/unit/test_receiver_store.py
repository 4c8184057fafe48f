"""The receiver's SQLite store: dedupe by id, counts, order, one transaction."""

from __future__ import annotations

import sqlite3

import pytest

from keruta_actors.receiver import LogStore

METADATA = {"processId": 7, "command": "job.sh", "hostname": "h", "agentVersion": "0.1.0"}


def log(line: int, task_id: str = "task-1", source: str = "stdout", **fields) -> dict:
    record = {
        "type": "log",
        "id": f"run-{source}-{line}",
        "taskId": task_id,
        "timestamp": "2026-11-29T01:02:03.456Z",
        "source": source,
        "level": "INFO",
        "message": f"line {line}",
        "lineNumber": line,
        "metadata": METADATA,
    }
    return record | fields


@pytest.fixture
def store(tmp_path):
    store = LogStore(str(tmp_path / "logs.db"))
    yield store
    store.close()


def test_insert_returns_the_records_that_were_new(store):
    assert store.insert([log(1), log(2)]) == [log(1), log(2)]
    assert store.insert([log(2), log(3)]) == [log(3)]
    assert store.count("task-1") == 3


def test_large_calls_store_every_row(store):
    assert len(store.insert([log(n) for n in range(1, 1235)])) == 1234
    assert [r["lineNumber"] for r in store.fetch("task-1")] == list(range(1, 1235))


def test_duplicates_within_one_call_are_dropped(store):
    assert store.insert([log(1), log(1), log(1, message="a retry says the same")]) == [log(1)]
    assert [r["message"] for r in store.fetch("task-1")] == ["line 1"]


def test_counts_are_per_task(store):
    store.insert([log(1, task_id="a"), log(2, task_id="a"), log(1, task_id="b", id="other")])
    assert (store.count("a"), store.count("b"), store.count("none")) == (2, 1, 0)


def test_fetch_orders_by_source_then_line_number(store):
    store.insert([log(10), log(2, source="stderr"), log(9), log(1, source="stderr"), log(1, source="agent")])
    keys = [(r["source"], r["lineNumber"]) for r in store.fetch("task-1")]
    assert keys == [("agent", 1), ("stderr", 1), ("stderr", 2), ("stdout", 9), ("stdout", 10)]


def test_fetch_returns_the_log_message_without_type(store):
    record = log(1, level="WARN", message="naïve ✓ \x00 text", metadata={"truncated": True, "n": 3})
    store.insert([record])
    expected = dict(record)
    del expected["type"]
    assert store.fetch("task-1") == [expected]


def test_metadata_keeps_json_types_between_equal_looking_dicts(store):
    # 1, 1.0 and true compare equal in Python; the stored JSON must not merge them.
    values = [1, True, 1.0, 1, {"x": 1}, {"x": True}]
    store.insert([log(n, metadata={"v": value}) for n, value in enumerate(values, 1)])
    stored = [r["metadata"]["v"] for r in store.fetch("task-1")]
    assert [(type(v), v) for v in stored] == [(type(v), v) for v in values]
    assert type(stored[5]["x"]) is bool


def test_a_call_is_one_transaction(store):
    store.insert([log(1)])
    records = [log(n) for n in range(2, 502)]
    records[-1]["lineNumber"] = 2**64  # SQLite integers stop at 2**63 - 1
    with pytest.raises(OverflowError):
        store.insert(records)
    assert store.count("task-1") == 1


def test_the_file_is_in_wal_mode(store):
    with sqlite3.connect(store.path) as other:
        assert other.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_reopening_keeps_the_rows(tmp_path):
    path = str(tmp_path / "logs.db")
    first = LogStore(path)
    first.insert([log(1)])
    first.close()
    again = LogStore(path)
    assert again.insert([log(1), log(2)]) == [log(2)]
    again.close()
