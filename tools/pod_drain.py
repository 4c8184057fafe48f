"""How long a keruta task pod's agent takes to deliver a job's output after
the job exits, against the stand-in for the keruta API as deployed
(tests/keruta_api_standin.py: no WebSocket, no batch endpoint, so REST with
one record per request).

    python tools/pod_drain.py --lines 10000 [--requests-per-minute N]

Prints the time from the child's exit to the last record stored, the
records stored, and the agent's exit code and wall time.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.keruta_api_standin import KerutaApiStandIn, StandInThread  # noqa: E402

# Writes the lines, then the monotonic time it exits at (the clock is
# system-wide) to the file named by argv[2].
CHILD = (
    "import sys, time\n"
    "for i in range(int(sys.argv[1])): print(f'line {i} of the job', flush=False)\n"
    "sys.stdout.flush()\n"
    "open(sys.argv[2], 'w').write(repr(time.monotonic()))\n"
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", type=int, default=10_000)
    parser.add_argument("--requests-per-minute", type=int, default=None,
                        help="api.rateLimit.requestsPerMinute (default: the agent's, 1000)")
    args = parser.parse_args()
    with StandInThread(KerutaApiStandIn()) as api, tempfile.TemporaryDirectory() as work:
        env = {key: value for key, value in os.environ.items() if not key.startswith("KERUTA_")} | {
            "KERUTA_API_URL": api.base_url, "KERUTA_TASK_ID": "pod-drain",
            "KERUTA_LOGGING__OUTPUT": "stderr", "TMPDIR": work,
        }
        if args.requests_per_minute is not None:
            env["KERUTA_API__RATELIMIT__REQUESTSPERMINUTE"] = str(args.requests_per_minute)
        exited_file = os.path.join(work, "exited")
        started = time.monotonic()
        finished = subprocess.run(
            [sys.executable, "-m", "keruta_actors", "start", "--", sys.executable, "-c", CHILD,
             str(args.lines), exited_file],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        wall = time.monotonic() - started
        child_exited = float(Path(exited_file).read_text())
        stored = api.stand_in.stored_at
    last = max(stored) - child_exited if stored else float("nan")
    print(f"lines {args.lines}, stored {len(stored)}, agent exit {finished.returncode}, wall {wall:.2f}s")
    print(f"child exit -> last record stored: {last:.2f}s")
    if finished.returncode:
        print(finished.stderr.decode()[-800:], file=sys.stderr)


if __name__ == "__main__":
    main()
