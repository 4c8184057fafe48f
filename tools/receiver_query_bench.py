"""How fast the reference receiver answers the REST log queries and exports
on one big task.

Fills a fresh database with N records of one task (default 1,000,000: three
sources, four levels, one record a millisecond), starts `run_receiver` in a
child process with no read limit, and times over HTTP, from this process:
- the first page, a deep page (the last one) and a level filter's first page,
  `--repeat` times each, as p50 and p99;
- a whole export in each format, streamed and counted, not kept.

    .venv/bin/python tools/receiver_query_bench.py [--records 1000000] [--repeat 50]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

import requests

from keruta_actors.receiver import LogStore
from keruta_actors.records import LEVELS, SOURCES, rfc3339

SERVE = "from keruta_actors.receiver import run_receiver; run_receiver(port=0, db_path={!r}, reads_per_minute=0)"
TASK = "big"
METADATA = {"processId": 4242, "command": "python3 train.py", "hostname": "job-x2k8d", "agentVersion": "0.1.0"}


def fill(db_path: str, n: int) -> None:
    store = LogStore(db_path)
    start = 1_800_000_000.0
    for first in range(0, n, 10_000):
        store.insert(
            [
                {
                    "id": f"{TASK}-{i}",
                    "taskId": TASK,
                    "timestamp": rfc3339(start + i / 1000),
                    "source": SOURCES[i % 3],
                    "level": LEVELS[0 if i % 10 == 0 else 2 if i % 25 == 0 else 3 if i % 50 == 1 else 1],
                    "message": f"epoch {i // 1000} step {i}: loss={1 / (i + 1):.6f}",
                    "lineNumber": i // 3 + 1,
                    "metadata": METADATA,
                }
                for i in range(first, min(n, first + 10_000))
            ]
        )
    store.close()


def timed(url: str, repeat: int) -> tuple[float, float]:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        requests.get(url, timeout=120).raise_for_status()
        times.append(time.perf_counter() - started)
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, round(len(times) * 0.99))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="receiver-query-bench-") as directory:
        db_path = os.path.join(directory, "bench.db")
        started = time.perf_counter()
        fill(db_path, args.records)
        print(f"filled {args.records:,} records in {time.perf_counter() - started:.1f} s")
        child = subprocess.Popen([sys.executable, "-c", SERVE.format(db_path)], stdout=subprocess.PIPE, text=True)
        try:
            api = re.search(r"http://\S+/api/v1", child.stdout.readline()).group(0)
            logs = f"{api}/tasks/{TASK}/logs"
            last = (args.records - 1) // 100
            for label, query in [
                ("first page", "?page=0&size=100"),
                (f"deep page ({last})", f"?page={last}&size=100"),
                ("level=ERROR, first page", "?level=ERROR&size=100"),
                ("source=stderr, page 100", "?source=stderr&page=100&size=100"),
            ]:
                p50, p99 = timed(logs + query, args.repeat)
                print(f"{label:<26} p50 {p50 * 1000:7.1f} ms   p99 {p99 * 1000:7.1f} ms")
            for kind in ("json", "csv", "txt"):
                started = time.perf_counter()
                size = 0
                with requests.get(f"{logs}/export?format={kind}", stream=True, timeout=600) as response:
                    for piece in response.iter_content(1 << 16):
                        size += len(piece)
                elapsed = time.perf_counter() - started
                print(f"export {kind:<5} {elapsed:6.2f} s  {size / 1e6:7.1f} MB  {args.records / elapsed:,.0f} records/s")
        finally:
            child.terminate()
            child.wait(timeout=10)


if __name__ == "__main__":
    main()
