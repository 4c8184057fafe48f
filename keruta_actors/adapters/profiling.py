"""What the debug endpoints measure (SPEC §8, `debug.*`): garbage collection,
the heap, a CPU profile of the loop thread.

The agent is one process with one loop thread, where every actor runs. A
CPU profile therefore samples that thread's stack (`sys._current_frames`)
every few milliseconds from the request's own thread, for N seconds, and
answers in the collapsed-stack format that flamegraph.pl, inferno and
speedscope read: one line per distinct stack, root first, then its sample
count. Sampling costs the loop nothing but the GIL it shares for a moment.
"""

from __future__ import annotations

import gc
import sys
import time
import tracemalloc
from collections import Counter

from keruta_actors.adapters.process_memory import release_memory

SAMPLE_EVERY = 0.005
MAX_DEPTH = 64


def collect_garbage() -> dict:
    """A full collection and a heap trim; what they freed."""
    objects_before = len(gc.get_objects())
    collected = gc.collect()
    freed = release_memory()  # collects again (nothing left), then malloc_trim
    return {
        "collected": collected,  # unreachable objects found
        "objectsBefore": objects_before,
        "objectsAfter": len(gc.get_objects()),
        "rssFreedBytes": freed,  # how far the process's RSS fell
        "garbage": len(gc.garbage),
    }


def heap_top(limit: int = 25) -> str:
    """The source lines holding the most memory allocated since tracing began."""
    if not tracemalloc.is_tracing():
        return "tracemalloc is not tracing: the debug server starts it (debug.enabled)\n"
    snapshot = tracemalloc.take_snapshot().filter_traces(
        [tracemalloc.Filter(False, tracemalloc.__file__), tracemalloc.Filter(False, "<frozen importlib._bootstrap>")])
    stats = snapshot.statistics("lineno")
    current, peak = tracemalloc.get_traced_memory()
    lines = [f"# traced: {current / 1024:.1f} KiB now, {peak / 1024:.1f} KiB at peak; top {limit} by size",
             "# KiB\tblocks\tlocation"]
    for stat in stats[:limit]:
        frame = stat.traceback[0]
        lines.append(f"{stat.size / 1024:.1f}\t{stat.count}\t{frame.filename}:{frame.lineno}")
    return "\n".join(lines) + "\n"


def sample_stacks(thread_id: int, seconds: float, every: float = SAMPLE_EVERY) -> str:
    """Collapsed stacks of one thread, sampled for `seconds`."""
    stacks: Counter[str] = Counter()
    deadline = time.monotonic() + seconds
    samples = 0
    while time.monotonic() < deadline:
        frame = sys._current_frames().get(thread_id)
        if frame is None:
            break  # the thread has ended
        stacks[_collapsed(frame)] += 1
        samples += 1
        time.sleep(every)
    return "".join(f"{stack} {count}\n" for stack, count in stacks.most_common())


def _collapsed(frame) -> str:
    names = []
    while frame is not None and len(names) < MAX_DEPTH:
        code = frame.f_code
        names.append(f"{code.co_name} ({code.co_filename.rsplit('/', 1)[-1]}:{code.co_firstlineno})")
        frame = frame.f_back
    return ";".join(reversed(names)).replace(" ", "_")
