#!/usr/bin/env python3
"""End-to-end benchmark: the whole agent against the reference receiver.

    python tools/bench.py [--lines 200000] [--paced-rate 2000] [--skip-peers]

Runs, in one go and against the same receiver:
- agent:      `python -m keruta_actors start` with a child writing N distinct
              lines (half stdout, half stderr) as fast as it can;
- transport:  the transport limit: one process that sends the same records
              straight to the receiver in 1,000-record batches over one
              WebSocket (no child, no actors, no filters);
- naive:      a per-line sender: reads the child's stdout and sends each line
              as its own frame, then waits for the pong of a final ping;
- paced:      the agent again, with the child writing at a fixed rate, for
              latency from line written to line stored;
- rest:       (with --rest) the agent with its WebSocket refused, so the
              REST fallback carries everything; once with api.rateLimit off
              and once at its default.

For each it prints lines/s, latency percentiles (written -> stored at the
receiver: the child stamps each line with its write time), CPU seconds of
the agent's processes and their summed PSS (idle before the child writes,
and the peak while streaming). Compare ratios between rows: the machines are
noisy.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from pathlib import Path

import psutil
import websocket

ROOT = Path(__file__).resolve().parent.parent
MARKER = "KERUTA_BENCH_MARKER"

WRITER = textwrap.dedent(
    """
    import os, sys, time
    n, rate, idle = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
    time.sleep(idle)  # lets the bench read the agent's idle memory
    salt = os.urandom(4).hex()
    out, err = sys.stdout, sys.stderr
    start = time.time()
    for i in range(n):
        if rate:
            delay = start + i / rate - time.time()
            if delay > 0:
                time.sleep(delay)
        stream = out if i % 2 == 0 else err
        stream.write(f"{time.time():.6f} line {i} {salt} the quick brown fox jumps over the lazy dog\\n")
        if rate:
            stream.flush()
    """
)


def percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    ordered = sorted(values)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
    return {"p50": pick(0.50), "p95": pick(0.95), "p99": pick(0.99), "max": ordered[-1]}


class Receiver:
    """The reference receiver in a process of its own, as in production."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.db_path = workdir / "bench.db"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "keruta_actors", "receiver", "--port", str(self.port), "--db", str(self.db_path)],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        self.ws_url = f"ws://127.0.0.1:{self.port}/ws/tasks"
        self.api_url = f"http://127.0.0.1:{self.port}/api/v1"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        self.psutil = psutil.Process(self.process.pid)

    def cpu_seconds(self) -> float:
        times = self.psutil.cpu_times()
        return times.user + times.system

    def stored(self, task_id: str) -> tuple[int, list[float]]:
        """How many lines of the task are stored, and each one's latency from
        being written (the time stamped into the line) to being stored."""
        with sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True) as db:
            rows = db.execute("SELECT message, received_at FROM logs WHERE task_id = ?", (task_id,)).fetchall()
        return len(rows), [received - float(message.split(" ", 1)[0]) for message, received in rows]

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


class AgentProcesses:
    """Samples CPU time and PSS of every process of one agent run. Thespian's
    admin detaches from the CLI, so the processes are found by a marker in
    their environment rather than by parentage; the line writer is left out."""

    def __init__(self, marker: str, writer: str) -> None:
        self.marker = marker
        self.writer = writer
        self.cpu: dict[int, float] = {}
        self.peak_pss = 0

    def _members(self) -> list[psutil.Process]:
        members = []
        for process in psutil.process_iter():
            try:
                if process.environ().get(MARKER) == self.marker and process.cmdline()[1:2] != [self.writer]:
                    members.append(process)
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                continue
        return members

    def sample(self) -> int:
        pss_total = 0
        for process in self._members():
            try:
                times = process.cpu_times()
                self.cpu[process.pid] = times.user + times.system
                pss_total += process.memory_full_info().pss
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                continue
        self.peak_pss = max(self.peak_pss, pss_total)
        return pss_total

    @property
    def cpu_seconds(self) -> float:
        return sum(self.cpu.values())


# No exclude or include patterns and every level shipped: the filter stage
# then only passes records on (secrets are still masked).
NO_FILTERS = {
    "KERUTA_LOGSTREAMING__FILTERS__EXCLUDEPATTERNS": "[]",
    "KERUTA_LOGSTREAMING__FILTERS__INCLUDEPATTERNS": "[]",
    "KERUTA_LOG_LEVEL": "DEBUG",
}


