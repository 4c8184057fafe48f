"""The policy core: pure decisions, no I/O.

Nothing here imports thespian, sockets, HTTP clients, `time` or `random`. Time
arrives as `now: float` and randomness as a `random.Random`, so every decision
can be replayed exactly in a test.
"""
