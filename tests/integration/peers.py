"""Debian's real prometheus, promtool and prometheus-alertmanager, run on
loopback for the tests that need them.

tools/system_packages.sh installs them. Without them those tests skip,
except in CI (CI=true), where a missing tool is a failure.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote
from urllib.request import urlopen

import pytest


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None and os.environ.get("CI") == "true":
        pytest.fail(f"{name} is not installed; tools/system_packages.sh installs it")
    if path is None:
        pytest.skip(f"{name} is not installed; tools/system_packages.sh installs it")
    return path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def get_json(url: str) -> dict:
    with urlopen(url, timeout=5) as response:
        return json.load(response)


def poll(find, timeout: float = 20.0, every: float = 0.2):
    """find()'s first truthy answer, asked every `every` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = find()
        if found:
            return found
        time.sleep(every)
    raise AssertionError(f"nothing found within {timeout}s")


@contextmanager
def server(command: list[str], port: int, log: Path):
    """A server started on loopback, ready when it answers /-/ready; stopped at the end."""
    with log.open("wb") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
    try:
        def ready():
            assert process.poll() is None, log.read_text()
            try:
                with urlopen(f"http://127.0.0.1:{port}/-/ready", timeout=1) as answer:
                    return answer.status == 200
            except OSError:
                return False
        poll(ready)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        wait_or_kill(process, 10)


def wait_or_kill(process: subprocess.Popen, timeout: float) -> None:
    """Wait for `process` to end; kill it if it takes longer than `timeout`."""
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextmanager
def prometheus(tmp_path: Path, target_port: int):
    """A Prometheus scraping 127.0.0.1:`target_port` every second; yields a PromQL query function."""
    config = tmp_path / "prometheus.yml"
    config.write_text(json.dumps({  # JSON is YAML
        "global": {"scrape_interval": "1s"},
        "scrape_configs": [{"job_name": "keruta", "static_configs": [{"targets": [f"127.0.0.1:{target_port}"]}]}],
    }))
    port = free_port()
    command = [tool("prometheus"), f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'prometheus'}",
               f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"]
    with server(command, port, tmp_path / "prometheus.log") as url:
        yield lambda promql: get_json(f"{url}/api/v1/query?query={quote(promql)}")["data"]["result"]


@contextmanager
def alertmanager(tmp_path: Path):
    """An Alertmanager that routes everything nowhere; yields its URL."""
    config = tmp_path / "alertmanager.yml"
    config.write_text(json.dumps({"route": {"receiver": "nobody"}, "receivers": [{"name": "nobody"}]}))
    port = free_port()
    command = [tool("prometheus-alertmanager"), f"--config.file={config}",
               f"--storage.path={tmp_path / 'alertmanager'}", f"--web.listen-address=127.0.0.1:{port}",
               "--cluster.listen-address=", "--log.level=warn"]
    with server(command, port, tmp_path / "alertmanager.log") as url:
        yield url


def alerts_of(url: str, task_id: str) -> list[dict]:
    """The alerts Alertmanager lists (active ones) for this task."""
    return [alert for alert in get_json(f"{url}/api/v2/alerts") if alert["labels"].get("task_id") == task_id]
