"""The REST fallback: one actor per REST connection, in the Connection's place.

The supervisor starts it once the WebSocket has failed `maxReconnectAttempts`
times in a row (policy/transport.py). To the batcher it looks like any
connection: it takes `Batches` and answers `BatchesAcked`. It posts the
batches in order, many records to a request on the batch endpoint, or one per
request where the server has none. When and whether to send, and what every
answer means, is `policy.rest_delivery.RestPolicy`'s decision.

Requests block this actor, never the pipeline (each actor is a process). A
pump sends for at most `PUMP_SLICE` and then lets queued messages in, so an
exit request or new batches wait at most that long plus one request.
"""

from __future__ import annotations

import random
import time
from collections import deque

from thespian.actors import ActorExitRequest

from keruta_actors.actors.base import KerutaActor
from keruta_actors.adapters.process_memory import release_memory
from keruta_actors.adapters.rest_client import RestClient
from keruta_actors.errors import LinkError
from keruta_actors.messages import (
    Batches,
    BatchesAcked,
    Configure,
    LinkLost,
    LinkUp,
    RelieveMemory,
)
from keruta_actors.policy.ordering import InOrder
from keruta_actors.policy.rest_delivery import (
    Fail,
    OneByOne,
    Reject,
    RestPolicy,
    Split,
    Stored,
    Wait,
)
from keruta_actors.records import LogMessageEncoder, RecordBlock

# Records and bytes one request may carry on the batch endpoint.
MAX_REQUEST_RECORDS = 1000
MAX_REQUEST_BYTES = 1 << 20
# How long one pump may send before it lets other messages in.
PUMP_SLICE = 0.1


class RestConnection(KerutaActor):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.client: RestClient | None = None
        self.lost = False
        self.queue: deque[tuple[int, RecordBlock]] = deque()
        self.offset = 0  # records of the first queued batch already done with
        self.request: list[str] = []  # encoded records of the request in progress
        self.request_limit = MAX_REQUEST_RECORDS
        self.done: list[int] = []  # batches done with, not yet reported
        self.rejected: dict[int, int] = {}  # batch id -> records refused
        self.in_order: InOrder[Batches] = InOrder()

    def receiveMsg_Configure(self, message: Configure, sender) -> None:
        if self.client is not None or self.lost:
            return  # a repeated delivery of the same Configure
        self.configured = message
        self.encoder = LogMessageEncoder(message.plan.task_id, position_in_metadata=True)
        api = message.settings.api
        now = time.monotonic()
        self.policy = RestPolicy(
            retry_count=api.retry_count,
            retry_interval=api.retry_interval,
            requests_per_minute=api.rate_limit.requests_per_minute,
            burst_size=api.rate_limit.burst_size,
            rng=random.Random(),
            now=now,
        )
        try:
            self.client = RestClient.for_task(message.settings, message.plan.task_id)
        except LinkError as error:
            self._lose(str(error), error.fatal)
            return
        # REST has no handshake: whether the API answers shows with the first request.
        self.send(message.supervisor, LinkUp(message.generation, ()))

    def receiveMsg_Batches(self, message: Batches, sender) -> None:
        if self.lost:
            return
        for batches in self.in_order.arrived(message.seq, message):
            self.queue.extend(batches.batches)
        self._pump()

    def on_tick(self, now: float) -> None:
        if not self.lost:
            self._pump()

    def receiveMsg_RelieveMemory(self, message: RelieveMemory, sender) -> None:
        release_memory()

    def receiveMsg_ActorExitRequest(self, message: ActorExitRequest, sender) -> None:
        if self.client is not None:
            self.client.close()

    # -- sending ---------------------------------------------------------------------

    def _pump(self) -> None:
        slice_ends = time.monotonic() + PUMP_SLICE
        while self.queue and not self.lost:
            now = time.monotonic()
            ready_at = self.policy.ready_at(now)
            if ready_at > now or now >= slice_ends:
                self.wake_at(max(ready_at, now))
                break
            self._post(now)
        self._report_done()

    def _post(self, now: float) -> None:
        if not self.request:
            self.request = self._next_request()
        self.policy.sent(now)
        if self.policy.batch_endpoint:
            outcome = self.client.post_batch(self.request)
        else:
            outcome = self.client.post_one(self.request[0])
        decision = self.policy.answered(outcome, len(self.request), time.monotonic(), time.time())
        if isinstance(decision, Stored):
            if decision.no_batch_endpoint:
                self.log.warning("the keruta API has no batch endpoint; sending one record per request from now on")
            self._finish_request(rejected=False)
        elif isinstance(decision, Reject):
            self.log.warning("the keruta API refused %d records for good: %s", len(self.request), decision.why)
            self._finish_request(rejected=True)
        elif isinstance(decision, OneByOne):
            self.log.info("the batch endpoint failed (%s); trying one record per request", decision.why)
            self.request = []
        elif isinstance(decision, Split):
            self.request_limit = max(1, len(self.request) // 2)
            self.request = []
        elif isinstance(decision, Wait):
            wait = decision.until - time.monotonic()
            self.log.warning("REST request failed: %s; trying again in %.1fs", decision.why, wait)
        elif isinstance(decision, Fail):
            self._lose(decision.why, decision.fatal)

    def _next_request(self) -> list[str]:
        """Encoded records from the head of the queue, as many as one request
        may carry; a request may end inside a batch and span several."""
        limit = self.request_limit if self.policy.batch_endpoint else 1
        records: list[str] = []
        size = 0
        offset = self.offset
        for _batch_id, batch in self.queue:
            for record in batch.span(offset, len(batch)).rows():
                text = self.encoder.encode(record)
                if records and (len(records) >= limit or size + len(text) > MAX_REQUEST_BYTES):
                    return records
                records.append(text)
                size += len(text)
            offset = 0
        return records

    def _finish_request(self, rejected: bool) -> None:
        """The request's records are done with: stored, or refused for good."""
        count = len(self.request)
        self.request = []
        while count:
            batch_id, batch = self.queue[0]
            taken = min(count, len(batch) - self.offset)
            if rejected:
                self.rejected[batch_id] = self.rejected.get(batch_id, 0) + taken
            count -= taken
            self.offset += taken
            if self.offset == len(batch):
                self.queue.popleft()
                self.offset = 0
                self.done.append(batch_id)

    def _report_done(self) -> None:
        if not self.done:
            return
        rejected = tuple((batch_id, self.rejected.pop(batch_id)) for batch_id in self.done if batch_id in self.rejected)
        self.send(self.configured.downstream, BatchesAcked(tuple(self.done), rejected))
        self.done = []

    def _lose(self, problem: str, fatal: bool) -> None:
        self.lost = True
        self._report_done()
        if self.client is not None:
            self.client.close()
        self.send(self.configured.supervisor, LinkLost(self.configured.generation, problem, fatal))
