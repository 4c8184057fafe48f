"""Runs one agent: an actor system of its own, the pipeline, and a clean exit.

Every run gets a private Thespian admin port (two systems sharing a port
merge into one, and one's shutdown kills the other's actors), binds every
socket to loopback (with Thespian's timers patched so that no wakeup is
slept through), and shuts the system down on every way out: the run
finishing, an error, or a signal. Signals are forwarded to the child through
the supervisor; the run then drains as usual.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import socket
from contextlib import contextmanager
from typing import Iterator

import psutil
from thespian.actors import ActorSystem

from keruta_actors.actors.supervisor import Supervisor
from keruta_actors.adapters.thespian_loopback import LOOPBACK, confine_to_loopback
from keruta_actors.adapters.thespian_timers import keep_near_wakeups
from keruta_actors.logsetup import log_config
from keruta_actors.messages import AgentFinished, RunPlan, StartAgent, Terminate

SYSTEM_BASE = "multiprocTCPBase"
# How often the waiting CLI looks at pending signals.
SIGNAL_POLL = 0.2
FORWARDED_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)

log = logging.getLogger(__name__)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        return probe.getsockname()[1]


@contextmanager
def actor_system(settings) -> Iterator[ActorSystem]:
    """A private multiprocTCPBase system bound to loopback, always shut down."""
    confine_to_loopback()
    keep_near_wakeups()
    system = ActorSystem(
        SYSTEM_BASE,
        {"Admin Port": free_port()},
        logDefs=log_config(settings),
    )
    try:
        yield system
    finally:
        system.shutdown()
        reap_leftovers()


def reap_leftovers(grace: float = 2.0) -> None:
    """Stop any actor process that outlived `shutdown()`: every process the
    system started is a descendant of this one, and none may stay behind."""
    children = psutil.Process().children(recursive=True)
    # Thespian does not wait for the admin it started: an exited admin is
    # still a child here, a zombie. Collect it quietly; it outlived nothing.
    exited = [process for process in children if _is_zombie(process)]
    psutil.wait_procs(exited, timeout=grace)
    leftovers = [process for process in children if process not in exited]
    if not leftovers:
        return
    log.warning("%d agent processes outlived the shutdown; stopping them", len(leftovers))
    for process in leftovers:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.terminate()
    _, alive = psutil.wait_procs(leftovers, timeout=grace)
    for process in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.kill()
    psutil.wait_procs(alive, timeout=grace)


def _is_zombie(process: psutil.Process) -> bool:
    try:
        return process.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True  # already gone, nothing to stop


def run_agent(settings, plan: RunPlan) -> AgentFinished:
    """Run the plan to the end; returns how it finished."""
    pending_signals: list[int] = []
    previous = {signum: signal.signal(signum, lambda signum, _: pending_signals.append(signum)) for signum in FORWARDED_SIGNALS}
    try:
        with actor_system(settings) as system:
            supervisor = system.createActor(Supervisor)
            system.tell(supervisor, StartAgent(settings, plan))
            while True:
                while pending_signals:
                    system.tell(supervisor, Terminate(pending_signals.pop(0)))
                reply = system.listen(SIGNAL_POLL)
                if isinstance(reply, AgentFinished):
                    return reply
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
