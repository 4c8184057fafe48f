"""A keruta log endpoint that acknowledges and discards: the benchmark's sink
when the question is what a sender costs, not what a database can store.

    python tools/null_sink.py --port 0        # prints "listening on PORT"

WebSocket `/ws/tasks/{taskId}`: announces `batch` and `ack` after the
handshake, acknowledges each `logs` frame by its batchId as soon as it has
arrived, and counts records without parsing them. `GET /stats?task=T` says
how many records and frames a task has sent. Pings are answered by aiohttp.
"""

from __future__ import annotations

import argparse
import asyncio
import re
from collections import Counter

from aiohttp import WSMsgType, web

BATCH_ID = re.compile(rb'"batchId"\s*:\s*(\d+)')
RECORD = b'"lineNumber":'
HELLO = '{"type":"hello","capabilities":["batch","ack"]}'


class NullSink:
    def __init__(self) -> None:
        self.records: Counter[str] = Counter()
        self.frames: Counter[str] = Counter()

    async def ingest(self, request: web.Request) -> web.WebSocketResponse:
        task = request.match_info["taskId"]
        socket = web.WebSocketResponse(max_msg_size=16 << 20)
        await socket.prepare(request)
        await socket.send_str(HELLO)
        async for message in socket:
            if message.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                continue
            data = message.data.encode() if message.type == WSMsgType.TEXT else message.data
            self.records[task] += data.count(RECORD)
            self.frames[task] += 1
            batch = BATCH_ID.search(data, 0, 64)
            if batch:
                await socket.send_str(f'{{"type":"ack","batchId":{int(batch.group(1))}}}')
        return socket

    async def stats(self, request: web.Request) -> web.Response:
        task = request.query.get("task", "")
        return web.json_response({"records": self.records[task], "frames": self.frames[task]})


async def serve(port: int) -> None:
    sink = NullSink()
    app = web.Application()
    app.router.add_get("/ws/tasks/{taskId}", sink.ingest)
    app.router.add_get("/stats", sink.stats)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    print(f"listening on {runner.addresses[0][1]}", flush=True)
    await asyncio.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    asyncio.run(serve(parser.parse_args().port))


if __name__ == "__main__":
    main()
