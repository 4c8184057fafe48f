"""The agent as a drop-in for the keruta task pod, against a stand-in for the
keruta API as deployed (tests/keruta_api_standin.py): no log WebSocket (its
handshake answers 500), no batch endpoint (500 too), server-side timestamps,
a level check, no authentication.

Every test shows each line stored exactly once, the child's exit code, and
an end within 15 s of the child's exit."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time

import pytest

# Fits in the default api.rateLimit burst (100 requests), which is what one
# record per request spends: see the README's "Running in a keruta task pod".
LINES = 60
SCRIPT = textwrap.dedent(
    f"""
    import sys
    for i in range(1, {LINES - 2}):
        print(f"step {{i}} of the build", flush=True)
    print("FATAL: the disk is full", flush=True)
    print("panic: runtime error: index out of range", file=sys.stderr, flush=True)
    print("PANIC runtime error", file=sys.stderr, flush=True)
    sys.exit(3)
    """
)
EXPECTED = [f"step {i} of the build" for i in range(1, LINES - 2)] + [
    "FATAL: the disk is full", "panic: runtime error: index out of range", "PANIC runtime error"]
DEADLINE = 15.0


def run_timed(pod, *args: str) -> tuple[subprocess.CompletedProcess, float]:
    started = time.monotonic()
    finished = pod.run(*args, timeout=60)
    return finished, time.monotonic() - started


def assert_stored_once(keruta_api, task: str, finished: subprocess.CompletedProcess) -> list[dict]:
    err = finished.stderr.decode()
    logs = keruta_api.stand_in.logs_of(task)
    assert sorted(log["message"] for log in logs) == sorted(EXPECTED), err[-3000:]
    assert "Traceback" not in err, err
    return logs


def test_the_pods_environment_delivers_every_line_over_rest(pod, keruta_api):
    pod.env["KERUTA_TASK_ID"] = "pod-env"
    finished, took = run_timed(pod, "start", "--", sys.executable, "-c", SCRIPT)
    logs = assert_stored_once(keruta_api, "pod-env", finished)
    assert finished.returncode == 3
    assert took < DEADLINE
    err = finished.stderr.decode()
    # the WebSocket, derived from the bare host, answered 500: REST at once
    assert ("GET", "/ws/tasks/pod-env") in keruta_api.stand_in.requests
    assert "no log WebSocket" in err and "switching to the REST API" in err
    # the batch endpoint answered 500 and single records were stored: said once
    assert err.count("has no batch endpoint") == 1
    batch_posts = [path for method, path in keruta_api.stand_in.requests if path.endswith("/logs/batch")]
    assert len(batch_posts) == 1
    assert {log["source"] for log in logs} == {"stdout", "stderr"}


def test_the_jobs_command_line_fetches_and_runs_the_tasks_script(pod, keruta_api, tmp_path):
    keruta_api.stand_in.scripts["job-1"] = {
        "content": f"exec {sys.executable} -c '{SCRIPT}' \"$KERUTA_TEST_PARAMETER\"",
        "language": "bash", "filename": "task.sh", "parameters": {"env": {"KERUTA_TEST_PARAMETER": "x"}},
    }
    del pod.env["KERUTA_API_URL"]
    finished, took = run_timed(pod, "execute", "--task-id", "job-1", "--api-url", keruta_api.base_url,
                               "--work-dir", str(tmp_path))
    assert_stored_once(keruta_api, "job-1", finished)
    assert finished.returncode == 3
    assert took < DEADLINE
    assert ("GET", "/api/v1/tasks/job-1/script") in keruta_api.stand_in.requests
    assert not list(tmp_path.glob("task.sh"))  # written privately, not into the work directory


def test_a_task_without_a_script_is_one_clear_line(pod, keruta_api):
    finished = pod.run("execute", "--task-id", "no-script", timeout=60)
    assert finished.returncode == 1
    lines = finished.stderr.decode().strip().splitlines()
    assert lines == [f"keruta-actors: cannot fetch the task's script from "
                     f"{keruta_api.base_url}/api/v1/tasks/no-script/script: HTTP 404"]


def test_stored_records_keep_their_line_number_timestamp_and_id_in_metadata(pod, keruta_api):
    finished, _ = run_timed(pod, "start", "--task-id", "meta", "--", sys.executable, "-c", SCRIPT)
    logs = assert_stored_once(keruta_api, "meta", finished)
    stdout = [log for log in logs if log["source"] == "stdout"]
    assert [log["metadata"]["lineNumber"] for log in stdout] == list(range(1, LINES - 1))
    for log in logs:
        metadata = log["metadata"]
        assert metadata["timestamp"].endswith("Z") and metadata["timestamp"][:4] == log["timestamp"][:4]
        assert metadata["id"].endswith(f"-{log['source']}-{metadata['lineNumber']}")
    assert len({log["metadata"]["id"] for log in logs}) == len(logs)


def test_fatal_and_panic_lines_are_stored_as_errors(pod, keruta_api):
    finished, _ = run_timed(pod, "start", "--task-id", "levels", "--", sys.executable, "-c", SCRIPT)
    logs = assert_stored_once(keruta_api, "levels", finished)
    level = {log["message"]: log["level"] for log in logs}
    assert level["FATAL: the disk is full"] == "ERROR"
    assert level["PANIC runtime error"] == "ERROR"
    assert level["panic: runtime error: index out of range"] == "ERROR"
    assert {log["level"] for log in logs} <= {"DEBUG", "INFO", "WARN", "ERROR"}


@pytest.mark.parametrize("token_variable", ["KERUTA_API_TOKEN", "KERUTA_AUTH_TOKEN"])
def test_clear_text_credentials_to_a_cluster_host_are_refused_unless_allowed(pod, keruta_api, token_variable):
    """`config check` warns and names the setting (the refusal at connect time
    is tested in tests/actors/test_rest_connection.py: a remote host is needed)."""
    pod.env[token_variable] = "t" * 20
    remote = {"KERUTA_API_URL": "http://keruta-svc.keruta.svc.cluster.local"}
    checked = subprocess.run(pod.command("config", "check"), env=pod.env | remote, capture_output=True)
    assert checked.returncode == 0
    assert "auth.allowClearTextCredentials" in checked.stderr.decode()
    allowed = remote | {"KERUTA_AUTH__ALLOWCLEARTEXTCREDENTIALS": "true"}
    checked = subprocess.run(pod.command("config", "check"), env=pod.env | allowed, capture_output=True)
    assert checked.returncode == 0 and "clear text" not in checked.stderr.decode()


def test_config_show_prints_both_effective_urls(pod, keruta_api):
    shown = pod.run("config", "show", timeout=60)
    assert shown.returncode == 0
    settings = json.loads(shown.stdout)
    assert settings["api"]["url"] == keruta_api.base_url + "/api/v1"
    assert settings["websocket"]["url"] == keruta_api.base_url.replace("http://", "ws://") + "/ws/tasks"
    assert settings["auth"]["token"] == "****oken"  # masked
