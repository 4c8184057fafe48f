"""Putting numbered messages back in the order they were sent.

Thespian's TCP transport may open a second socket to a busy peer, so a
message can overtake the one sent before it. Senders number their messages
from 1; the receiver holds early ones until their turn and ignores repeats.
The sender's credit window bounds how many can wait here.
"""

from __future__ import annotations

from typing import Generic, TypeVar

T = TypeVar("T")


class InOrder(Generic[T]):
    def __init__(self) -> None:
        self.last = 0  # the highest number released so far
        self._early: dict[int, T] = {}

    def arrived(self, seq: int, item: T) -> list[T]:
        """Everything that may be handled now, in order (often just `item`)."""
        if seq <= self.last or seq in self._early:
            return []
        self._early[seq] = item
        ready = []
        while self.last + 1 in self._early:
            self.last += 1
            ready.append(self._early.pop(self.last))
        return ready
