"""The reference receiver: the keruta API's log endpoint that the agent
streams to (SPEC §5, §9), for local use and tests.

    protocol.py     the ingest conversation, and the checks, without I/O
    ws_ingest.py    that conversation on an aiohttp WebSocket
    rest_ingest.py  the REST fallback's POST endpoints, held to the same checks
    store.py        the SQLite log table
    app.py          the aiohttp application and ways to run it
"""

from keruta_actors.receiver.app import (
    ReceiverError,
    ReceiverThread,
    build_app,
    run_receiver,
)
from keruta_actors.receiver.store import LogStore

__all__ = ["LogStore", "ReceiverError", "ReceiverThread", "build_app", "run_receiver"]
