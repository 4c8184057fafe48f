"""How many records the agent may hold in memory before it spools (SPEC §7).

The buffer starts at `bufferSize` records, doubles when more than 80% full and
halves when less than 30% full, never below `bufferSize` nor above a cap
derived from `performance.memoryLimitMB`. Near the memory limit the agent
shrinks it back to `bufferSize` at once; records beyond it go to the spool.
"""

from __future__ import annotations

MIB = 1024 * 1024


def buffer_cap_for_memory(
    memory_limit_mb: int,
    bytes_per_record: int = 512,
    share: float = 0.25,
    *,
    base: int = 1,
) -> int:
    """The most records the buffer may grow to, never below `base`.

    `memory_limit_mb` bounds the whole agent, every process of it, so the
    buffer may use only a `share` of it. A quarter, because the rest is
    already spoken for: an interpreter per actor process, and every held
    record exists more than once at the peak (in the buffer, in a pickled
    chunk between actors, in a batch in flight and its JSON encoding).

    `bytes_per_record` is a typical held record: the tuple and its id,
    numbers and a message of ~100-200 characters; the metadata dict is shared
    by every record of a source, so it costs nearly nothing per record.
    """
    if memory_limit_mb < 1:
        raise ValueError(f"memory_limit_mb must be >= 1, got {memory_limit_mb}")
    if bytes_per_record < 1 or not 0 < share <= 1:
        raise ValueError(
            f"need bytes_per_record >= 1 and 0 < share <= 1, got {bytes_per_record}, {share}"
        )
    return max(base, int(memory_limit_mb * MIB * share) // bytes_per_record)


class AdaptiveBuffer:
    """The buffer's size in records, always within [base, cap]."""

    def __init__(self, base: int, cap: int) -> None:
        if not 1 <= base <= cap:
            raise ValueError(f"need 1 <= base <= cap, got base={base}, cap={cap}")
        self.base = base
        self.cap = cap
        self.size = base

    def adjust(self, fill: int) -> int:
        """Resize for `fill` records currently held; return the new size."""
        # Integer comparisons: 0.8 * size in floats can round across `fill`.
        if fill * 10 > self.size * 8:
            self.size = min(self.size * 2, self.cap)
        elif fill * 10 < self.size * 3:
            self.size = max(self.size // 2, self.base)
        return self.size

    def shrink(self) -> int:
        """Back to `base`, under memory pressure; return the new size."""
        self.size = self.base
        return self.size
