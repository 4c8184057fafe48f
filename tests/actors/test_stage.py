"""What every stage shares (actors/stage.py), on a minimal stage."""

from __future__ import annotations

from keruta_actors.actors.stage import Stage
from keruta_actors.messages import Chunk, ChunkAccepted, Configure


class Gatherer(Stage):
    """Gathers what it is given at its next tick, after the linger, as the
    source reader gathers its pipes."""

    LINGER = 0.05

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.waiting = []
        self.ticks = 0

    def on_chunk(self, chunk) -> None:
        pass

    def receiveMsg_tuple(self, message, sender) -> None:
        what, block = message
        if what == "emit":
            self.emit(block)
        elif what == "gather":
            self.waiting.append(block)
            self.wake_at(self.outbox.resting_until)
        elif what == "ticks":
            self.send(sender, self.ticks)

    def on_tick(self, now: float) -> None:
        self.ticks += 1
        while self.waiting:
            self.emit(self.waiting.pop(0), cut=False)
        self.flush_lingering(now)


def test_records_gathered_at_a_tick_go_in_one_cut_with_no_extra_wakeup(system, probe, seen, plan, make_settings,
                                                                      lines, run_for):
    """A gathered emit (cut=False) must not arm the linger's wakeup itself:
    it would be due already, stay pending, and wake the stage again at once,
    which then read the few lines that came meanwhile and cut them apart
    (two chunks per stream per linger instead of one)."""
    supervisor, downstream = probe(), probe()
    stage = system.createActor(Gatherer)
    system.tell(stage, Configure(make_settings(), plan, supervisor=supervisor, downstream=downstream))
    system.tell(stage, ("emit", lines(1, 2)))  # idle: cut at once, and the linger starts
    system.tell(downstream, ("send", stage, ChunkAccepted(1)))
    system.tell(stage, ("gather", lines(3, 2)))
    system.tell(stage, ("gather", lines(5, 1)))
    run_for(0.2)  # four lingers
    assert [list(chunk.block.line_numbers) for chunk in seen(downstream, Chunk)] == [[1, 2], [3, 4, 5]]
    assert system.ask(stage, ("ticks", None), 1) == 1
