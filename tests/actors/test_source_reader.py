"""The source reader against a real child."""

from keruta_actors.actors.source_reader import PIPE_GRACE, SourceReader
from keruta_actors.messages import Chunk, Configure, InputEnded, RunPlan


class LateReadiness(SourceReader):
    """Readiness of the child's pipes is never delivered, as when the child
    writes and exits between the loop's select and the reader's tick: only
    the tick can find the output."""

    def on_ready(self, readable, writable):
        pass


def test_output_waiting_in_a_pipe_when_the_child_exits_is_read_not_dropped(system, probe, seen, make_settings,
                                                                            wait_until, tmp_path):
    """The cause of 'one record lost, exit 0': a child that had been silent
    for PIPE_GRACE wrote its one line and exited; the tick then took its pipe
    for one a grandchild holds open, and closed it unread."""
    supervisor, downstream = probe(), probe()
    reader = system.createActor(LateReadiness)
    plan = RunPlan("task", "run1", ("sh", "-c", f"sleep {PIPE_GRACE + 0.3}; echo done"), "", "host", "0.1.0")
    settings = make_settings(**{"logStreaming.stateDir": str(tmp_path)})
    system.tell(reader, Configure(settings, plan, supervisor=supervisor, downstream=downstream))
    (ended,) = wait_until(lambda: seen(supervisor, InputEnded), timeout=PIPE_GRACE + 10)
    messages = [m for chunk in seen(downstream, Chunk) if chunk.block is not None for m in chunk.block.messages()]
    assert messages == ["done"] and ended.lines_read == 1
