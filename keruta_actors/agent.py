"""Runs one agent: its actors, in this process, on the agent's own loop.

The actors run on Thespian's simpleSystemBase, driven by the reactor
(adapters/reactor.py): one process, one loop, worker threads for what
blocks. Signals end the loop's wait at once (through the reactor's wake
pipe) and are forwarded to the child through the supervisor; the run then
drains as usual. The system is shut down on every way out: the run
finishing, an error, or a signal. Monitoring (monitoring.py) starts beside
the supervisor and stops after the actors.
"""

from __future__ import annotations

import signal

from thespian.actors import ActorSystem

from keruta_actors.actors.supervisor import Supervisor
from keruta_actors.adapters.reactor import Reactor
from keruta_actors.logsetup import log_config
from keruta_actors.monitoring import Monitoring
from keruta_actors.messages import AgentFinished, RunPlan, StartAgent, Terminate

SYSTEM_BASE = "simpleSystemBase"
# The longest the loop waits without looking at pending signals.
SIGNAL_POLL = 1.0
FORWARDED_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def run_agent(settings, plan: RunPlan) -> AgentFinished:
    """Run the plan to the end; returns how it finished."""
    pending_signals: list[int] = []
    system = ActorSystem(SYSTEM_BASE, transientUnique=True, logDefs=log_config(settings))
    loop = Reactor(system).install()
    previous = {signum: signal.signal(signum, lambda signum, _: pending_signals.append(signum))
                for signum in FORWARDED_SIGNALS}
    previous_wakeup_fd = signal.set_wakeup_fd(loop.wake_fd)
    monitoring = None
    try:
        supervisor = system.createActor(Supervisor)
        monitoring = Monitoring.start(system, settings, plan, supervisor)
        loop.tell(supervisor, StartAgent(settings, plan))
        while True:
            while pending_signals:
                loop.tell(supervisor, Terminate(pending_signals.pop(0)))
            for message in loop.take_outside():
                if isinstance(message, AgentFinished):
                    return message
            loop.run_once(SIGNAL_POLL)
    finally:
        signal.set_wakeup_fd(previous_wakeup_fd)
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        system.shutdown()
        if monitoring is not None:
            monitoring.close()
        loop.close()
