"""The live log viewer: a task list at `/` and a task's live tail at
`/tasks/{taskId}`. Plain files in `static/`, served as they are: no build
step, and nothing fetched from elsewhere (receivers often run offline). The
pages hold no data; they read it from the REST API and the WebSocket, which
check credentials themselves."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

STATIC = Path(__file__).with_name("static")


def add_viewer(router: web.UrlDispatcher) -> None:
    router.add_get("/", _page("index.html"))
    router.add_get("/tasks/{taskId}", _page("viewer.html"))
    router.add_static("/static/", STATIC)


def _page(name: str):
    async def serve(_request: web.Request) -> web.FileResponse:
        return web.FileResponse(STATIC / name, headers={"Cache-Control": "no-cache"})

    return serve
