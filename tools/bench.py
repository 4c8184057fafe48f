#!/usr/bin/env python3
"""End-to-end benchmark: the whole agent, beside its peers, in one run.

    python tools/bench.py [--quick] [--lines N] [--json PATH] [--chart PATH] [--rest] [--compare-filters]
                          [--metrics] [--spool]

Every sender reads the same child (tools/bench.py's WRITER: distinct
110-byte lines, half on stdout, half on stderr) and every run uses the
default filters with the rate limit off. Two servers, each in a process of
its own:
- the null sink (tools/null_sink.py) acknowledges and discards, so that a
  throughput figure is the sender's own, not a database's;
- the reference receiver stores in SQLite and stamps each record's arrival,
  for latency from line written (stamped into the line) to line stored.

Runs:
- throughput into the null sink, at full speed: the agent at batchSize 100
  and at its default 10; the transport peer (one Python process:
  websocket-client, JSON batches of 100 of the same records, 8 in flight);
  a naive per-line sender (one frame per line);
- CPU per line with the child paced at 2,000 lines/s;
- latency into the receiver at fixed offered rates of 100, 1,000 and 10,000
  lines/s;
- PSS and CPU of an idle agent (its child silent), and peak PSS;
- the wall time of `start -- echo hello`.

CPU is the sender process's own user+system time (its child, the writer, is
not counted) from the moment the child starts writing to the sender's exit:
every sender gets an idle spell first, so start-up is left out of the
per-line figures and reported on its own. It prints a table, the targets
with their ratios, and writes a JSON report and a PNG chart (latency CDFs,
throughput by configuration). Compare ratios, not absolute figures: the
machines are noisy. `--quick` finishes in under two minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request
import uuid
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent

WRITER = textwrap.dedent(
    """
    import os, sys, time
    n, rate, idle = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
    time.sleep(idle)  # lets the bench read the sender's idle memory and CPU
    salt = os.urandom(4).hex()
    out, err = sys.stdout, sys.stderr
    start = time.time()
    for i in range(n):
        if rate:
            delay = start + i / rate - time.time()
            if delay > 0:
                time.sleep(delay)
        stream = out if i % 2 == 0 else err
        stream.write(f"{time.time():.6f} line {i:>7} {salt} the quick brown fox jumps over the lazy dog again\\n")
        if rate:
            stream.flush()
    """
)

COMPACT = (",", ":")  # what a fast sender writes: no spaces
TARGETS = (
    # (what, the report's key, comparison, bound)
    ("agent b=100 / transport peer", "ratio_transport", ">=", 1.0),
    ("agent b=100 lines/s", "agent_b100_lines_per_s", ">=", 100_000),
    ("agent b=100 / naive sender", "ratio_naive", ">=", 3.0),
    ("agent b=100 CPU µs/line", "agent_b100_us_per_line", "<=", 8.0),
    ("agent b=10 (default) CPU µs/line", "agent_b10_us_per_line", "<=", 12.0),
    ("paced 2,000 lines/s CPU µs/line", "paced_us_per_line", "<=", 40.0),
    ("latency p99 at 1,000 lines/s (ms)", "latency_1000_p99_ms", "<=", 20.0),
    ("idle PSS (MiB)", "idle_pss_mib", "<=", 40.0),
    ("idle CPU (% of a core)", "idle_cpu_percent", "<=", 0.3),
    ("start -- echo hello (s)", "echo_hello_s", "<=", 0.4),
)


# --- the servers -------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_port(port: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


class Server:
    def __init__(self, command: list[str], port: int, workdir: Path) -> None:
        self.port = port
        self.state_dir = workdir / "agent-state"  # the agents' spools: gone with the run
        self.process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_port(port)
        self.ws_url = f"ws://127.0.0.1:{port}/ws/tasks"
        self.api_url = f"http://127.0.0.1:{port}/api/v1"

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


class NullSink(Server):
    def __init__(self, workdir: Path) -> None:
        port = free_port()
        super().__init__([sys.executable, str(ROOT / "tools" / "null_sink.py"), "--port", str(port)], port, workdir)

    def stored(self, task_id: str) -> int:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/stats?task={task_id}") as answer:
            return json.load(answer)["records"]


class Receiver(Server):
    def __init__(self, workdir: Path) -> None:
        port = free_port()
        self.db_path = workdir / "bench.db"
        super().__init__([sys.executable, "-m", "keruta_actors", "receiver", "--port", str(port),
                          "--db", str(self.db_path)], port, workdir)

    def latencies(self, task_id: str) -> list[float]:
        """Each stored line's latency from written (stamped in it) to stored."""
        with sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True) as db:
            rows = db.execute("SELECT message, received_at FROM logs WHERE task_id = ?", (task_id,)).fetchall()
        return [received - float(message.split(" ", 1)[0]) for message, received in rows]


