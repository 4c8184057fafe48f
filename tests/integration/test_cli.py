"""The command line's promises: one clear line and the right exit code for
each kind of bad input, no traceback, signals passed to the child."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time


def problem_lines(finished: subprocess.CompletedProcess) -> list[str]:
    stderr = finished.stderr.decode()
    assert "Traceback" not in stderr, stderr
    return [line for line in stderr.splitlines() if line.startswith("keruta-actors")]


def test_missing_task_id(agent):
    finished = agent.run("start", "--", "true")
    assert finished.returncode == 2
    assert problem_lines(finished) == ["keruta-actors: error: --task-id is required (or set KERUTA_TASK_ID)"]


def test_task_id_from_the_environment(agent, receiver):
    agent.env["KERUTA_TASK_ID"] = "tenv"
    finished = agent.run("start", "--", "echo", "hi")
    assert finished.returncode == 0
    assert [r["message"] for r in receiver.store.fetch("tenv")] == ["hi"], finished.stderr.decode()


def test_command_not_found(agent):
    finished = agent.run("start", "--task-id", "t", "--", "no-such-command-4711")
    assert finished.returncode == 127
    assert problem_lines(finished) == ["keruta-actors: command not found: no-such-command-4711"]


def test_malformed_url_is_a_configuration_error(agent):
    agent.env["KERUTA_WEBSOCKET_URL"] = "http//keruta-api:8080"
    finished = agent.run("start", "--task-id", "t", "--", "true")
    assert finished.returncode == 2
    (line,) = problem_lines(finished)
    assert line.startswith("keruta-actors: config: websocket.url:") and "http//keruta-api:8080" in line


def test_unreachable_server_is_reported_and_nothing_is_lost_silently(agent, closed_port):
    port = closed_port
    agent.env["KERUTA_WEBSOCKET_URL"] = f"ws://127.0.0.1:{port}/ws/tasks"
    agent.env["KERUTA_LOGSTREAMING__DRAINTIMEOUT"] = "1s"
    finished = agent.run("start", "--task-id", "tdown", "--", "sh", "-c", "echo one; echo two; exit 3")
    assert finished.returncode == 3
    stderr = finished.stderr.decode()
    assert "Traceback" not in stderr
    assert f"cannot connect to ws://127.0.0.1:{port}/ws/tasks/tdown: connection refused" in stderr
    assert problem_lines(finished)[-1].startswith("keruta-actors: 2 records were not delivered: cannot connect")


def test_credentials_are_not_sent_in_clear_text_to_a_remote_host(agent):
    agent.env["KERUTA_WEBSOCKET_URL"] = "ws://keruta-api.example:8080/ws/tasks"
    agent.env["KERUTA_AUTH_TOKEN"] = "s3cr3t-token-value"
    agent.env["KERUTA_LOGSTREAMING__DRAINTIMEOUT"] = "1s"
    finished = agent.run("start", "--task-id", "tclear", "--", "echo", "x")
    stderr = finished.stderr.decode()
    assert "refusing to send credentials in clear text to keruta-api.example (use wss://, " in stderr
    assert "auth.allowClearTextCredentials" in stderr
    assert "s3cr3t-token-value" not in stderr


def test_sigterm_goes_to_the_child_which_decides_the_exit_code(agent, receiver, tmp_path):
    ready = tmp_path / "ready"
    script = f'trap "echo got TERM; exit 3" TERM; touch {ready}; while true; do sleep 0.1; done'
    process = agent.popen("start", "--task-id", "tterm", "--", "sh", "-c", script,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while not ready.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 3
    # the whole process group got the signal: sh may also report its sleep's death
    assert [r["message"] for r in receiver.store.fetch("tterm")][-1] == "got TERM"


def test_execute_runs_a_script(agent, receiver, tmp_path):
    script = tmp_path / "job.sh"
    script.write_text("#!/bin/sh\necho from script\nexit 4\n")
    script.chmod(0o755)
    assert agent.run("execute", "--task-id", "texec", "--script", str(script)).returncode == 4
    (record,) = receiver.store.fetch("texec")
    assert record["message"] == "from script" and record["metadata"]["scriptPath"] == str(script)


def test_config_check_reports_each_problem_on_its_own_line(agent, tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text("logStreaming:\n  batchSize: ten\n  bufferSze: 5\nwebsocket:\n  timeout: soon\n")
    finished = agent.run("config", "check", "--config", str(config))
    assert finished.returncode == 2
    lines = problem_lines(finished)
    assert len(lines) == 3, lines
    assert any("logStreaming.batchSize" in line and "ten" in line for line in lines)
    assert any("bufferSze" in line and "did you mean 'bufferSize'" in line for line in lines)
    assert any("websocket.timeout" in line and "soon" in line for line in lines)


def test_config_show_masks_credentials(agent):
    agent.env["KERUTA_AUTH_TOKEN"] = "super-secret-token-1234"
    finished = agent.run("config", "show")
    assert finished.returncode == 0
    shown = json.loads(finished.stdout)
    assert "super-secret-token" not in finished.stdout.decode()
    assert shown["auth"]["token"].startswith("****")
    assert shown["websocket"]["url"] == agent.env["KERUTA_WEBSOCKET_URL"]


def test_help_runs_without_the_receiver_extra_being_touched():
    finished = subprocess.run([sys.executable, "-m", "keruta_actors", "--help"], capture_output=True)
    assert finished.returncode == 0 and b"start" in finished.stdout
