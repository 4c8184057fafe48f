"""The reader's choice between memory and the spool (policy/overflow.py),
as a state machine beside a plain model: blocks are appended to a pretend
spool (positions are ints), go on from memory or are read back from the
cursor, and after the spool fails are kept in memory behind the disk.
Always: what went down the pipeline is a prefix of what was read, in order,
each block once; reading is allowed as documented."""

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from keruta_actors.policy.overflow import Overflow


class OverflowMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.left_by_earlier_run = ["old-1", "old-2"]
        self.disk = [(i, i + 1, block) for i, block in enumerate(self.left_by_earlier_run)]  # (before, after, block)
        self.overflow = Overflow(0, len(self.disk))
        self.read = list(self.left_by_earlier_run)
        self.sent = []
        self.count = 0

    def _end(self):
        return self.disk[-1][1] if self.disk else 0

    @rule(room=st.booleans())
    def a_block_is_read(self, room):
        self.count += 1
        block = f"new-{self.count}"
        self.read.append(block)
        if self.overflow.spooling:
            before = self._end()
            self.disk.append((before, before + 1, block))
            if self.overflow.appended(before, before + 1, room):
                self.sent.append(block)
        elif self.overflow.unspooled(block, room):
            self.sent.append(block)

    @rule(room=st.integers(0, 4))
    def the_pipeline_takes_more(self, room):
        """The reader sends the backlog, `room` blocks at most."""
        for before, after, block in self.disk:
            if room == 0 or not self.overflow.on_disk:
                break
            if before >= self.overflow.cursor:
                self.sent.append(block)
                self.overflow.replayed(after)
                room -= 1
        while room > 0:
            block = self.overflow.next_from_memory()
            if block is None:
                break
            self.sent.append(block)
            room -= 1

    @rule()
    def the_spool_fails(self):
        self.overflow.spooling = False  # as WriteAhead._failed does

    @invariant()
    def sent_in_order_once(self):
        assert self.sent == self.read[: len(self.sent)]

    @invariant()
    def caught_up_means_all_sent(self):
        assert self.overflow.caught_up == (self.sent == self.read)

    @invariant()
    def reading_waits_only_for_a_full_spool_or_without_one_for_room(self):
        if self.overflow.spooling:
            assert self.overflow.may_read(spool_full=False, room=False)
            assert not self.overflow.may_read(spool_full=True, room=True)
        else:
            assert not self.overflow.may_read(spool_full=False, room=False)
            assert self.overflow.may_read(spool_full=False, room=True) == self.overflow.caught_up


test_overflow_machine = OverflowMachine.TestCase