# --- running a sender ---------------------------------------------------------------


def agent_env(server: Server, batch_size: int, extra: dict | None = None) -> dict:
    return {k: v for k, v in os.environ.items() if not k.startswith("KERUTA_")} | {
        "KERUTA_WEBSOCKET_URL": server.ws_url,
        "KERUTA_API_URL": server.api_url,
        "KERUTA_LOGSTREAMING__PERFORMANCE__RATELIMITPERSECOND": "0",
        "KERUTA_LOGGING__OUTPUT": "stderr",
        "KERUTA_LOGGING__FORMAT": "text",
        "KERUTA_LOG_BATCH_SIZE": str(batch_size),
        "KERUTA_LOGSTREAMING__STATEDIR": str(server.state_dir),
    } | (extra or {})


def writer_command(workdir: Path, lines: int, rate: float, idle: float) -> list[str]:
    writer = workdir / "writer.py"
    writer.write_text(WRITER)
    return [sys.executable, str(writer), str(lines), str(rate), str(idle)]


def run_sender(command: list[str], env: dict, idle: float, workdir: Path) -> dict:
    """Run a sender to its end: wall time and its own CPU time from its
    child's first line (the child, the writer, sleeps `idle` after it starts)
    to the sender's exit (the last reading is taken while it is a zombie,
    before it is reaped, so that nothing of its child is counted), CPU
    before that (start-up), and peak PSS. Both count from the child's first
    line: a sender that takes longer to start its child (the agent opens
    its spool and actors first, ~0.3 s) is not charged that time per line."""
    log = workdir / f"sender-{uuid.uuid4().hex[:6]}.log"
    with open(log, "wb") as err:
        popen = subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=err)
    sender = psutil.Process(popen.pid)
    first_line = time.time() + idle  # until the child is seen: when it would write, had it started at once
    child_seen = False
    peak_pss = 0
    cpu = startup_cpu = 0.0
    while True:
        try:
            if sender.status() == psutil.STATUS_ZOMBIE:
                times = sender.cpu_times()
                cpu = times.user + times.system
                break
            times, pss = sender.cpu_times(), sender.memory_full_info().pss
            if not child_seen:
                children = sender.children()
                if children:
                    child_seen = True
                    first_line = children[0].create_time() + idle
        except psutil.NoSuchProcess:
            break
        if time.time() < first_line:
            startup_cpu = times.user + times.system
        peak_pss = max(peak_pss, pss)
        time.sleep(0.02)
    ended = time.time()
    code = popen.wait()
    problem = [line for line in log.read_text(errors="replace").splitlines() if line.startswith("keruta-actors:")]
    return {"seconds": ended - first_line, "cpu_s": cpu - startup_cpu, "startup_cpu_s": startup_cpu,
            "exit": code, "peak_pss_mib": peak_pss / 2**20, "problem": problem[-1] if problem else ""}


# Every sender waits this long before its child writes: start-up is over by
# then, and its CPU is not counted per line.
IDLE = 1.0


