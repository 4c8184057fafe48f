"""The rate-limit stage: shapes the stream to the configured rates.

A limit delays records; it does not drop them, unless
`performance.onRateLimit` is `drop`, and then each dropped record is counted
as `rate_limited`. Records wait here in arrival order; while more than a
buffer's worth waits, upstream is held back, so a long wait ends with the
child blocking on its pipe rather than with this actor growing.
"""

from __future__ import annotations

import time
from collections import Counter, deque

from keruta_actors.actors.stage import Stage
from keruta_actors.messages import Chunk, Configure
from keruta_actors.policy.rate_limit import HierarchicalLimiter
from keruta_actors.records import SOURCE


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
        self.unlimited = not (
            performance.rate_limit_per_second
            or performance.rate_limit_per_task
            or performance.rate_limit_per_source
        )
        self.drop_excess = performance.on_rate_limit == "drop"
        self.max_waiting = streaming.buffer_size
        self.waiting: deque = deque()
        self.final_seen = False

    def on_chunk(self, chunk: Chunk) -> None:
        if self.unlimited:
            self.emit(chunk.records, chunk.final)
            return
        self.waiting.extend(chunk.records)
        self.final_seen = chunk.final
        self._release(time.monotonic())

    def on_tick(self, now: float) -> None:
        self._release(now)
        self.settle_upstream()

    def holding_back(self) -> bool:
        return len(self.waiting) > self.max_waiting or self.outbox.congested

    def _release(self, now: float) -> None:
        released: list = []
        dropped: Counter[str] = Counter()
        while self.waiting:
            source = self.waiting[0][SOURCE]
            run = self._leading_run(source)
            granted = self.limiter.grant(self.task_id, source, run, now)
            released.extend(self.waiting.popleft() for _ in range(granted))
            if granted == run:
                continue
            if not self.drop_excess:
                self.wake_at(self.limiter.retry_at(self.task_id, source, now))
                break
            for _ in range(run - granted):
                self.waiting.popleft()
            dropped["rate_limited"] += run - granted
        self.emit(tuple(released), self.final_seen and not self.waiting, dropped)

    def _leading_run(self, source: str) -> int:
        """How many records at the head of the queue share `source`."""
        run = 0
        for record in self.waiting:
            if record[SOURCE] != source:
                break
            run += 1
        return run
