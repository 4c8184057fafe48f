"""The Dockerfile's install steps, run for real: `docker build` cannot run
on these machines, so the same `pip install .` goes into a fresh virtual
environment, and the installed agent must start and know its defaults."""

from __future__ import annotations

import re
import shutil
import subprocess
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def dockerfile_copies() -> list[str]:
    sources = []
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        if line.startswith("COPY "):
            sources.extend(line.split()[1:-1])
    return sources


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """The project as the Dockerfile installs it: only the files it copies."""
    tree = tmp_path_factory.mktemp("image")
    for source in dockerfile_copies():
        path = ROOT / source
        if path.is_dir():
            shutil.copytree(path, tree / source, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(path, tree / source)
    environment = tree / "venv"
    venv.create(environment, with_pip=True)
    python = environment / "bin" / "python"
    # --no-deps with this interpreter's site-packages visible would hide a
    # missing dependency, so the real install runs, as in the image.
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", str(tree)], check=True, timeout=600)
    return environment


def test_the_installed_agent_starts_and_shows_its_help(installed):
    finished = subprocess.run([str(installed / "bin" / "python"), "-m", "keruta_actors", "--help"],
                              capture_output=True, cwd=installed, timeout=60)
    assert finished.returncode == 0, finished.stderr
    assert b"start" in finished.stdout and b"receiver" in finished.stdout


def test_the_console_script_carries_the_built_in_defaults(installed):
    finished = subprocess.run([str(installed / "bin" / "keruta-actors"), "config", "show"],
                              capture_output=True, cwd=installed, timeout=60, env={"PATH": "/usr/bin:/bin"})
    assert finished.returncode == 0, finished.stderr
    assert b'"url": "ws://localhost:8080/ws/tasks"' in finished.stdout


def test_the_dockerfile_keeps_its_promises():
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.\d+-slim$", text, re.M)
    assert re.search(r"^USER (?!root)\w+$", text, re.M)
    assert 'ENTRYPOINT ["python", "-m", "keruta_actors"]' in text
    assert 'CMD ["start"]' in text
    assert re.search(r"^EXPOSE 9090$", text, re.M)
    assert re.search(r"^ENV KERUTA_MONITORING__PROMETHEUS__ENABLED=true$", text, re.M)
    # the container's health check asks liveness: falling back to REST is no reason to restart
    healthcheck = text[text.index("HEALTHCHECK"):].split("\n\n")[0]
    assert "http://127.0.0.1:9090/livez" in healthcheck and "/health'" not in healthcheck
    assert (ROOT / "settings.toml").resolve() == (ROOT / "keruta_actors" / "settings.toml").resolve()