def run_agent(receiver, lines: int, rate: float, workdir: Path, idle: float, batch_size: int,
              extra_env: dict | None = None) -> dict:
    task_id = f"agent-{uuid.uuid4().hex[:6]}"
    writer = workdir / "writer.py"
    writer.write_text(WRITER)
    marker = uuid.uuid4().hex
    env = {k: v for k, v in os.environ.items() if not k.startswith("KERUTA_")} | {
        MARKER: marker,
        "KERUTA_WEBSOCKET_URL": receiver.ws_url,
        "KERUTA_API_URL": receiver.api_url,
        "KERUTA_LOGSTREAMING__PERFORMANCE__RATELIMITPERSECOND": "0",
        "KERUTA_LOGGING__OUTPUT": "stderr",
        "KERUTA_LOGGING__FORMAT": "text",
        "KERUTA_LOG_BATCH_SIZE": str(batch_size),
    } | (extra_env or {})
    command = [sys.executable, "-m", "keruta_actors", "start", "--task-id", task_id, "--",
               sys.executable, str(writer), str(lines), str(rate), str(idle)]
    receiver_cpu = receiver.cpu_seconds()
    started = time.perf_counter()
    agent_log = workdir / f"{task_id}.log"
    with open(agent_log, "wb") as log:
        agent = subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=log)
    tree = AgentProcesses(marker, str(writer))
    idle_pss = 0
    # idle CPU: between the end of start-up and the child's first line
    idle_window = (idle * 0.5, idle * 0.95)
    idle_cpu = {}
    while agent.poll() is None:
        pss = tree.sample()
        since = time.perf_counter() - started
        if since < idle_window[1]:
            idle_pss = max(idle_pss, pss)
            idle_cpu.setdefault("from" if since >= idle_window[0] else "before", (since, tree.cpu_seconds))
            if since >= idle_window[0]:
                idle_cpu["to"] = (since, tree.cpu_seconds)
        time.sleep(0.05)
    elapsed = time.perf_counter() - started - idle
    stored, latencies = receiver.stored(task_id)
    return {
        "receiver_cpu_s": receiver.cpu_seconds() - receiver_cpu,
        "lines": stored,
        "expected": lines,
        "seconds": elapsed,
        "lines_per_s": stored / elapsed,
        "latency": percentiles(latencies),
        "cpu_s": tree.cpu_seconds,
        "pss_idle_mb": idle_pss / 2**20,
        "idle_cpu_percent": idle_cpu_percent(idle_cpu),
        "pss_peak_mb": tree.peak_pss / 2**20,
        "exit": agent.returncode,
        "problem": last_agent_line(agent_log),
    }


def rest_only(port: int, rate_limited: bool) -> dict:
    """Settings that send everything over REST: the WebSocket points at a
    port nobody listens on, and one failure there switches to REST."""
    env = {
        "KERUTA_WEBSOCKET_URL": f"ws://127.0.0.1:{port}/ws/tasks",
        "KERUTA_WEBSOCKET_MAX_RECONNECT_ATTEMPTS": "1",
        "KERUTA_WEBSOCKET_RECONNECT_INTERVAL": "100ms",
    }
    if not rate_limited:
        env["KERUTA_API__RATELIMIT__REQUESTSPERMINUTE"] = "0"
    return env


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def idle_cpu_percent(samples: dict) -> float | None:
    """CPU use while idle, if the idle window was long enough to say."""
    if "from" not in samples or "to" not in samples or samples["to"][0] - samples["from"][0] < 1.0:
        return None
    (t0, c0), (t1, c1) = samples["from"], samples["to"]
    return 100 * (c1 - c0) / (t1 - t0)


def last_agent_line(path: Path) -> str:
    """The agent's own last word on stderr, if it had one to say."""
    lines = [line for line in path.read_text(errors="replace").splitlines() if line.startswith("keruta-actors:")]
    return lines[-1] if lines else ""


def transport_limit(receiver, lines: int) -> dict:
    """Records sent straight to the receiver, 1,000 per batch, acked."""
    task_id = f"transport-{uuid.uuid4().hex[:6]}"
    salt = uuid.uuid4().hex[:8]
    ws = websocket.create_connection(f"{receiver.ws_url}/{task_id}")
    json.loads(ws.recv())  # hello
    started = time.perf_counter()
    window, batch_id = 0, 0
    for start in range(0, lines, 1000):
        logs = [
            {"type": "log", "id": f"{salt}-{i}", "taskId": task_id, "timestamp": "2026-11-29T00:00:00.000Z",
             "source": "stdout", "level": "INFO", "lineNumber": i + 1, "metadata": {},
             "message": f"{time.time():.6f} line {i} {salt} the quick brown fox jumps over the lazy dog"}
            for i in range(start, min(lines, start + 1000))
        ]
        batch_id += 1
        ws.send(json.dumps({"type": "logs", "batchId": batch_id, "taskId": task_id, "logs": logs}))
        window += 1
        while window >= 8:
            window -= json.loads(ws.recv())["type"] == "ack"
    while window:
        window -= json.loads(ws.recv())["type"] == "ack"
    elapsed = time.perf_counter() - started
    ws.close()
    stored, latencies = receiver.stored(task_id)
    return {"lines": stored, "expected": lines, "seconds": elapsed, "lines_per_s": stored / elapsed,
            "latency": percentiles(latencies)}


