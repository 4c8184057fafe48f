"""Every message type survives pickle. The actors share one process and
pass messages by reference, but messages stay plain data: frozen, and fit
to cross a process boundary should one ever be needed (on Thespian's
multiprocess bases an unpicklable message is dropped without a word)."""

from __future__ import annotations

import dataclasses
import inspect
import pickle

import pytest

from keruta_actors import messages
from keruta_actors.config import load_settings
from keruta_actors.policy.memory import MemoryReading
from keruta_actors.records import RecordBlock, make_record

SETTINGS = load_settings(environ={})
PLAN = messages.RunPlan("task", "run1", ("sh", "-c", "true"), "", "host", "0.1.0", ("stdin", "file:/var/log/app.log"), 42)
SHARED = ({"processId": 1},) * 3
RECORD = make_record("run1", "stdout", 1, 1.5, "INFO", "hello\x00\x1b[31m", SHARED[0])
BLOCK = RecordBlock.of_rows("run1", [RECORD], SHARED)

EXAMPLES = {
    messages.RunPlan: PLAN,
    messages.StartAgent: messages.StartAgent(SETTINGS, PLAN),
    messages.Configure: messages.Configure(SETTINGS, PLAN, supervisor=None, downstream=None, generation=3),
    messages.Terminate: messages.Terminate(15),
    messages.AgentFinished: messages.AgentFinished(0, 10, 0, {"excluded": 2}, ""),
    messages.Chunk: messages.Chunk(1, BLOCK, final=True, not_shipped=((("run1", "stdout", "excluded"), 1),),
                                   through=((("run1", "stdout"), 2),)),
    messages.ChunkAccepted: messages.ChunkAccepted(1),
    messages.Batches: messages.Batches(1, ((1, BLOCK),)),
    messages.BatchesAcked: messages.BatchesAcked((1, 2), (0.1,)),
    messages.InputEnded: messages.InputEnded(0, 5),
    messages.ChildFailedToStart: messages.ChildFailedToStart("command not found: x", 127),
    messages.LinkUp: messages.LinkUp(1, ("batch",)),
    messages.LinkLost: messages.LinkLost(1, "refused", False, unserved=True),
    messages.UseConnection: messages.UseConnection(None),
    messages.Drained: messages.Drained(5),
    messages.ReportDelivery: messages.ReportDelivery(),
    messages.DeliveryReport: messages.DeliveryReport(5, 0, {}, ((("run1", "stdout"), 5),),
                                                     ((("run1", "stdout", "excluded"), 1),), ((("run1", "stdout"), 6),)),
    messages.CloseInput: messages.CloseInput(((("run1", "stdout"), 6),)),
    messages.InputAccount: messages.InputAccount(((("run1", "stdout"), 6),), (), ((("run1", "stdout"), 1),),
                                                 ((("run1", "stdout"), "stdout"),), "/tmp/state/task.spool", ""),
    messages.Tick: messages.Tick(2, "tick"),
    messages.FdsReady: messages.FdsReady((3, 4), (5,)),
    messages.WorkDone: messages.WorkDone("post", ("an outcome", 201)),
    messages.Delivered: messages.Delivered(((("run1", "stdout"), 10), (("task.file-1a2b", "stdout"), 3))),
    messages.RelieveMemory: messages.RelieveMemory(),
    messages.ShipAgentRecord: messages.ShipAgentRecord("ERROR", "alert fired", (("alert", "high_latency"),)),
    messages.QueryMemory: messages.QueryMemory(),
    messages.MemoryMeasured: messages.MemoryMeasured(MemoryReading(100 << 20, 8, 512 << 20)),
}


def message_types():
    return [
        cls
        for _, cls in inspect.getmembers(messages, inspect.isclass)
        if cls.__module__ == messages.__name__ and dataclasses.is_dataclass(cls)
    ]


def test_every_message_type_has_an_example():
    assert set(message_types()) == set(EXAMPLES)


@pytest.mark.parametrize("message", EXAMPLES.values(), ids=lambda m: type(m).__name__)
def test_round_trips_through_pickle(message):
    assert pickle.loads(pickle.dumps(message)) == message


@pytest.mark.parametrize("cls", message_types(), ids=lambda c: c.__name__)
def test_frozen_and_slotted(cls):
    assert cls.__dataclass_params__.frozen
    assert "__slots__" in cls.__dict__


def test_record_payloads_have_constant_size_repr():
    big = messages.Chunk(1, RecordBlock.of_rows("run1", [RECORD] * 10_000, SHARED))
    assert len(repr(big)) < 60 and str(big) == repr(big)
    assert len(repr(messages.Batches(1, ((1, BLOCK),) * 10_000))) < 60
