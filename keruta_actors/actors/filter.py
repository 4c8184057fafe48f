"""The filter stage: drops what must not be shipped, masks what must not leak.

The decisions (exclude and include patterns, the level threshold, masking the
configured credentials) are `policy.filters.FilterChain`'s; this actor only
applies the chain to each chunk and passes on the survivors and the counts.
"""

from __future__ import annotations

from array import array
from collections import Counter

from keruta_actors import meter
from keruta_actors.actors.stage import Stage
from keruta_actors.messages import Chunk, Configure
from keruta_actors.policy.filters import FilterChain, credentials
from keruta_actors.policy.flow import marks_of


class Filter(Stage):
    def on_configure(self, message: Configure) -> None:
        streaming = message.settings.log_streaming
        self.chain = FilterChain(
            exclude_patterns=streaming.filters.exclude_patterns,
            include_patterns=streaming.filters.include_patterns,
            min_level=streaming.level,
            secrets=credentials(message.settings.auth),
        )

    def on_chunk(self, chunk: Chunk) -> None:
        meter.current().read(chunk.block)  # every record read passes here first
        if chunk.block is None:
            self.emit(None, chunk.final, through=chunk.through)
            return
        block = chunk.block
        kept, reasons = self.chain.apply(block)
        lines: tuple = ()
        if reasons:  # which lines: the spool's account of what is left needs them
            gone = sorted(set(block.line_numbers).difference(kept.line_numbers))
            lines = ((block.stream, array("q", gone)),)
        not_shipped = Counter({(*block.stream, reason): count for reason, count in reasons.items()})
        self.emit(kept, chunk.final, not_shipped, marks_of(block, chunk.through), lines)
