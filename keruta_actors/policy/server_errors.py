"""What the agent does about the server's `error` frames (SPEC §5 codes).

    UNAUTHORIZED          fatal, as an HTTP 401: the same credentials will
                          not do better on the next connection
    RATE_LIMIT_EXCEEDED   slow down: send nothing more for a while, from 1 s
                          doubling to 30 s while the server keeps saying so,
                          back to 1 s once a batch is confirmed; a
                          `retryAfter` (seconds) in the frame wins
    INVALID_LOG_FORMAT    the batch the frame names (`batchId`) is done with
                          and counted as rejected; without a batch id the
                          frame is only counted (the records it refers to
                          cannot be told apart)
    anything else         counted and logged

Each frame is counted by its code in keruta_errors_total{type}: `error_type`.
"""

from __future__ import annotations

from dataclasses import dataclass

CODES = ("UNAUTHORIZED", "RATE_LIMIT_EXCEEDED", "INVALID_LOG_FORMAT", "TASK_NOT_FOUND",
         "WEBSOCKET_CONNECTION_FAILED", "DATABASE_ERROR")
FIRST_DELAY, MAX_DELAY = 1.0, 30.0


@dataclass(frozen=True, slots=True)
class Fatal:
    problem: str


@dataclass(frozen=True, slots=True)
class SlowDown:
    until: float  # send nothing before this moment


@dataclass(frozen=True, slots=True)
class Rejected:
    batch_id: int


@dataclass(frozen=True, slots=True)
class Noted:
    """Nothing to do but count and log it."""


Decision = Fatal | SlowDown | Rejected | Noted


def error_type(code: object) -> str:
    """The bounded label value a frame's code is counted under."""
    return code.lower() if code in CODES else "other"


class ServerErrors:
    def __init__(self) -> None:
        self._delay = FIRST_DELAY

    def received(self, frame: dict, now: float) -> Decision:
        code, message = frame.get("code"), frame.get("message")
        if code == "UNAUTHORIZED":
            return Fatal(f"the server refused our credentials: {message}")
        if code == "RATE_LIMIT_EXCEEDED":
            return SlowDown(now + self._next_delay(frame.get("retryAfter")))
        if code == "INVALID_LOG_FORMAT" and type(frame.get("batchId")) is int:
            return Rejected(frame["batchId"])
        return Noted()

    def confirmed(self) -> None:
        """The server confirmed a batch: the next slow-down starts short again."""
        self._delay = FIRST_DELAY

    def _next_delay(self, retry_after: object) -> float:
        if type(retry_after) in (int, float) and 0 <= retry_after <= 3600:
            return float(retry_after)
        delay, self._delay = self._delay, min(MAX_DELAY, self._delay * 2)
        return delay
