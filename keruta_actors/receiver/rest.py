"""Rules every REST endpoint under /api/v1 shares: authentication, the read
rate limit, error answers, and the reading of query parameters.

Endpoints raise `ApiError` (or let `sqlite3.Error` out) and the `guard`
middleware answers for them, so each endpoint module says only what its
endpoint does. Errors carry the API specification's codes and statuses:

    TASK_NOT_FOUND 404    a task that has never sent a record
    INVALID_LOG_FORMAT 400    a bad body, or a bad parameter (named)
    RATE_LIMIT_EXCEEDED 429    more reads than the limit allows
    DATABASE_ERROR 500    SQLite failed

The specification has no code for a missing or wrong credential, so a 401
comes in the shape a Spring application answers it with (status, error,
message, path), as the keruta API itself would.
"""

from __future__ import annotations

import logging
import math
import sqlite3
import time
from typing import Awaitable, Callable, Mapping

from aiohttp import web

from keruta_actors.policy.rate_limit import TokenBucket
from keruta_actors.receiver import queries
from keruta_actors.receiver.protocol import credentials, token_matches
from keruta_actors.receiver.queries import LogFilter, LogReader
from keruta_actors.receiver.timestamps import canonical
from keruta_actors.records import LEVELS, SOURCES, rfc3339

API_PATH = "/api/v1"
MAX_PAGE_SIZE = 1000
DEFAULT_PAGE_SIZE = 100

log = logging.getLogger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers


def refusal(status: int, code: str, message: str, headers: Mapping[str, str] | None = None) -> web.Response:
    body = {"code": code, "message": message, "timestamp": rfc3339(time.time())}
    return web.json_response(body, status=status, headers=headers)


def task_not_found(task_id: str) -> ApiError:
    return ApiError(404, "TASK_NOT_FOUND", f"no logs have been received for task {task_id!r}")


def bad_parameter(name: str, why: str) -> ApiError:
    return ApiError(400, "INVALID_LOG_FORMAT", f"parameter {name!r} {why}")


def guard(token: str | None, reads_per_minute: float) -> Callable[..., Awaitable[web.StreamResponse]]:
    """The middleware for /api/v1. `token=None` serves anyone; reads (GET,
    DELETE) are limited to `reads_per_minute` (0: no limit), in bursts of a
    minute's worth. Ingest is not limited: the agent must never lose to it."""
    bucket = TokenBucket(reads_per_minute / 60, max(1.0, reads_per_minute), time.monotonic())

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.path.startswith(API_PATH + "/") or request.path == API_PATH + "/health":
            return await handler(request)  # /health, like the keruta API's, is open
        if token is not None:
            given = credentials(request.headers)
            if not any(token_matches(c, token) for c in given):
                return _unauthorized(request, "authentication failed" if given else "authentication required")
        if request.method != "POST" and not bucket.grant(1, time.monotonic()):
            wait = math.ceil(bucket.time_until(1, time.monotonic()))
            return refusal(429, "RATE_LIMIT_EXCEEDED", "too many requests", {"Retry-After": str(wait)})
        try:
            return await handler(request)
        except ApiError as error:
            return refusal(error.status, error.code, error.message, error.headers)
        except sqlite3.Error:
            log.exception("%s %s failed", request.method, request.path)
            return refusal(500, "DATABASE_ERROR", "the database failed")

    return middleware


def _unauthorized(request: web.Request, why: str) -> web.Response:
    body = {
        "timestamp": rfc3339(time.time()),
        "status": 401,
        "error": "Unauthorized",
        "message": why,
        "path": request.path,
    }
    return web.json_response(body, status=401, headers={"WWW-Authenticate": "Bearer"})


# --- parameters -----------------------------------------------------------------


def integer(query: Mapping[str, str], name: str, default: int, low: int) -> int:
    text = query.get(name)
    if text is None:
        return default
    try:
        value = int(text)
    except ValueError:
        raise bad_parameter(name, f"must be an integer, not {text[:40]!r}") from None
    if value < low:
        raise bad_parameter(name, f"must be at least {low}")
    return value


def timestamp(query: Mapping[str, str], name: str) -> str | None:
    text = query.get(name)
    if text is None:
        return None
    stored = canonical(text)
    if stored is None:
        raise bad_parameter(name, f"must be an ISO 8601 date-time, not {text[:40]!r}")
    return stored


def choices(query: Mapping[str, str], name: str, allowed: tuple[str, ...]) -> tuple[str, ...]:
    """A parameter that names one of `allowed`, or several, comma-separated."""
    text = query.get(name)
    if text is None or text == "":
        return ()
    values = tuple(dict.fromkeys(text.split(",")))
    for value in values:
        if value not in allowed:
            raise bad_parameter(name, f"must be one of {', '.join(allowed)}, not {value[:40]!r}")
    return values


def one_of(query: Mapping[str, str], name: str, allowed: tuple[str, ...]) -> str:
    """A parameter that must be one of `allowed`; the first is the default."""
    value = query.get(name, allowed[0])
    if value not in allowed:
        raise bad_parameter(name, f"must be one of {', '.join(allowed)}, not {value[:40]!r}")
    return value


def log_filter(task_id: str, query: Mapping[str, str]) -> LogFilter:
    """The `source`, `level`, `from` and `to` parameters, as a filter."""
    where = LogFilter(
        task_id,
        choices(query, "source", SOURCES),
        choices(query, "level", LEVELS),
        timestamp(query, "from"),
        timestamp(query, "to"),
    )
    if where.start is not None and where.end is not None and where.start > where.end:
        raise bad_parameter("from", "must not be after 'to'")
    return where


async def require_task(reader: LogReader, task_id: str) -> None:
    if not await reader.run(queries.known, task_id):
        raise task_not_found(task_id)
