"""The live viewer page in a real headless browser (Debian's chromium, driven
by Playwright), while a real agent streams into a real receiver process that
is restarted halfway through.

CI installs chromium (tools/system_packages.sh); there the test fails if the
browser cannot be found or started. Elsewhere it is skipped, saying why.
The page's screenshot is saved as artifacts/viewer.png.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.integration.peers import free_port

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
LINES = 400
# Prints LINES lines, 80 a second; every 7th is an error, line 123 holds a needle.
CHILD = f"""
import sys, time
for i in range(1, {LINES} + 1):
    level = "ERROR" if i % 7 == 0 else "INFO"
    extra = " needle-in-the-haystack" if i == 123 else ""
    print(f"{{level}} line {{i}}{{extra}}", flush=True)
    time.sleep(1 / 80)
"""

try:
    from playwright.sync_api import expect, sync_playwright
except ImportError as error:  # pragma: no cover - reported below
    sync_playwright = None
    IMPORT_ERROR = str(error)


def _browser_or_skip():
    problem = None
    if sync_playwright is None:
        problem = f"playwright is not installed: {IMPORT_ERROR}"
    elif not os.path.exists(CHROMIUM):
        problem = f"no chromium at {CHROMIUM} (tools/system_packages.sh installs it)"
    if problem:
        if os.environ.get("CI") == "true":
            pytest.fail(problem)
        pytest.skip(problem)


class ReceiverProcess:
    """`python -m keruta_actors receiver` on a fixed port, so it can be
    restarted where clients expect it."""

    def __init__(self, db: str) -> None:
        self.port = free_port()
        self.db = db
        self.process: subprocess.Popen | None = None

    ws_url = property(lambda self: f"ws://127.0.0.1:{self.port}/ws/tasks")
    api_url = property(lambda self: f"http://127.0.0.1:{self.port}/api/v1")
    base_url = property(lambda self: f"http://127.0.0.1:{self.port}")

    def start(self) -> None:
        command = [sys.executable, "-m", "keruta_actors", "receiver", "--port", str(self.port), "--db", self.db]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        assert "listening" in self.process.stdout.readline()

    def stop(self) -> None:
        self.process.terminate()
        assert self.process.wait(timeout=10) == 0


@pytest.fixture
def receiver(tmp_path):
    """Replaces the conftest's in-process receiver, for the `agent` fixture."""
    running = ReceiverProcess(str(tmp_path / "receiver.db"))
    running.start()
    yield running
    if running.process.poll() is None:
        running.stop()


def stored_ids(receiver: ReceiverProcess, task_id: str) -> list[str]:
    url = f"{receiver.api_url}/tasks/{task_id}/logs/export?format=json"
    return [record["id"] for record in requests.get(url, timeout=10).json()]


def test_the_viewer_follows_a_live_task_through_a_receiver_restart(receiver, agent):
    _browser_or_skip()
    ARTIFACTS.mkdir(exist_ok=True)
    agent.env["KERUTA_WEBSOCKET_RECONNECT_INTERVAL"] = "0.2"
    run = agent.popen("start", "--task-id", "tview", "--", sys.executable, "-c", CHILD, stdout=subprocess.DEVNULL)
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
            page = browser.new_page(viewport={"width": 1200, "height": 700})
            page.goto(f"{receiver.base_url}/tasks/tview")
            count = lambda expression: page.evaluate(f"window.kerutaViewer.{expression}")  # noqa: E731

            expect(page.locator("#status")).to_have_text("live", timeout=10_000)
            page.wait_for_function("window.kerutaViewer.records.length >= 40", timeout=10_000)
            lines = [int(n) for n in page.locator(".row").evaluate_all("rows => rows.map(r => r.dataset.line)")]
            assert lines and lines == sorted(lines)  # and following: the last rows are in sight
            errors_before = int(page.locator("#count-ERROR").inner_text())

            page.click("#pause")
            held = count("records.length")
            shown = page.locator("#rows").inner_text()
            time.sleep(0.5)
            assert (count("records.length"), page.locator("#rows").inner_text()) == (held, shown)
            page.click("#pause")
            page.wait_for_function(f"window.kerutaViewer.records.length > {held}", timeout=5_000)
            # every 7th line is an error: the count follows as they arrive
            page.wait_for_function(
                f"Number(document.querySelector('#count-ERROR').innerText) > {errors_before}", timeout=5_000)

            page.uncheck("#levels input[value=INFO]")
            page.click("#pause")  # hold the view still while it is read
            levels = page.locator(".row .lvl").all_inner_texts()
            assert levels and set(levels) == {"ERROR"}
            page.click("#pause")
            page.check("#levels input[value=INFO]")

            page.fill("#search", "needle")
            expect(page.locator(".row")).to_have_count(1, timeout=5_000)
            assert "line 123 needle-in-the-haystack" in page.locator(".row").inner_text()
            page.fill("#search", "")

            receiver.stop()
            expect(page.locator("#status")).to_have_text("reconnecting…", timeout=5_000)
            time.sleep(0.5)
            receiver.start()
            expect(page.locator("#status")).to_have_text("live", timeout=10_000)

            assert run.wait(timeout=60) == 0
            expected = stored_ids(receiver, "tview")
            assert len(expected) >= LINES
            page.wait_for_function(f"window.kerutaViewer.records.length >= {len(expected)}", timeout=10_000)
            shown_ids = count("records.map(r => r.id)")
            assert sorted(shown_ids) == sorted(expected)  # nothing missing, nothing twice
            stdout = count("records.filter(r => r.source === 'stdout').map(r => r.lineNumber)")
            assert stdout == sorted(stdout) and len(stdout) == LINES
            page.screenshot(path=str(ARTIFACTS / "viewer.png"))
            browser.close()
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
