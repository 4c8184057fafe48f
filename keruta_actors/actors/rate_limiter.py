"""The rate-limit stage: shapes the stream to the configured rates.

A limit delays records; it does not drop them, unless
`performance.onRateLimit` is `drop`, and then each dropped record is counted
as `rate_limited`. Records wait here in arrival order; while more than a
buffer's worth waits, upstream is held back, so a long wait ends with the
child blocking on its pipe rather than with this actor growing.

Without any limit configured the supervisor leaves this stage out: a hop
that only forwards would cost every chunk a message and a credit.
"""

from __future__ import annotations

import time
from collections import Counter, deque

from keruta_actors.actors.stage import Stage
from keruta_actors.messages import Chunk, Configure
from keruta_actors.policy.rate_limit import HierarchicalLimiter
from keruta_actors.records import SOURCES, RecordBlock


class RateLimiter(Stage):
    def on_configure(self, message: Configure) -> None:
        streaming = message.settings.log_streaming
        performance = streaming.performance
        self.task_id = message.plan.task_id
        self.limiter = HierarchicalLimiter(
            global_rate=performance.rate_limit_per_second,
            per_task_rate=performance.rate_limit_per_task,
            per_source_rate=performance.rate_limit_per_source,
            now=time.monotonic(),
        )
        self.drop_excess = performance.on_rate_limit == "drop"
        self.max_waiting = streaming.buffer_size
        self.waiting: deque[RecordBlock] = deque()
        self.waiting_records = 0
        self.final_seen = False

    def on_chunk(self, chunk: Chunk) -> None:
        if chunk.block is not None:
            self.waiting.append(chunk.block)
            self.waiting_records += len(chunk.block)
        self.final_seen = self.final_seen or chunk.final
        self._release(time.monotonic())

    def on_tick(self, now: float) -> None:
        self._release(now)
        self.settle_upstream()

    def holding_back(self) -> bool:
        return self.waiting_records > self.max_waiting or self.outbox.congested

    def _release(self, now: float) -> None:
        """Pass on what the buckets grant, oldest first, a run of records of
        one source at a time; wait (or drop, if so configured) for the rest."""
        while self.waiting:
            head = self.waiting[0]
            # per stream: the child's stdout and a tailed file both ship as
            # "stdout", but each has a bucket of its own
            source = f"{head.run_id}/{SOURCES[head.sources[0]]}"
            run = leading_run(head.sources)
            granted = self.limiter.grant(self.task_id, source, run, now)
            dropped = run - granted if self.drop_excess else 0
            if not granted + dropped:
                # nothing to take: wait, without splitting the block for nothing
                self.wake_at(self.limiter.retry_at(self.task_id, source, now))
                break
            passed, _, rest = head.cut([granted, dropped, len(head) - granted - dropped])
            self.waiting_records -= granted + dropped
            if len(rest):
                self.waiting[0] = rest
            else:
                self.waiting.popleft()
            self.emit(passed, not_shipped=Counter(rate_limited=dropped) if dropped else None)
            if granted + dropped < run:
                self.wake_at(self.limiter.retry_at(self.task_id, source, now))
                break
        if self.final_seen and not self.waiting:
            self.emit(None, final=True)


def leading_run(sources: bytes) -> int:
    """How many records at the head share the first record's source."""
    return len(sources) - len(sources.lstrip(sources[:1]))


def rate_limited(performance) -> bool:
    """Whether `performance` (config.Performance) limits any rate at all."""
    return bool(performance.rate_limit_per_second or performance.rate_limit_per_task
                or performance.rate_limit_per_source)
