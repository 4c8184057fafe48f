"""The reactor: timers, watched descriptors and worker threads, delivered to
real actors on the in-process base."""

from __future__ import annotations

import os
import threading
import time

from thespian.actors import ActorSystem

from keruta_actors.actors.base import KerutaActor
from keruta_actors.adapters.reactor import Reactor, Worker, current


class Recorder(KerutaActor):
    """Keeps what the reactor tells it; ("wake", due), ("watch", fd) and
    ("work", job) make it ask for a timer, a descriptor or a job."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.events = []

    def receiveMsg_tuple(self, message, sender):
        what, argument = message
        if what == "wake":
            self.wake_at(argument)
        elif what == "watch":
            self.watch(readable=argument)
        elif what == "work":
            worker = Worker(current(), self.myAddress, "test-worker")
            worker.submit("job", argument)
            worker.stop()
        elif what == "report":
            self.send(sender, list(self.events))

    def receiveMsg_WorkDone(self, message, sender):
        self.events.append(("done", message.tag, message.result))

    def on_tick(self, now):
        self.events.append(("tick", now))

    def on_ready(self, readable, writable):
        self.events.append(("ready", readable))
        for fd in readable:
            os.read(fd, 100)


def events(system, actor):
    return system.ask(actor, ("report", None), 1)


def test_a_timer_fires_once_when_due_and_not_before(system, run_for):
    actor = system.createActor(Recorder)
    due = time.monotonic() + 0.05
    system.tell(actor, ("wake", due))
    run_for(0.02)
    assert events(system, actor) == []
    run_for(0.1)
    (tick,) = events(system, actor)
    assert tick[0] == "tick" and tick[1] >= due


def test_an_earlier_timer_supersedes_and_the_later_one_never_fires(system, run_for):
    actor = system.createActor(Recorder)
    now = time.monotonic()
    system.tell(actor, ("wake", now + 0.08))
    system.tell(actor, ("wake", now + 0.02))
    run_for(0.2)
    assert len(events(system, actor)) == 1  # one pending wakeup per actor


def test_a_readable_pipe_is_reported_until_it_is_no_longer_watched(system, run_for):
    actor = system.createActor(Recorder)
    read_end, write_end = os.pipe()
    try:
        system.tell(actor, ("watch", (read_end,)))
        os.write(write_end, b"x")
        run_for(0.05)
        assert events(system, actor) == [("ready", (read_end,))]
        system.tell(actor, ("watch", ()))
        os.write(write_end, b"y")
        run_for(0.05)
        assert len(events(system, actor)) == 1
    finally:
        os.close(read_end)
        os.close(write_end)


def test_a_descriptor_closed_while_watched_does_not_stop_the_loop(system, run_for):
    actor = system.createActor(Recorder)
    read_end, write_end = os.pipe()
    system.tell(actor, ("watch", (read_end,)))
    os.close(read_end)
    os.close(write_end)
    run_for(0.05)
    system.tell(actor, ("wake", time.monotonic()))
    run_for(0.05)
    assert [event[0] for event in events(system, actor)] == ["tick"]


def test_a_workers_result_and_its_exception_come_back_as_work_done(system, run_for):
    actor = system.createActor(Recorder)
    system.tell(actor, ("work", lambda: threading.current_thread().name))
    system.tell(actor, ("work", lambda: 1 / 0))
    current().run_until(lambda: len(events(system, actor)) == 2, 5)
    (first, second) = events(system, actor)
    assert first == ("done", "job", "test-worker")
    assert second[:2] == ("done", "job") and isinstance(second[2], ZeroDivisionError)


def test_a_result_posted_from_a_thread_ends_the_wait_at_once(system):
    actor = system.createActor(Recorder)
    threading.Timer(0.05, lambda: current().post(actor, ("wake", time.monotonic()))).start()
    started = time.monotonic()
    current().run_once(5.0)  # the post, not the five seconds, ends it
    assert time.monotonic() - started < 1.0


def test_a_forgotten_actors_timer_is_not_delivered(system, run_for):
    actor = system.createActor(Recorder)
    system.tell(actor, ("wake", time.monotonic() + 0.02))
    current().forget(actor)
    run_for(0.1)
    assert events(system, actor) == []


def shut_down_with_a_job(job):
    """A loop whose actor system is shut down while a worker's `job` runs
    (the worker not stopped by its actor): the loop, and the worker."""
    system = ActorSystem("simpleSystemBase", transientUnique=True)
    loop = Reactor(system)
    worker = Worker(loop, actor=None, name="job")
    worker.submit("job", job)
    system.shutdown()
    return loop, worker


def test_a_job_that_outlives_the_loop_is_dropped_quietly():
    """A worker finishing after the agent shut its loop down (a spool fsync
    under way at exit) must not write to the closed wake pipe, whose
    descriptor may by then belong to another file."""
    release = threading.Event()
    loop, worker = shut_down_with_a_job(release.wait)
    loop.close(grace=0)
    errors = []
    threading.excepthook, previous = (lambda args: errors.append(args.exc_value)), threading.excepthook
    try:
        release.set()
        worker.join(5)
    finally:
        threading.excepthook = previous
    assert errors == []


def test_closing_waits_for_a_job_under_way():
    """A job inside OpenSSL when the process exits crashes it: close lets
    the jobs under way end first."""
    ended = threading.Event()
    loop, worker = shut_down_with_a_job(lambda: (time.sleep(0.3), ended.set()))
    loop.close()  # the worker's actor never stopped it: close does
    assert ended.is_set() and not worker.running


def test_closing_waits_no_longer_than_its_grace_for_a_blocked_job():
    release = threading.Event()
    loop, worker = shut_down_with_a_job(release.wait)
    started = time.monotonic()
    loop.close(grace=0.2)
    try:
        assert 0.2 <= time.monotonic() - started < 2.0
        assert worker.running
    finally:
        release.set()