def agent(server: Server, workdir: Path, lines: int, rate: float, batch_size: int, idle: float = IDLE,
          extra: dict | None = None) -> tuple[str, dict]:
    task_id = f"agent-{uuid.uuid4().hex[:6]}"
    command = [sys.executable, "-m", "keruta_actors", "start", "--task-id", task_id, "--",
               *writer_command(workdir, lines, rate, idle)]
    return task_id, run_sender(command, agent_env(server, batch_size, extra), idle, workdir)


def peer(kind: str, sink: NullSink, workdir: Path, lines: int) -> tuple[str, dict]:
    task_id = f"{kind}-{uuid.uuid4().hex[:6]}"
    command = [sys.executable, str(Path(__file__).resolve()), "--peer", kind, "--url", f"{sink.ws_url}/{task_id}",
               "--", *writer_command(workdir, lines, 0, IDLE)]
    return task_id, run_sender(command, dict(os.environ), IDLE, workdir)


def throughput(name: str, task_id: str, result: dict, sink: NullSink, lines: int) -> dict:
    stored = sink.stored(task_id)
    return result | {"name": name, "lines": stored, "expected": lines, "lines_per_s": stored / result["seconds"],
                     "us_per_line": result["cpu_s"] * 1e6 / max(1, stored)}


def latency_run(receiver: Receiver, workdir: Path, rate: float, seconds: float) -> dict:
    lines = int(rate * seconds)
    task_id, result = agent(receiver, workdir, lines, rate, 10)
    delays = sorted(receiver.latencies(task_id))
    return result | {"name": f"latency at {rate:,.0f}/s", "rate": rate, "lines": len(delays), "expected": lines,
                     "latency_ms": percentiles([d * 1000 for d in delays]), "cdf_ms": sample_cdf(delays)}


