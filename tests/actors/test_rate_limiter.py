from collections import Counter

from keruta_actors.actors.rate_limiter import RateLimiter, leading_run
from keruta_actors.messages import Chunk, Configure


def received(chunks):
    """All line numbers passed on, and the not-shipped counts carried along."""
    numbers, counts = [], Counter()
    for chunk in chunks:
        if chunk.block is not None:
            numbers.extend(chunk.block.line_numbers)
        counts.update(dict(chunk.not_shipped))
    return numbers, counts


def test_drop_mode_passes_the_burst_and_counts_the_rest(system, probe, seen, plan, make_settings, lines):
    supervisor, downstream, upstream = probe(), probe(), probe()
    stage = system.createActor(RateLimiter)
    settings = make_settings(**{"logStreaming.performance.rateLimitPerSecond": 5,
                                "logStreaming.performance.onRateLimit": "drop"})
    system.tell(stage, Configure(settings, plan, supervisor=supervisor, downstream=downstream))
    system.tell(upstream, ("send", stage, Chunk(1, lines(1, 20), final=True)))
    numbers, counts = received(seen(downstream, Chunk))
    # a one-second burst of 5 goes through at once; the other 15 are dropped, and counted
    assert numbers == [1, 2, 3, 4, 5]
    assert counts == Counter({("run1", "stdout", "rate_limited"): 15})


def test_delay_mode_holds_records_back_without_dropping(system, probe, seen, plan, make_settings, lines, run_for):
    supervisor, downstream, upstream = probe(), probe(), probe()
    stage = system.createActor(RateLimiter)
    settings = make_settings(**{"logStreaming.performance.rateLimitPerSecond": 5})
    system.tell(stage, Configure(settings, plan, supervisor=supervisor, downstream=downstream))
    system.tell(upstream, ("send", stage, Chunk(1, lines(1, 8), final=True)))
    assert received(seen(downstream, Chunk))[0] == [1, 2, 3, 4, 5]
    run_for(1.0)  # the limiter's wakeup fires while the reactor runs
    numbers, counts = received(seen(downstream, Chunk))
    assert numbers == list(range(1, 9)) and not counts
    assert seen(downstream, Chunk)[-1].final


def test_leading_run_counts_the_first_records_of_one_source():
    assert leading_run(b"\x00\x00\x01\x00") == 2
    assert leading_run(b"\x01") == 1
    assert leading_run(b"") == 0
