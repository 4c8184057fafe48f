"""The agent's own records: source `agent` on the task's stream (SPEC §4, §8).

Alerts that fire or resolve are reported this way. They go down the
pipeline from the source reader like any line read, so they are filtered,
rate-limited, batched, confirmed and resent like any. Their line numbers
count from 1 in a sequence of their own, so their ids
(`{runId}-agent-{n}`) never collide with the child's.
"""

from __future__ import annotations

from keruta_actors.records import SOURCES, RecordBlock, make_record


class AgentRecords:
    def __init__(self, run_id: str, metadata: dict) -> None:
        self.run_id = run_id
        self.metadata = metadata  # the agent's: processId, hostname, agentVersion
        self.shared = (metadata,) * len(SOURCES)
        self.line_number = 0

    def block(self, level: str, message: str, extra: dict, now: float) -> RecordBlock:
        """One record, read (stamped) at `now`, with `extra` over the agent's metadata."""
        self.line_number += 1
        metadata = {**self.metadata, **extra} if extra else self.metadata
        record = make_record(self.run_id, "agent", self.line_number, now, level, message, metadata)
        return RecordBlock.of_rows(self.run_id, [record], self.shared)
