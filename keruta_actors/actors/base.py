"""The base every keruta actor stands on: a named logger and one timer."""

from __future__ import annotations

import logging
import time
from datetime import timedelta

from thespian.actors import ActorTypeDispatcher, WakeupMessage

from keruta_actors.messages import Tick
from keruta_actors.policy.timers import TimerSlot


class KerutaActor(ActorTypeDispatcher):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.log = logging.getLogger(f"keruta_actors.{type(self).__name__}")
        self._timer = TimerSlot()

    def on_tick(self, now: float) -> None:
        """The wakeup asked for with `wake_at` has come."""

    def wake_at(self, due: float) -> None:
        """Have `on_tick` called at monotonic time `due` (or soon after)."""
        delay = self._timer.request(due, time.monotonic())
        if delay is not None:
            self.wakeupAfter(timedelta(seconds=delay), payload=Tick(self._timer.generation))

    def receiveMsg_WakeupMessage(self, message: WakeupMessage, sender) -> None:
        payload = message.payload
        if isinstance(payload, Tick) and self._timer.fired(payload.generation):
            self.on_tick(time.monotonic())