def idle_agent(sink: NullSink, seconds: float) -> dict:
    """PSS and CPU of an agent whose child prints nothing for `seconds`,
    after two seconds of start-up. CPU from the scheduler's nanosecond
    counters: the usual 10 ms ticks cannot tell 0.1% from 0.3% in seconds."""
    command = [sys.executable, "-m", "keruta_actors", "start", "--task-id", f"idle-{uuid.uuid4().hex[:6]}",
               "--", "sleep", str(seconds + 3)]
    popen = subprocess.Popen(command, env=agent_env(sink, 10), cwd=ROOT, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    try:
        time.sleep(2.0)
        started, cpu_before = time.perf_counter(), on_cpu_ns(popen.pid)
        time.sleep(seconds)
        cpu_after, elapsed = on_cpu_ns(popen.pid), time.perf_counter() - started
        pss = psutil.Process(popen.pid).memory_full_info().pss
    finally:
        popen.wait()
    return {"idle_cpu_percent": 100 * (cpu_after - cpu_before) / 1e9 / elapsed, "idle_pss_mib": pss / 2**20}


def on_cpu_ns(pid: int) -> int:
    """Nanoseconds every thread of `pid` has run (/proc/PID/task/*/schedstat)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        total += int((task / "schedstat").read_text().split()[0])
    return total


def echo_hello(sink: NullSink, workdir: Path, times: int) -> float:
    walls = []
    for _ in range(times):
        command = [sys.executable, "-m", "keruta_actors", "start", "--task-id", f"echo-{uuid.uuid4().hex[:6]}",
                   "--", "echo", "hello"]
        started = time.perf_counter()
        subprocess.run(command, env=agent_env(sink, 10), cwd=ROOT, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, check=True)
        walls.append(time.perf_counter() - started)
    return statistics.median(walls)


def percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    if not ordered:
        return {}
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
    return {"p50": pick(0.50), "p95": pick(0.95), "p99": pick(0.99), "max": ordered[-1]}


def sample_cdf(ordered: list[float], points: int = 200) -> list[tuple[float, float]]:
    if not ordered:
        return []
    step = max(1, len(ordered) // points)
    return [(ordered[i] * 1000, (i + 1) / len(ordered)) for i in range(0, len(ordered), step)]


# --- the peers, each run as `bench.py --peer KIND --url URL -- WRITER...` -------------


def transport_peer(url: str, writer: list[str], batch: int = 100, window: int = 8) -> None:
    """JSON batches of the same records over one WebSocket, acks awaited."""
    import websocket

    task_id = url.rsplit("/", 1)[1]
    ws = websocket.create_connection(url)
    json.loads(ws.recv())  # hello
    child = subprocess.Popen(writer, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    in_flight, batch_id, logs = 0, 0, []
    for number, raw in enumerate(child.stdout, 1):
        logs.append({"type": "log", "id": f"{task_id}-{number}", "taskId": task_id,
                     "timestamp": "2026-11-30T00:00:00.000Z", "source": "stdout", "level": "INFO",
                     "message": raw.decode("utf-8", "replace").rstrip("\n"), "lineNumber": number, "metadata": {}})
        if len(logs) == batch:
            batch_id += 1
            ws.send(json.dumps({"type": "logs", "batchId": batch_id, "taskId": task_id, "logs": logs}, separators=COMPACT))
            logs, in_flight = [], in_flight + 1
            while in_flight >= window:
                in_flight -= json.loads(ws.recv())["type"] == "ack"
    if logs:
        ws.send(json.dumps({"type": "logs", "batchId": batch_id + 1, "taskId": task_id, "logs": logs}, separators=COMPACT))
        in_flight += 1
    while in_flight:
        in_flight -= json.loads(ws.recv())["type"] == "ack"
    ws.close()
    child.wait()


def naive_peer(url: str, writer: list[str]) -> None:
    """One frame per line, then the pong of a final ping."""
    import websocket

    task_id = url.rsplit("/", 1)[1]
    ws = websocket.create_connection(url)
    ws.recv()  # hello
    child = subprocess.Popen(writer, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    for number, raw in enumerate(child.stdout, 1):
        ws.send(json.dumps({"type": "log", "id": f"{task_id}-{number}", "taskId": task_id,
                            "timestamp": "2026-11-30T00:00:00.000Z", "source": "stdout", "level": "INFO",
                            "message": raw.decode("utf-8", "replace").rstrip("\n"), "lineNumber": number,
                            "metadata": {}}, separators=COMPACT))
    ws.ping("end")
    while ws.recv_data_frame(True)[0] != websocket.ABNF.OPCODE_PONG:
        pass
    ws.close()
    child.wait()


# --- report ----------------------------------------------------------------------------


def show(row: dict) -> None:
    cells = [f"{row['name']:<22}", f"{row['lines']:>8}/{row['expected']:<8}"]
    if "lines_per_s" in row:
        cells.append(f"{row['lines_per_s']:>9,.0f} lines/s")
    if "latency_ms" in row:
        cells.append("latency ms p50/p95/p99/max " + "/".join(f"{row['latency_ms'].get(k, 0):.1f}"
                                                              for k in ("p50", "p95", "p99", "max")))
    cells.append(f"cpu {row['cpu_s']:.2f}s ({row['cpu_s'] * 1e6 / max(1, row['lines']):.1f} µs/line, "
                 f"start-up {row['startup_cpu_s']:.2f}s)")
    cells.append(f"pss peak {row['peak_pss_mib']:.0f} MiB")
    print("  ".join(cells), flush=True)
    if row.get("exit") or row.get("problem"):
        print(f"    exit {row.get('exit')}: {row.get('problem')}", flush=True)


def summary(rows: dict, idle_figures: dict, echo: float) -> dict:
    b100, b10, transport, naive = rows["agent b=100"], rows["agent b=10"], rows["transport peer"], rows["naive"]
    return {
        "agent_b100_lines_per_s": b100["lines_per_s"],
        "ratio_transport": b100["lines_per_s"] / transport["lines_per_s"],
        "ratio_naive": b100["lines_per_s"] / naive["lines_per_s"],
        "agent_b100_us_per_line": b100["us_per_line"],
        "agent_b10_us_per_line": b10["us_per_line"],
        "transport_us_per_line": transport["us_per_line"],
        "naive_us_per_line": naive["us_per_line"],
        "paced_us_per_line": rows["paced 2,000/s"]["us_per_line"],
        "latency_1000_p99_ms": rows["latency at 1,000/s"]["latency_ms"].get("p99", float("nan")),
        "idle_pss_mib": idle_figures["idle_pss_mib"],
        "idle_cpu_percent": idle_figures["idle_cpu_percent"],
        "peak_pss_mib": max(row["peak_pss_mib"] for row in rows.values()),
        "echo_hello_s": echo,
    }


def show_targets(figures: dict) -> None:
    print("\ntargets:")
    for what, key, comparison, bound in TARGETS:
        value = figures[key]
        met = value >= bound if comparison == ">=" else value <= bound
        print(f"  {'met ' if met else 'MISS'}  {what:<36} {value:>12,.2f}  (target {comparison} {bound:,})")


def chart(rows: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (cdf, bars) = plt.subplots(1, 2, figsize=(13, 5))
    for row in rows.values():
        if row.get("cdf_ms"):
            xs, ys = zip(*row["cdf_ms"])
            cdf.plot(xs, ys, label=row["name"])
    cdf.set_xscale("log")
    cdf.set(title="latency, line written to line stored", xlabel="ms (log scale)", ylabel="share of lines")
    cdf.grid(True, which="both", alpha=0.3)
    cdf.legend()
    names = [name for name, row in rows.items() if "lines_per_s" in row and not name.startswith("paced")]
    speeds = [rows[name]["lines_per_s"] / 1000 for name in names]
    bars.barh(names, speeds, color=["#4477aa" if name.startswith("agent") else "#bbbbbb" for name in names])
    for y, (name, speed) in enumerate(zip(names, speeds)):
        bars.text(speed, y, f" {speed:,.0f}k  ({rows[name]['us_per_line']:.1f} µs/line)", va="center")
    bars.set(title="throughput into the null sink", xlabel="thousand lines/s")
    bars.set_xlim(0, max(speeds) * 1.45)
    figure.tight_layout()
    figure.savefig(path, dpi=100)


def spool_costs(sink: NullSink, workdir: Path, lines: int) -> dict[str, dict]:
    """`--spool`: the agent at batchSize 100 and 10 with the write-ahead
    spool on (in this run's directory) and off; prints what the spool costs
    in agent CPU per line. The delivery is fast here, so the spool is
    appended to, confirmed and deleted, and rarely read back."""
    rows: dict[str, dict] = {}
    for batch_size in (100, 10):
        for spool in ("on", "off"):
            extra = {"KERUTA_LOGSTREAMING__SPOOL__ENABLED": "true" if spool == "on" else "false",
                     "KERUTA_LOGSTREAMING__STATEDIR": str(workdir / "state")}
            name = f"agent b={batch_size} spool {spool}"
            task_id, result = agent(sink, workdir, lines, 0, batch_size, extra=extra)
            rows[name] = throughput(name, task_id, result, sink, lines)
            show(rows[name])
        on, off = rows[f"agent b={batch_size} spool on"], rows[f"agent b={batch_size} spool off"]
        print(f"  spool at b={batch_size}: {on['us_per_line'] - off['us_per_line']:+.2f} µs of agent CPU per line, "
              f"{100 * (on['lines_per_s'] / off['lines_per_s'] - 1):+.1f}% lines/s", flush=True)
    return rows


# --- the cost of metrics (--metrics) ---------------------------------------------------

SMALL_RUN = 5_000


def metrics_cost(sink: NullSink, workdir: Path, lines: int, repeats: int = 3) -> dict[str, dict]:
    """CPU with monitoring off, and on with /metrics scraped every second, at
    batchSize 100, alternated `repeats` times (medians), at `lines` lines and
    at SMALL_RUN lines: the difference between the two sizes is the cost per
    line, the small run's the fixed cost (start-up, imports, threads). And the
    meter's own calls timed in this process, per line, as the agent makes
    them (one per chunk read, one per acknowledgement)."""
    import threading

    from prometheus_client import CollectorRegistry, generate_latest

    from keruta_actors.agent_meter import Meter
    from keruta_actors.records import RecordBlock

    small = SMALL_RUN
    cpu: dict[tuple[str, int], list[float]] = {}
    for _ in range(repeats):
        for size in (small, lines):
            for name in ("metrics off", "metrics on"):
                port = free_port()
                extra = ({"KERUTA_MONITORING__ENABLED": "false"} if name == "metrics off" else
                         {"KERUTA_MONITORING__PROMETHEUS__ENABLED": "true",
                          "KERUTA_MONITORING__PROMETHEUS__PORT": str(port)})
                done = threading.Event()

                def scrape() -> None:
                    while not done.wait(1.0):
                        try:
                            urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read()
                        except OSError:
                            pass
                threading.Thread(target=scrape, daemon=True).start()
                task_id, result = agent(sink, workdir, size, 0, 100, extra=extra)
                done.set()
                if throughput(name, task_id, result, sink, size)["lines"] != size:
                    print(f"    {name}, {size} lines: not all stored ({result['problem']})", flush=True)
                cpu.setdefault((name, size), []).append(result["cpu_s"])
    median = {key: statistics.median(values) for key, values in cpu.items()}
    rows: dict[str, dict] = {}
    for name in ("metrics off", "metrics on"):
        rows[name] = {"name": name, "cpu_s": {str(size): cpu[name, size] for size in (small, lines)},
                      "us_per_line": (median[name, lines] - median[name, small]) * 1e6 / (lines - small),
                      "fixed_ms": median[name, small] * 1e3}
    shared = ({"processId": 1},) * 3
    timed: dict[str, float] = {}
    for chunk, per_ack in ((4096, 128), (100, 10), (10, 1)):
        meter = Meter(CollectorRegistry(), "bench", ["logCount", "errorRate", "latency", "memoryUsage"], 1 << 29, 0.0)
        block = RecordBlock.of_lines("run", "stdout", 1, time.time(), ["INFO"] * (chunk - 1) + ["ERROR"],
                                     [(f"line {n}", None) for n in range(chunk)], shared)
        batches = block.cut([chunk // per_ack] * per_ack)
        count = 0
        started = time.process_time()
        while count < 200_000:
            meter.read(block)
            meter.not_shipped(())
            meter.buffer(count % 7, 1000)
            meter.delivered(batches, time.time())
            meter.sent("websocket", per_ack, 100 * chunk)
            count += chunk
        timed[f"{chunk}-line chunks"] = (time.process_time() - started) * 1e6 / count
        generate_latest(meter.registry)
    rows["meter calls"] = {"name": "meter calls (in process)", "us_per_line_by_chunk": timed}
    return rows


def show_metrics_cost(rows: dict[str, dict]) -> None:
    off, on = rows["metrics off"], rows["metrics on"]
    for row in (off, on):
        print(f"{row['name']}: {row['us_per_line']:.2f} µs/line, {row['fixed_ms']:.0f} ms for a {SMALL_RUN:,}-line run")
    print(f"metrics cost: {on['us_per_line'] - off['us_per_line']:+.2f} µs/line, "
          f"{on['fixed_ms'] - off['fixed_ms']:+.0f} ms fixed")
    calls = rows["meter calls"]["us_per_line_by_chunk"]
    print("meter calls alone: " + ", ".join(f"{v:.3f} µs/line in {k}" for k, v in calls.items()))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer lines and shorter runs: under two minutes")
    parser.add_argument("--lines", type=int, default=None, help="lines per throughput run (default 300,000)")
    parser.add_argument("--json", default="bench-report.json", help="where to write the JSON report")
    parser.add_argument("--chart", default="bench-report.png", help="where to write the PNG chart ('' for none)")
    parser.add_argument("--rest", action="store_true", help="also run the agent over its REST fallback only")
    parser.add_argument("--compare-filters", action="store_true", help="also run batchSize 100 without filters")
    parser.add_argument("--spool", action="store_true", help="also run batchSize 100 and 10 with the spool on and off")
    parser.add_argument("--metrics", action="store_true", help="also compare CPU per line with metrics off and on")
    parser.add_argument("--peer", choices=("transport", "naive"), help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("writer", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.peer:
        (transport_peer if args.peer == "transport" else naive_peer)(args.url, args.writer)
        return 0
    lines = args.lines or 300_000
    seconds = 3.0 if args.quick else 10.0
    rows: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        sink, receiver = NullSink(workdir), Receiver(workdir)
        try:
            print(f"{os.cpu_count()} cores; {lines:,} lines per throughput run", flush=True)
            for batch_size in (100, 10):
                task_id, result = agent(sink, workdir, lines, 0, batch_size)
                rows[f"agent b={batch_size}"] = throughput(f"agent b={batch_size}", task_id, result, sink, lines)
                show(rows[f"agent b={batch_size}"])
            if args.compare_filters:
                no_filters = {"KERUTA_LOGSTREAMING__FILTERS__EXCLUDEPATTERNS": "[]",
                              "KERUTA_LOGSTREAMING__FILTERS__INCLUDEPATTERNS": "[]", "KERUTA_LOG_LEVEL": "DEBUG"}
                task_id, result = agent(sink, workdir, lines, 0, 100, extra=no_filters)
                rows["no filters b=100"] = throughput("no filters b=100", task_id, result, sink, lines)
                show(rows["no filters b=100"])
            if args.spool:
                rows |= spool_costs(sink, workdir, lines)
            metrics = metrics_cost(sink, workdir, lines) if args.metrics else None
            if metrics:
                show_metrics_cost(metrics)
            if args.rest:
                rest = {"KERUTA_WEBSOCKET_URL": f"ws://127.0.0.1:{free_port()}/ws/tasks",
                        "KERUTA_WEBSOCKET_MAX_RECONNECT_ATTEMPTS": "1", "KERUTA_API__RATELIMIT__REQUESTSPERMINUTE": "0"}
                task_id, result = agent(receiver, workdir, lines // 4, 0, 10, extra=rest)
                rows["rest"] = result | {"name": "rest (receiver)", "lines": lines // 4, "expected": lines // 4,
                                         "lines_per_s": lines / 4 / result["seconds"],
                                         "us_per_line": result["cpu_s"] * 4e6 / lines}
                show(rows["rest"])
            for kind, name in (("transport", "transport peer"), ("naive", "naive")):
                task_id, result = peer(kind, sink, workdir, lines)
                rows[name] = throughput(name, task_id, result, sink, lines)
                show(rows[name])
            paced_lines = int(2000 * seconds)
            task_id, result = agent(sink, workdir, paced_lines, 2000, 10)
            rows["paced 2,000/s"] = throughput("paced 2,000/s", task_id, result, sink, paced_lines)
            show(rows["paced 2,000/s"])
            for rate in (100, 1000, 10000):
                row = latency_run(receiver, workdir, rate, seconds if rate < 10000 else seconds / 2)
                rows[row["name"]] = row
                show(row)
            idle_figures = idle_agent(sink, seconds)
            print(f"idle: PSS {idle_figures['idle_pss_mib']:.1f} MiB, CPU {idle_figures['idle_cpu_percent']:.2f}% "
                  f"of a core over {seconds:.0f} s", flush=True)
            echo = echo_hello(sink, workdir, 5)
            print(f"start -- echo hello: {echo:.3f} s wall (median of 5)")
        finally:
            sink.stop()
            receiver.stop()
    figures = summary(rows, idle_figures, echo)
    show_targets(figures)
    report = {"lines": lines, "cores": os.cpu_count(), "figures": figures,
              "runs": {name: {k: v for k, v in row.items() if k != "cdf_ms"} for name, row in rows.items()}}
    if metrics:
        report["metrics_cost"] = metrics
    Path(args.json).write_text(json.dumps(report, indent=2))
    print(f"\nreport: {args.json}")
    if args.chart:
        try:
            chart(rows, Path(args.chart))
            print(f"chart: {args.chart}")
        except ImportError:
            print("chart: skipped: matplotlib is missing (tools/setup.sh installs it)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
