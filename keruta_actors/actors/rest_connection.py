"""The REST fallback: one actor per REST connection, in the Connection's place.

The supervisor starts it once the WebSocket has failed `maxReconnectAttempts`
times in a row (policy/transport.py). To the batcher it looks like any
connection: it takes `Batches` and answers `BatchesAcked`. It posts the
batches in order, many records to a request on the batch endpoint, or one per
request where the server has none. When and whether to send, and what every
answer means, is `policy.rest_delivery.RestPolicy`'s decision.

Requests block, so they run on this actor's worker thread, one at a time
and in order; each answer comes back as `WorkDone` and decides the next
step. The agent's loop never waits on the server.
"""

from __future__ import annotations

import random
import time
from collections import deque

from keruta_actors import meter
from keruta_actors.actors.base import KerutaActor
from keruta_actors.adapters import reactor
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
    WorkDone,
)
from keruta_actors.policy.ordering import InOrder
from keruta_actors.policy.rest_delivery import (
    Fail,
    OneByOne,
    Outcome,
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
        self.posting = False  # a request is with the worker
        self.stored_bytes = 0  # of requests stored since the last report

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
        self.worker = reactor.Worker(reactor.current(), self.myAddress, "keruta-rest")
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

    def on_exit(self) -> None:
        if self.client is not None:
            self.worker.submit("close", self.client.close)  # after the request under way
            self.worker.stop()

    # -- sending ---------------------------------------------------------------------

    def _pump(self) -> None:
        """Hand the worker the next request, if one may go now."""
        if self.posting or self.lost or not self.queue:
            return
        now = time.monotonic()
        ready_at = self.policy.ready_at(now)
        if ready_at > now:
            self.wake_at(ready_at)
            return
        if not self.request:
            self.request = self._next_request()
        self.policy.sent(now)
        client, request = self.client, self.request
        if self.policy.batch_endpoint:
            self.worker.submit("post", lambda: client.post_batch(request))
        else:
            self.worker.submit("post", lambda: client.post_one(request[0]))
        self.posting = True

    def receiveMsg_WorkDone(self, message: WorkDone, sender) -> None:
        if message.tag != "post" or not self.posting:
            return
        self.posting = False
        if not self.lost:
            self._answered(message.result)
            self._report_done()
            self._pump()

    def _answered(self, outcome: Outcome | Exception) -> None:
        if isinstance(outcome, Exception):  # the client returns outcomes; anything else is a bug
            outcome = Outcome(None, f"the request failed: {outcome!r}")
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
            meter.current().error("api")
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
            # no more than could still fit: a single-record request encodes one
            for text in self.encoder.encode_block(batch.span(offset, min(len(batch), offset + limit - len(records)))):
                if records and size + len(text) > MAX_REQUEST_BYTES:
                    return records
                records.append(text)
                size += len(text)
            if len(records) >= limit:
                return records
            offset = 0
        return records

    def _finish_request(self, rejected: bool) -> None:
        """The request's records are done with: stored, or refused for good."""
        count = len(self.request)
        self.stored_bytes += 0 if rejected else sum(map(len, self.request))
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
        meter.current().sent("rest", len(self.done), self.stored_bytes)
        self.stored_bytes = 0
        self.done = []

    def _lose(self, problem: str, fatal: bool) -> None:
        self.lost = True
        self._report_done()
        self.send(self.configured.supervisor, LinkLost(self.configured.generation, problem, fatal))