def naive_sender(receiver, lines: int, workdir: Path) -> dict:
    """One frame per line from a child's stdout: what a simple shipper does."""
    task_id = f"naive-{uuid.uuid4().hex[:6]}"
    writer = workdir / "writer.py"
    writer.write_text(WRITER)
    started = time.perf_counter()
    child = subprocess.Popen([sys.executable, str(writer), str(lines), "0", "0"],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    own = psutil.Process()
    cpu_before = sum(own.cpu_times()[:2])
    ws = websocket.create_connection(f"{receiver.ws_url}/{task_id}")
    ws.recv()  # hello
    for number, raw in enumerate(child.stdout, 1):
        ws.send(json.dumps({"type": "log", "id": f"{task_id}-{number}", "taskId": task_id,
                            "timestamp": "2026-11-29T00:00:00.000Z", "source": "stdout", "level": "INFO",
                            "message": raw.decode().rstrip("\n"), "lineNumber": number, "metadata": {}}))
    ws.ping("end")
    while ws.recv_data_frame(True)[0] != websocket.ABNF.OPCODE_PONG:
        pass
    elapsed = time.perf_counter() - started
    cpu = sum(own.cpu_times()[:2]) - cpu_before
    ws.close()
    child.wait()
    stored, latencies = receiver.stored(task_id)
    return {"lines": stored, "expected": lines, "seconds": elapsed, "lines_per_s": stored / elapsed,
            "latency": percentiles(latencies), "cpu_s": cpu}


def show(name: str, result: dict) -> None:
    latency = result.get("latency", {})
    cells = [
        f"{name:<13}",
        f"{result['lines']:>8}/{result['expected']:<8}",
        f"{result['lines_per_s']:>10,.0f} lines/s",
        "lat ms p50/p95/p99 " + "/".join(f"{latency.get(k, 0) * 1000:.0f}" for k in ("p50", "p95", "p99")),
    ]
    if "cpu_s" in result:
        cells.append(f"cpu {result['cpu_s']:.2f}s ({result['cpu_s'] * 1e6 / max(1, result['lines']):.1f} µs/line)")
    if "receiver_cpu_s" in result:
        cells.append(f"receiver cpu {result['receiver_cpu_s']:.2f}s")
    if "pss_peak_mb" in result:
        cells.append(f"pss idle {result['pss_idle_mb']:.0f} MB peak {result['pss_peak_mb']:.0f} MB")
        if result["idle_cpu_percent"] is not None:
            cells.append(f"idle cpu {result['idle_cpu_percent']:.1f}%")
    print("  ".join(cells), flush=True)
    if result.get("exit") or result.get("problem"):
        print(f"    exit {result.get('exit')}: {result.get('problem')}", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=200_000)
    parser.add_argument("--paced-rate", type=float, default=2000.0, help="lines/s for the latency run")
    parser.add_argument("--paced-lines", type=int, default=10_000)
    parser.add_argument("--batch-sizes", default="10,100,1000",
                        help="logStreaming.batchSize for each agent run (the first is the default's)")
    parser.add_argument("--skip-peers", action="store_true")
    parser.add_argument("--rest", action="store_true", help="also run the agent over its REST fallback only")
    parser.add_argument("--compare-filters", action="store_true",
                        help="also run batchSize 100 with no filters, beside the default filters")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        receiver = Receiver(workdir)
        try:
            print(f"{os.cpu_count()} cores; {args.lines} lines per run; receiver on {receiver.ws_url}")
            for batch_size in [int(size) for size in args.batch_sizes.split(",")]:
                show(f"agent b={batch_size}", run_agent(receiver, args.lines, 0, workdir, 3.0, batch_size))
            if args.compare_filters:
                show("no filters", run_agent(receiver, args.lines, 0, workdir, 3.0, 100, NO_FILTERS))
            if args.rest:
                closed = free_port()
                show("rest, no api.rateLimit", run_agent(receiver, args.lines, 0, workdir, 3.0, 10, rest_only(closed, False)))
                show("rest, default api.rateLimit", run_agent(receiver, args.lines, 0, workdir, 3.0, 10, rest_only(closed, True)))
            if not args.skip_peers:
                show("transport", transport_limit(receiver, args.lines))
                show("naive", naive_sender(receiver, args.lines, workdir))
            show("paced", run_agent(receiver, args.paced_lines, args.paced_rate, workdir, 0.5, 10))
        finally:
            receiver.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
