"""The receiver as an aiohttp application, and two ways to run it: in the
foreground (`run_receiver`, for the CLI) and on a background thread
(`ReceiverThread`, for tests and tools).

Routes are added in `build_app` only; each endpoint lives in its own module
and gets the store it needs passed in. Middlewares are the way to change how
the receiver answers (tests make it fail, stall or refuse); the endpoints
themselves have no such switches.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Middleware

from keruta_actors.errors import KerutaError
from keruta_actors.receiver.health import HealthEndpoint
from keruta_actors.receiver.logs_delete import LogsDeleteEndpoint
from keruta_actors.receiver.logs_export import LogsExportEndpoint
from keruta_actors.receiver.logs_query import LogsQueryEndpoint
from keruta_actors.receiver.logs_stats import LogsStatsEndpoint
from keruta_actors.receiver.protocol import DEFAULT_CAPABILITIES
from keruta_actors.receiver.queries import LogReader
from keruta_actors.receiver.rest import API_PATH, guard
from keruta_actors.receiver.rest_ingest import MAX_BODY, RestIngestEndpoint
from keruta_actors.receiver.store import LogStore
from keruta_actors.receiver.subscribers import Hub
from keruta_actors.receiver.tasks_list import TasksListEndpoint
from keruta_actors.receiver.viewer import add_viewer
from keruta_actors.receiver.ws_ingest import IngestEndpoint
from keruta_actors.records import rfc3339

STORE = web.AppKey("store", LogStore)
READER = web.AppKey("reader", LogReader)
WS_PATH = "/ws/tasks"
READS_PER_MINUTE = 1000  # the API specification's limit for reading logs
PRUNE_EVERY = 60.0  # seconds between retention passes

log = logging.getLogger(__name__)


class ReceiverError(KerutaError):
    """The receiver could not start; the message is one line for the user."""


def build_app(
    db_path: str,
    token: str | None = None,
    capabilities: tuple[str, ...] | None = DEFAULT_CAPABILITIES,
    middlewares: Sequence[Middleware] = (),
    reads_per_minute: float = READS_PER_MINUTE,
    retention: float | None = None,
) -> web.Application:
    """`retention`: seconds after which records are pruned (None: kept)."""
    try:
        store = LogStore(db_path)
    except sqlite3.Error as exc:
        raise ReceiverError(f"cannot open database {db_path}: {exc}") from exc
    reader = LogReader(db_path)
    hub = Hub()
    app = web.Application(middlewares=[*middlewares, guard(token, reads_per_minute)], client_max_size=MAX_BODY)
    app[STORE] = store
    app[READER] = reader
    ingest = IngestEndpoint(store, hub, token, capabilities)
    app.router.add_get(WS_PATH + "/{taskId}", ingest.handle)
    rest = RestIngestEndpoint(store, hub)
    logs = API_PATH + "/tasks/{taskId}/logs"
    app.router.add_post(logs, rest.post_log)
    app.router.add_post(logs + "/batch", rest.post_batch)
    app.router.add_get(logs, LogsQueryEndpoint(reader).get)
    app.router.add_delete(logs, LogsDeleteEndpoint(store, reader).delete)
    app.router.add_get(logs + "/stats", LogsStatsEndpoint(reader).get)
    app.router.add_get(logs + "/export", LogsExportEndpoint(reader).get)
    app.router.add_get(API_PATH + "/tasks", TasksListEndpoint(reader).get)
    health = HealthEndpoint(reader)
    app.router.add_get("/health", health.get)
    app.router.add_get(API_PATH + "/health", health.get)  # where the keruta API has it, for the agent's check
    add_viewer(app.router)
    if retention is not None:
        app.cleanup_ctx.append(_pruning(store, retention))
    app.on_shutdown.append(ingest.close_all)
    app.on_cleanup.append(_close_store)
    return app


def _pruning(store: LogStore, retention: float) -> Callable[[web.Application], Any]:
    """Prunes records older than `retention` seconds now and every minute."""

    async def prune_while_running(_app: web.Application) -> AsyncIterator[None]:
        async def prune_forever() -> None:
            while True:
                try:
                    store.prune(rfc3339(time.time() - retention))
                except sqlite3.Error:
                    log.exception("pruning old records failed")
                await asyncio.sleep(PRUNE_EVERY)

        pruning = asyncio.ensure_future(prune_forever())
        yield
        pruning.cancel()

    return prune_while_running


async def _close_store(app: web.Application) -> None:
    app[STORE].close()
    app[READER].close()


async def _serve(
    app: web.Application,
    host: str,
    port: int,
    started: Callable[[int], None],
    stop: asyncio.Event,
) -> None:
    """Serve `app` until `stop` is set; `started` gets the bound port."""
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    try:
        try:
            await web.TCPSite(runner, host, port).start()
        except OSError as exc:
            raise ReceiverError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
        started(runner.addresses[0][1])
        await stop.wait()
    finally:
        await runner.cleanup()


def run_receiver(
    host: str = "127.0.0.1",
    port: int = 8080,
    db_path: str = "keruta-receiver.db",
    token: str | None = None,
    retention: float | None = None,
    reads_per_minute: float = READS_PER_MINUTE,
) -> None:
    """Serve in the foreground until SIGINT or SIGTERM."""

    netloc = f"[{host}]" if ":" in host else host

    def announce(bound: int) -> None:
        base = f"{netloc}:{bound}"
        print(
            f"receiver listening on ws://{base}{WS_PATH}/{{taskId}} and http://{base}{API_PATH}"
            f" (db: {db_path})",
            flush=True,
        )
        print(f"log viewer: http://{base}/", flush=True)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        app = build_app(db_path, token, reads_per_minute=reads_per_minute, retention=retention)
        await _serve(app, host, port, announce, stop)

    asyncio.run(main())


class ReceiverThread:
    """A receiver on 127.0.0.1 and a free port, on a daemon thread:

        with ReceiverThread(db_path) as receiver:
            connect(f"{receiver.ws_url}/{task_id}")
            requests.post(f"{receiver.api_url}/tasks/{task_id}/logs", json=record)
    """

    def __init__(
        self,
        db_path: str,
        token: str | None = None,
        capabilities: tuple[str, ...] | None = DEFAULT_CAPABILITIES,
        middlewares: Sequence[Middleware] = (),
        reads_per_minute: float = READS_PER_MINUTE,
        retention: float | None = None,
    ) -> None:
        self.db_path = db_path
        self.port = 0
        self._app = build_app(db_path, token, capabilities, middlewares, reads_per_minute, retention)
        self.store = self._app[STORE]
        self._started = threading.Event()
        self._failure: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="keruta-receiver", daemon=True)

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}{WS_PATH}"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}{API_PATH}"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ReceiverThread:
        self._thread.start()
        self._started.wait()
        if self._failure is not None:
            raise self._failure
        return self

    def __exit__(self, *_exc: object) -> None:
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join()
        if self._failure is not None:
            raise self._failure

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # reported to the thread that waits in __enter__
            self._failure = exc
        finally:
            self._started.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        await _serve(self._app, "127.0.0.1", 0, self._bound, self._stop)

    def _bound(self, port: int) -> None:
        self.port = port
        self._started.set()
