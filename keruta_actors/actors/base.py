"""The base every keruta actor stands on: a named logger, one timer, and the
descriptors it watches, both served by the agent's reactor
(adapters/reactor.py), since the one-process base has neither."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from thespian.actors import ActorExitRequest, ActorTypeDispatcher

from keruta_actors.adapters import reactor
from keruta_actors.messages import FdsReady, Tick
from keruta_actors.policy.timers import TimerSlot


class KerutaActor(ActorTypeDispatcher):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.log = logging.getLogger(f"keruta_actors.{type(self).__name__}")
        self._timer = TimerSlot()

    def receiveMessage(self, message, sender):
        """ActorTypeDispatcher's dispatch (`receiveMsg_<Type>`, the message's
        own type first, then its bases), looked up once per actor class and
        message type instead of walking both class hierarchies every time."""
        key = (type(self), type(message))
        handler = _HANDLERS.get(key)
        if handler is None:
            handler = _HANDLERS[key] = _handler(*key)
        return handler(self, message, sender)

    # -- for subclasses -----------------------------------------------------------

    def on_tick(self, now: float) -> None:
        """The wakeup asked for with `wake_at` has come."""

    def on_ready(self, readable: tuple[int, ...], writable: tuple[int, ...]) -> None:
        """Descriptors named in `watch` are ready."""

    def on_exit(self) -> None:
        """The actor is being stopped: release what it holds."""

    def wake_at(self, due: float) -> None:
        """Have `on_tick` called at monotonic time `due` (or soon after)."""
        if self._timer.request(due, time.monotonic()) is not None:
            reactor.current().wake_at(self.myAddress, due, self._timer.generation)

    def watch(self, readable: tuple[int, ...] = (), writable: tuple[int, ...] = ()) -> None:
        """Have `on_ready` called when any of these is ready; replaces the last call."""
        reactor.current().watch(self.myAddress, readable, writable)

    # -- handlers -------------------------------------------------------------------

    def receiveMsg_Tick(self, message: Tick, sender) -> None:
        if self._timer.fired(message.generation):
            self.on_tick(time.monotonic())

    def receiveMsg_FdsReady(self, message: FdsReady, sender) -> None:
        self.on_ready(message.readable, message.writable)

    def receiveMsg_ActorExitRequest(self, message: ActorExitRequest, sender) -> None:
        reactor.current().forget(self.myAddress)
        self.on_exit()


_HANDLERS: dict[tuple[type, type], Callable] = {}


def _handler(actor_class: type, message_class: type) -> Callable:
    for base in message_class.__mro__:
        method = getattr(actor_class, f"receiveMsg_{base.__name__}", None)
        if method is not None:
            return method
    return _ignore


def _ignore(actor, message, sender) -> None:
    """No handler for this message type: like ActorTypeDispatcher, drop it."""
