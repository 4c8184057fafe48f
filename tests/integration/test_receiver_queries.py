"""The receiver's REST log endpoints (GET logs, stats, DELETE, export, task
list) and their errors, against a running receiver, with `requests` only, as
a client written from the API specification would use them."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import sqlite3
import uuid

import pytest
import requests

from keruta_actors.receiver import ReceiverThread

TOKEN = "query-token"
SOURCES = ("stdout", "stderr", "agent")
LEVELS = ("DEBUG", "INFO", "WARN", "ERROR")
TRICKY = 'comma, "quote", tab\t, escape \x1b[31m, cr\r, lf\n and ✓'


def record(task_id: str, n: int, **fields) -> dict:
    source = SOURCES[n % 3]
    return {
        "id": f"{task_id}-{n}",
        "taskId": task_id,
        "timestamp": f"2026-01-01T00:{n // 60:02d}:{n % 60:02d}.000Z",
        "source": source,
        "level": LEVELS[n % 4],
        "message": f"message {n}",
        "lineNumber": n,
        "metadata": {"n": n, "nested": {"ok": True}},
    } | fields


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    with ReceiverThread(str(tmp_path_factory.mktemp("q") / "logs.db")) as receiver:
        yield receiver


@pytest.fixture
def task(api):
    """A task with 250 records (n = 1..250, one a second from 00:00:01)."""
    task_id = "q-" + uuid.uuid4().hex[:8]
    records = [record(task_id, n) for n in range(1, 251)]
    records[41]["message"] = TRICKY
    assert requests.post(f"{api.api_url}/tasks/{task_id}/logs/batch", json=records, timeout=5).status_code == 201
    return task_id


def get(api, path: str, **params) -> requests.Response:
    return requests.get(f"{api.api_url}{path}", params=params, timeout=10)


def page(api, task_id: str, **params) -> dict:
    response = get(api, f"/tasks/{task_id}/logs", **params)
    assert response.status_code == 200, response.text
    return response.json()


def refused(response: requests.Response, status: int, code: str) -> str:
    assert (response.status_code, response.json()["code"]) == (status, code), response.text
    return response.json()["message"]


# --- GET logs ---------------------------------------------------------------------


def test_pages_are_spring_pages_in_time_then_line_order(api, task):
    first = page(api, task)
    assert {k: first[k] for k in ("totalElements", "totalPages", "size", "number", "first", "last")} == {
        "totalElements": 250, "totalPages": 3, "size": 100, "number": 0, "first": True, "last": False,
    }  # fmt: skip
    assert first["content"][0] == record(task, 1)
    last = page(api, task, page=2)
    assert (len(last["content"]), last["first"], last["last"]) == (50, False, True)
    every = [r["lineNumber"] for p in range(3) for r in page(api, task, page=p)["content"]]
    assert every == list(range(1, 251))
    beyond = page(api, task, page=7)
    assert (beyond["content"], beyond["last"], beyond["totalElements"]) == ([], True, 250)


def test_a_size_over_the_cap_is_served_at_the_cap(api, task):
    body = page(api, task, size=5000)
    assert (body["size"], len(body["content"]), body["totalPages"]) == (1000, 250, 1)


@pytest.mark.parametrize(
    "params, expected",
    [
        ({"source": "stderr"}, [n for n in range(1, 251) if n % 3 == 1]),
        ({"level": "ERROR"}, [n for n in range(1, 251) if n % 4 == 3]),
        ({"source": "stdout", "level": "DEBUG"}, [n for n in range(1, 251) if n % 12 == 0]),
        ({"source": "agent,stderr"}, [n for n in range(1, 251) if n % 3 != 0]),
        ({"from": "2026-01-01T00:01:00Z", "to": "2026-01-01T00:01:09Z"}, list(range(60, 70))),
        ({"from": "2026-01-01T09:03:00+09:00"}, list(range(180, 251))),  # another offset, same instant
        ({"to": "2026-01-01T00:00:03.5"}, [1, 2, 3]),  # no offset: UTC
    ],
)
def test_filters(api, task, params, expected):
    body = page(api, task, size=1000, **params)
    assert [r["lineNumber"] for r in body["content"]] == expected
    assert body["totalElements"] == len(expected)


def test_records_posted_with_other_timestamp_forms_sort_by_instant(api):
    task_id = "ts-" + uuid.uuid4().hex[:8]
    stamps = ["2026-01-01T09:00:02+09:00", "2026-01-01T00:00:01Z", "2026-01-01T00:00:03.5"]
    posted = [record(task_id, n, timestamp=t) for n, t in enumerate(stamps, 1)]
    requests.post(f"{api.api_url}/tasks/{task_id}/logs/batch", json=posted, timeout=5).raise_for_status()
    content = page(api, task_id)["content"]
    assert [(r["lineNumber"], r["timestamp"]) for r in content] == [
        (2, "2026-01-01T00:00:01.000Z"), (1, "2026-01-01T00:00:02.000Z"), (3, "2026-01-01T00:00:03.500Z"),
    ]  # fmt: skip


@pytest.mark.parametrize(
    "params, name",
    [
        ({"page": "-1"}, "page"),
        ({"page": "one"}, "page"),
        ({"size": "0"}, "size"),
        ({"size": "1.5"}, "size"),
        ({"source": "stdin"}, "source"),
        ({"level": "TRACE"}, "level"),
        ({"from": "yesterday"}, "from"),
        ({"to": "2026-13-01T00:00:00Z"}, "to"),
        ({"from": "2026-01-02T00:00:00Z", "to": "2026-01-01T00:00:00Z"}, "from"),
    ],
)
def test_a_bad_parameter_is_a_400_that_names_it(api, task, params, name):
    assert f"parameter {name!r}" in refused(get(api, f"/tasks/{task}/logs", **params), 400, "INVALID_LOG_FORMAT")


@pytest.mark.parametrize("path", ["/logs", "/logs/stats", "/logs/export"])
def test_an_unknown_task_is_not_found(api, path):
    refused(get(api, f"/tasks/never-seen{path}"), 404, "TASK_NOT_FOUND")
    response = requests.delete(f"{api.api_url}/tasks/never-seen/logs", timeout=5)
    refused(response, 404, "TASK_NOT_FOUND")


# --- stats and delete -------------------------------------------------------------


def test_stats(api, task):
    assert get(api, f"/tasks/{task}/logs/stats").json() == {
        "taskId": task,
        "totalLogs": 250,
        "logCounts": {"stdout": 83, "stderr": 84, "agent": 83},
        "levelCounts": {"DEBUG": 62, "INFO": 63, "WARN": 63, "ERROR": 62},
        "timeRange": {"start": "2026-01-01T00:00:01.000Z", "end": "2026-01-01T00:04:10.000Z"},
    }


def test_delete_before_then_all_and_the_task_stays_known(api, task):
    response = requests.delete(f"{api.api_url}/tasks/{task}/logs", params={"before": "2026-01-01T00:01:40Z"}, timeout=5)
    assert response.status_code == 200 and response.json()["deletedCount"] == 99
    stats = get(api, f"/tasks/{task}/logs/stats").json()
    assert (stats["totalLogs"], stats["timeRange"]["start"]) == (151, "2026-01-01T00:01:40.000Z")
    assert sum(stats["logCounts"].values()) == sum(stats["levelCounts"].values()) == 151
    refused(requests.delete(f"{api.api_url}/tasks/{task}/logs?before=soon", timeout=5), 400, "INVALID_LOG_FORMAT")
    assert requests.delete(f"{api.api_url}/tasks/{task}/logs", timeout=5).json()["deletedCount"] == 151
    empty = page(api, task)
    assert (empty["content"], empty["totalElements"], empty["totalPages"], empty["first"], empty["last"]) == (
        [], 0, 0, True, True,
    )  # fmt: skip
    stats = get(api, f"/tasks/{task}/logs/stats").json()
    assert (stats["totalLogs"], stats["timeRange"]) == (0, {"start": None, "end": None})


# --- export -----------------------------------------------------------------------


def test_export_json_round_trips(api, task):
    response = get(api, f"/tasks/{task}/logs/export", format="json")
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.headers["Content-Disposition"] == f'attachment; filename="{task}-logs.json"'
    exported = json.loads(response.text)
    assert exported == page(api, task, size=1000)["content"]
    assert exported[41]["message"] == TRICKY


def test_export_csv_round_trips_awkward_messages(api, task):
    response = get(api, f"/tasks/{task}/logs/export", format="csv")
    assert response.headers["Content-Type"].startswith("text/csv")
    assert response.headers["Content-Disposition"].endswith('-logs.csv"')
    rows = list(csv.DictReader(io.StringIO(response.content.decode("utf-8"), newline="")))
    assert len(rows) == 250
    assert rows[41]["message"] == TRICKY
    assert [int(float(r["lineNumber"])) for r in rows] == list(range(1, 251))
    assert json.loads(rows[0]["metadata"]) == {"n": 1, "nested": {"ok": True}}


def test_export_txt_has_one_line_per_record(api, task):
    response = get(api, f"/tasks/{task}/logs/export", format="txt", **{"from": "2026-01-01T00:00:40Z", "to": "2026-01-01T00:00:45Z"})
    assert response.headers["Content-Type"].startswith("text/plain")
    lines = response.text.splitlines()
    assert len(lines) == 6
    assert lines[0] == "2026-01-01T00:00:40.000Z [stderr] DEBUG message 40"
    assert lines[2] == "2026-01-01T00:00:42.000Z [stdout] WARN  " + TRICKY.replace("\r", "\\r").replace("\n", "\\n")


def test_export_of_an_empty_selection_is_still_a_valid_file(api, task):
    after = {"from": "2030-01-01T00:00:00Z"}
    assert json.loads(get(api, f"/tasks/{task}/logs/export", format="json", **after).text) == []
    assert get(api, f"/tasks/{task}/logs/export", format="csv", **after).text.startswith('"id","taskId"')
    refused(get(api, f"/tasks/{task}/logs/export", format="xml"), 400, "INVALID_LOG_FORMAT")


def test_export_spans_many_chunks(api, monkeypatch):
    from keruta_actors.receiver import logs_export

    monkeypatch.setattr(logs_export, "CHUNK", 7)
    task_id = "chunks-" + uuid.uuid4().hex[:8]
    # Equal timestamps across chunk edges: picking up after a row must use the whole key.
    posted = [record(task_id, n, timestamp="2026-01-01T00:00:00.000Z") for n in range(1, 51)]
    requests.post(f"{api.api_url}/tasks/{task_id}/logs/batch", json=posted, timeout=5).raise_for_status()
    exported = json.loads(get(api, f"/tasks/{task_id}/logs/export").text)
    assert sorted(r["lineNumber"] for r in exported) == list(range(1, 51))
    assert exported == page(api, task_id, size=1000)["content"]


def test_task_list_names_known_tasks(api, task):
    listed = {t["taskId"]: t["totalLogs"] for t in get(api, "/tasks").json()}
    assert listed[task] == 250


# --- server-side errors, rate limit, authentication --------------------------------


def test_a_failing_database_is_a_500(tmp_path):
    with ReceiverThread(str(tmp_path / "logs.db")) as receiver:
        requests.post(f"{receiver.api_url}/tasks/t/logs", json=record("t", 1), timeout=5).raise_for_status()
        with contextlib.closing(sqlite3.connect(receiver.db_path)) as db:
            db.execute("DROP TABLE logs")
        for path in ("/tasks/t/logs", "/tasks/t/logs/stats", "/tasks/t/logs/export"):
            refused(get(receiver, path), 500, "DATABASE_ERROR")


def test_reads_over_the_limit_are_429_with_retry_after(tmp_path):
    with ReceiverThread(str(tmp_path / "logs.db"), reads_per_minute=3) as receiver:
        requests.post(f"{receiver.api_url}/tasks/t/logs", json=record("t", 1), timeout=5).raise_for_status()
        assert [get(receiver, "/tasks/t/logs").status_code for _ in range(3)] == [200, 200, 200]
        response = get(receiver, "/tasks/t/logs")
        refused(response, 429, "RATE_LIMIT_EXCEEDED")
        assert 1 <= int(response.headers["Retry-After"]) <= 20
        # Ingest is never limited: the agent must not lose records to readers.
        assert requests.post(f"{receiver.api_url}/tasks/t/logs", json=record("t", 2), timeout=5).status_code == 201


@pytest.mark.parametrize("path", ["/tasks/t/logs", "/tasks/t/logs/stats", "/tasks/t/logs/export", "/tasks"])
def test_reads_need_the_token_when_one_is_set(tmp_path, path):
    with ReceiverThread(str(tmp_path / "logs.db"), token=TOKEN) as receiver:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        requests.post(f"{receiver.api_url}/tasks/t/logs", json=record("t", 1), headers=headers, timeout=5).raise_for_status()
        url = f"{receiver.api_url}{path}"
        for given in ({}, {"Authorization": "Bearer wrong"}):
            response = requests.get(url, headers=given, timeout=5)
            assert (response.status_code, response.json()["status"], response.json()["path"]) == (401, 401, f"/api/v1{path}")
        assert requests.get(url, headers=headers, timeout=5).status_code == 200
        assert requests.get(url, headers={"X-API-Key": TOKEN}, timeout=5).status_code == 200
