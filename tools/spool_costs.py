"""CPU cost per line of the write-ahead spool: appending chunks, replaying
them, and the check of every frame when a spool is opened after a restart.

    .venv/bin/python tools/spool_costs.py [--dir DIR]

Prints nanoseconds of CPU per line (process time, best of several runs) for
chunks of several sizes, with fsync "never" (the interval fsync runs on a
timer, off the hot path; its cost is the disk's, not the CPU's). Lines are
distinct ~90-byte log lines, as in tools/policy_costs.py. DIR (default: a
temporary directory) should be on the disk the agent's stateDir would use.
"""

from __future__ import annotations

import argparse
import tempfile

from policy_costs import REPEATS, SHARED, lines, ns_per_line  # tools/ is on sys.path when run as a script

from keruta_actors.adapters.spool import Spool
from keruta_actors.config import SpoolSettings
from keruta_actors.records import RecordBlock

TOTAL_LINES = 200_000
SETTINGS = SpoolSettings(max_size=1 << 40, segment_size=16 << 20, fsync="never", fsync_interval=1.0)


def chunks(size: int) -> list[RecordBlock]:
    pairs = [(text, None) for text in lines(TOTAL_LINES, 0.0)]
    pieces = [pairs[start : start + size] for start in range(0, TOTAL_LINES, size)]
    return [
        RecordBlock.of_lines("run", "stdout", 1 + n * size, 0.0, ["INFO"] * len(piece), piece, SHARED)
        for n, piece in enumerate(pieces)
    ]


def costs(base: str, size: int) -> tuple[float, float, float]:
    """ns/line: append, replay (less the open), open (checking every frame)."""
    blocks = chunks(size)
    runs = iter(range(REPEATS))

    def append() -> None:
        with Spool.open(base, f"append-{next(runs)}", SETTINGS) as spool:
            for block in blocks:
                spool.append(block)

    def replay() -> None:
        with Spool.open(base, "append-0", SETTINGS) as spool:
            assert sum(len(block) for block, _ in spool.blocks()) == TOTAL_LINES

    appended = ns_per_line(append, TOTAL_LINES)
    replayed = ns_per_line(replay, TOTAL_LINES)
    opened = ns_per_line(lambda: Spool.open(base, "append-1", SETTINGS).close(), TOTAL_LINES)
    return appended, replayed - opened, opened


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", help="where to put the spools (default: a temporary directory)")
    directory = parser.parse_args().dir
    print(f"{'chunk':>6}  {'append':>8}  {'replay':>8}  {'open':>8}   ns/line (CPU), {TOTAL_LINES} lines")
    for size in (4096, 1000, 100, 10):
        with tempfile.TemporaryDirectory(prefix="spool-costs-", dir=directory) as base:
            appended, replayed, opened = costs(base, size)
        print(f"{size:>6}  {appended:8.0f}  {replayed:8.0f}  {opened:8.0f}")


if __name__ == "__main__":
    main()
