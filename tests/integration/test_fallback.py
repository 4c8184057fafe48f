"""REST fallback end to end (SPEC §5, §6): the real agent, the real receiver
behind a scripted front that refuses the WebSocket or fails REST requests."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import pytest

API = "/api/v1/tasks/{task}/logs"

# Prints numbered lines until the file named by argv[1] exists (or argv[2] lines).
WRITER = textwrap.dedent(
    """
    import os, sys, time
    stop, most = sys.argv[1], int(sys.argv[2])
    for i in range(1, most + 1):
        print(f"line {i}", flush=True)
        if os.path.exists(stop):
            break
        time.sleep(0.01)
    """
)


@pytest.fixture
def falling_back(agent):
    """An agent that gives up on the WebSocket after two quick failures."""
    agent.env["KERUTA_WEBSOCKET_RECONNECT_INTERVAL"] = "100ms"
    agent.env["KERUTA_WEBSOCKET_MAX_RECONNECT_ATTEMPTS"] = "2"
    agent.env["KERUTA_API_RETRY_INTERVAL"] = "100ms"
    return agent


def stdout_lines(receiver, task):
    return [r["lineNumber"] for r in receiver.store.fetch(task) if r["source"] == "stdout"]


def test_with_the_websocket_refused_rest_delivers_every_line(falling_back, receiver, scripted_api):
    scripted_api.websocket = False
    done = falling_back.run("start", "--task-id", "rest1", "--", sys.executable, "-c",
                            "for i in range(3000): print('line', i)")
    err = done.stderr.decode()
    assert done.returncode == 0, err[-2000:]
    assert stdout_lines(receiver, "rest1") == list(range(1, 3001))
    assert "switching to the REST API" in err and "sending logs to the REST API" in err
    posts = [path for _, path in scripted_api.posts()]
    assert posts and set(posts) == {API.format(task="rest1") + "/batch"}
    assert len(posts) < 3000 / 10  # many records to a request, not one batch each


def test_rest_requests_are_bounded_by_the_api_rate_limit(falling_back, receiver, scripted_api):
    """With no batch endpoint every record is a request: 30 of them (and the
    one that finds no batch endpoint) at 1200 a minute in bursts of 5 take
    at least (31 - 5) / 20 s."""
    scripted_api.websocket = False
    scripted_api.batch_endpoint = False
    falling_back.env["KERUTA_API__RATELIMIT__REQUESTSPERMINUTE"] = "1200"
    falling_back.env["KERUTA_API__RATELIMIT__BURSTSIZE"] = "5"
    done = falling_back.run("start", "--task-id", "rest2", "--", sys.executable, "-c",
                            "for i in range(30): print('line', i)")
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    assert stdout_lines(receiver, "rest2") == list(range(1, 31))
    times = [at for at, _ in scripted_api.posts()]
    assert len(times) == 31
    assert times[-1] - times[0] >= 1.25
    for i, start in enumerate(times):
        for j in range(i, len(times)):
            assert j - i + 1 <= 5 + 20 * (times[j] - start) + 0.5


def test_the_agent_goes_back_to_the_websocket_when_it_returns(falling_back, receiver, scripted_api, tmp_path):
    scripted_api.websocket = False
    stop = tmp_path / "stop"
    writer = tmp_path / "writer.py"
    writer.write_text(WRITER)
    err = tmp_path / "agent.err"
    process = falling_back.popen("start", "--task-id", "back", "--", sys.executable, str(writer), str(stop), "3000",
                                 stdout=subprocess.DEVNULL, stderr=open(err, "wb"))
    wait_until(lambda: scripted_api.posts(), "the REST fallback never posted")
    scripted_api.websocket = True
    wait_until(lambda: "the REST fallback is retired" in err.read_text(), "the agent never went back to the WebSocket")
    time.sleep(0.3)  # a request already under way when the switch came may still finish
    posts_after_switch = len(scripted_api.posts())
    stored_after_switch = len(stdout_lines(receiver, "back"))
    time.sleep(1.0)
    assert len(stdout_lines(receiver, "back")) > stored_after_switch, "nothing arrived after the switch"
    assert len(scripted_api.posts()) == posts_after_switch, "REST is still in use after the WebSocket came back"
    stop.touch()
    assert process.wait(timeout=60) == 0, err.read_text()[-2000:]
    numbers = stdout_lines(receiver, "back")
    assert numbers == list(range(1, len(numbers) + 1)) and len(numbers) > 50


def test_rest_credentials_refused_end_the_run_with_one_clear_line(falling_back, receiver, scripted_api):
    scripted_api.websocket = False
    scripted_api.answer(401, times=1000)
    falling_back.env["KERUTA_LOGSTREAMING__DRAINTIMEOUT"] = "2s"
    done = falling_back.run("start", "--task-id", "rest401", "--", sys.executable, "-c", "print('hello')")
    err = done.stderr.decode()
    assert done.returncode == 0  # the child's code; the undelivered record is reported
    assert len(scripted_api.posts()) == 1, "the refused credentials were tried again"
    assert err.count("refused the credentials (HTTP 401)") == 2, err  # once in the log, once at the end
    assert "Traceback" not in err
    spool = falling_back.env["KERUTA_LOGSTREAMING__STATEDIR"] + "/rest401.spool"
    assert err.strip().splitlines()[-1] == (
        "keruta-actors: 1 records were not delivered: the keruta API refused the credentials (HTTP 401); "
        f"check auth.token or auth.apiKey; 1 are kept in the spool {spool}: "
        "`keruta-actors spool flush --task-id rest401` or the next `start --task-id rest401` sends them"
    )


def test_a_failing_rest_api_is_retried_and_loses_nothing(falling_back, receiver, scripted_api):
    scripted_api.websocket = False
    scripted_api.answer(503, times=6)  # spends one connection's retries (3) and more
    done = falling_back.run("start", "--task-id", "rest503", "--", sys.executable, "-c",
                            "for i in range(500): print('line', i)")
    err = done.stderr.decode()
    assert done.returncode == 0, err[-2000:]
    assert stdout_lines(receiver, "rest503") == list(range(1, 501))
    assert "the REST API failed: HTTP 503 SCRIPTED (4 tries)" in err


def wait_until(condition, problem, timeout=30.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, problem
        time.sleep(0.05)


def test_zero_reconnect_attempts_hand_over_to_rest_at_the_first_failure(falling_back, receiver, closed_port):
    # refused, not answered: a handshake answered with an HTTP status falls
    # back at once whatever maxReconnectAttempts says
    falling_back.env["KERUTA_WEBSOCKET_URL"] = f"ws://127.0.0.1:{closed_port}/ws/tasks"
    falling_back.env["KERUTA_WEBSOCKET_MAX_RECONNECT_ATTEMPTS"] = "0"
    done = falling_back.run("start", "--task-id", "rest0", "--", sys.executable, "-c",
                            "for i in range(100): print('line', i)")
    err = done.stderr.decode()
    assert done.returncode == 0, err[-2000:]
    assert stdout_lines(receiver, "rest0") == list(range(1, 101))
    assert "(1 failures in a row); switching to the REST API" in err
