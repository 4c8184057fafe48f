"""How many records a second the reference receiver stores, on its own.

Starts `run_receiver` in a child process (so the client does not share its
interpreter lock), then, for each mode, sends N distinct records and times
from the first byte sent to the moment every record is confirmed stored:
- `logs` batches of B records, with up to --window batches waiting for acks;
- single `log` frames, confirmed by one WebSocket ping at the end (the
  receiver answers it only after storing everything before it).

Frames are encoded and masked before the clock starts, so the figures are the
receiver's cost, not the client's. Besides records per second of wall time,
it prints records per second of the receiver's CPU time, which other load on
the machine disturbs far less.

    .venv/bin/python tools/receiver_ingest_bench.py [--records 200000] [--window 8]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time

import psutil
import websocket

from keruta_actors.receiver import LogStore

METADATA = {
    "processId": 4242,
    "command": "python3 /scripts/train.py --epochs 10",
    "hostname": "keruta-job-7f9c4-x2k8d",
    "agentVersion": "0.1.0",
}
SERVE = "from keruta_actors.receiver import run_receiver; run_receiver(port=0, db_path={!r})"


def records(task_id: str, n: int) -> list[dict]:
    return [
        {
            "type": "log",
            "id": f"bench-{task_id}-stdout-{i}",
            "taskId": task_id,
            "timestamp": "2026-11-29T01:02:03.456Z",
            "source": "stdout",
            "level": "INFO",
            "message": f"epoch {i // 1000} step {i}: loss={1 / (i + 1):.6f} lr=0.001 grad_norm={i % 97}",
            "lineNumber": i,
            "metadata": METADATA,
        }
        for i in range(1, n + 1)
    ]


def framed(payload: str) -> bytes:
    return websocket.ABNF.create_frame(payload, websocket.ABNF.OPCODE_TEXT).format()


def send_batches(ws: websocket.WebSocket, task_id: str, n: int, size: int, window: int) -> float:
    all_records = records(task_id, n)
    frames = [
        framed(json.dumps({"type": "logs", "batchId": k, "taskId": task_id, "logs": chunk}))
        for k, chunk in enumerate(all_records[s : s + size] for s in range(0, n, size))
    ]
    sent = acked = 0
    start = time.perf_counter()
    while acked < len(frames):
        while sent < len(frames) and sent - acked < window:
            ws.sock.sendall(frames[sent])
            sent += 1
        reply = json.loads(ws.recv())
        if reply != {"type": "ack", "batchId": acked}:
            raise RuntimeError(f"expected the ack of batch {acked}, got {reply}")
        acked += 1
    return time.perf_counter() - start


def send_singles(ws: websocket.WebSocket, task_id: str, n: int) -> float:
    frames = [framed(json.dumps(r)) for r in records(task_id, n)]
    chunks = [b"".join(frames[s : s + 256]) for s in range(0, n, 256)]
    start = time.perf_counter()
    for chunk in chunks:
        ws.sock.sendall(chunk)
    ws.ping(b"done")
    while ws.recv_data_frame(control_frame=True)[0] != websocket.ABNF.OPCODE_PONG:
        pass
    return time.perf_counter() - start


def start_receiver(db_path: str) -> tuple[subprocess.Popen, str]:
    child = subprocess.Popen(
        [sys.executable, "-c", SERVE.format(db_path)], stdout=subprocess.PIPE, text=True
    )
    line = child.stdout.readline()
    match = re.search(r"ws://[^/]+/ws/tasks", line)
    if not match:
        child.kill()
        sys.exit(f"receiver did not start: {line!r}")
    return child, match.group(0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--window", type=int, default=8, help="batches in flight")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="receiver-bench-") as directory:
        run_all(os.path.join(directory, "bench.db"), args.records, args.window)


def run_all(db_path: str, n_records: int, window: int) -> None:
    child, url = start_receiver(db_path)
    receiver = psutil.Process(child.pid)
    store = LogStore(db_path)
    try:
        modes = [(f"logs batches of {b}", b) for b in (10, 100, 1000)] + [("single log frames", 0)]
        for n, (label, size) in enumerate(modes):
            task_id = f"bench{n}"
            ws = websocket.create_connection(f"{url}/{task_id}", timeout=60)
            ws.recv()  # hello
            cpu_before = sum(receiver.cpu_times()[:2])
            if size:
                elapsed = send_batches(ws, task_id, n_records, size, window)
            else:
                elapsed = send_singles(ws, task_id, n_records)
            cpu = sum(receiver.cpu_times()[:2]) - cpu_before
            ws.close()
            stored = store.count(task_id)
            if stored != n_records:
                raise RuntimeError(f"{label}: stored {stored} of {n_records} records")
            print(
                f"{label:<22} {n_records / elapsed:>9,.0f} records/s"
                f"  {n_records / cpu:>9,.0f} records/CPU-s  ({elapsed:.2f} s)"
            )
    finally:
        store.close()
        child.terminate()
        child.wait(timeout=10)


if __name__ == "__main__":
    main()
