from keruta_actors.actors.filter import Filter
from keruta_actors.messages import Chunk, ChunkAccepted, Configure


def test_filters_a_chunk_and_passes_the_counts_on(system, probe, seen, plan, make_settings, lines):
    supervisor, downstream, upstream = probe(), probe(), probe()
    stage = system.createActor(Filter)
    settings = make_settings(**{"auth.token": "tok-12345"})
    system.tell(stage, Configure(settings, plan, supervisor=supervisor, downstream=downstream))
    block = lines(1, 4, text="step {n} with tok-12345")
    system.tell(upstream, ("send", stage, Chunk(1, block, final=True, not_shipped=(("below_level", 2),))))
    (chunk,) = seen(downstream, Chunk)
    assert chunk.final and list(chunk.block.line_numbers) == [1, 2, 3, 4]
    assert all("tok-12345" not in message for message in chunk.block.messages())
    assert dict(chunk.not_shipped) == {"below_level": 2}
    assert seen(upstream, ChunkAccepted) == [ChunkAccepted(1)]


def test_a_repeated_chunk_is_acknowledged_but_not_passed_on_twice(system, probe, seen, plan, make_settings, lines):
    supervisor, downstream, upstream = probe(), probe(), probe()
    stage = system.createActor(Filter)
    system.tell(stage, Configure(make_settings(), plan, supervisor=supervisor, downstream=downstream))
    chunk = Chunk(1, lines(1, 2, text="password {n}"))
    system.tell(upstream, ("send", stage, chunk))
    system.tell(upstream, ("send", stage, chunk))
    assert seen(upstream, ChunkAccepted) == [ChunkAccepted(1), ChunkAccepted(1)]
    # both lines were excluded: no record went on, only their count and how
    # far the stream has got (so the spool may forget them), and only once
    (passed,) = seen(downstream, Chunk)
    assert passed.block is None
    assert dict(passed.not_shipped) == {("run1", "stdout", "excluded"): 2}
    assert passed.through == ((("run1", "stdout"), 2),)


def test_chunks_are_handled_in_the_order_they_were_sent(system, probe, seen, plan, make_settings, lines):
    supervisor, downstream, upstream = probe(), probe(), probe()
    stage = system.createActor(Filter)
    system.tell(stage, Configure(make_settings(), plan, supervisor=supervisor, downstream=downstream))
    # chunk 2 overtakes chunk 1 on the way (Thespian may deliver out of order)
    system.tell(upstream, ("send", stage, Chunk(2, lines(4, 3))))
    assert seen(downstream, Chunk) == []
    system.tell(upstream, ("send", stage, Chunk(1, lines(1, 3))))
    system.tell(upstream, ("send", stage, Chunk(3, lines(7, 1), final=True)))
    passed = [n for chunk in seen(downstream, Chunk) for n in chunk.block.line_numbers]
    assert passed == [1, 2, 3, 4, 5, 6, 7]
    assert sorted(m.seq for m in seen(upstream, ChunkAccepted)) == [1, 2, 3]


class BrokenFilter(Filter):
    """Fails on the chunk holding line 4, as a bug would."""

    def on_chunk(self, chunk):
        if 4 in chunk.block.line_numbers:
            raise RuntimeError("a bug")
        super().on_chunk(chunk)


def test_a_chunk_the_stage_fails_on_is_counted_and_the_stream_goes_on(system, probe, seen, plan, make_settings, lines):
    supervisor, downstream, upstream = probe(), probe(), probe()
    stage = system.createActor(BrokenFilter)
    system.tell(stage, Configure(make_settings(), plan, supervisor=supervisor, downstream=downstream))
    for seq, (first, count) in enumerate([(1, 3), (4, 3), (7, 2)], start=1):
        system.tell(upstream, ("send", stage, Chunk(seq, lines(first, count), final=seq == 3)))
    chunks = seen(downstream, Chunk)
    assert [n for chunk in chunks for n in chunk.block.line_numbers] == [1, 2, 3, 7, 8]
    assert dict(chunks[-1].not_shipped) == {("run1", "stdout", "stage_failure"): 3} and chunks[-1].final
    # the failed chunk's lines still count as passed: the stream's watermark may go beyond them
    assert chunks[-1].through == ((("run1", "stdout"), 8),)
