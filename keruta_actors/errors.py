"""The agent's exceptions, in one tree.

    KerutaError
    ├── ConfigError         bad configuration: reported by key path, exit 2
    │                       (defined in keruta_actors.config, beside the schema)
    ├── ChildStartError     the command cannot be run: exit 127 or 126
    ├── ReceiverError       the reference receiver cannot listen or open its database
    │                       (defined in keruta_actors.receiver.app)
    └── LinkError           a transport failed
          transient         worth retrying (refused, reset, timeout, 5xx)
          fatal             retrying cannot help (credentials refused, bad URL)

`LinkError.from_exception` is the one place that decides retry or fatal for
an exception raised by a transport library.
"""

from __future__ import annotations

import socket
import ssl


class KerutaError(Exception):
    """Root of every error the agent raises on purpose."""


class ChildStartError(KerutaError):
    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


# HTTP statuses in a refused WebSocket handshake that retrying cannot fix.
FATAL_HANDSHAKE_STATUSES = frozenset({400, 401, 403, 404, 405})


class LinkError(KerutaError):
    def __init__(self, message: str, fatal: bool = False) -> None:
        super().__init__(message)
        self.fatal = fatal

    @classmethod
    def from_exception(cls, error: BaseException, context: str) -> "LinkError":
        fatal, reason = classify(error)
        return cls(f"{context}: {reason}", fatal=fatal)


def classify(error: BaseException) -> tuple[bool, str]:
    """(fatal, short human reason) for an exception from a transport library."""
    status = getattr(error, "status_code", None)
    if isinstance(status, int):
        return status in FATAL_HANDSHAKE_STATUSES, f"the server answered HTTP {status}"
    if isinstance(error, ConnectionRefusedError):
        return False, "connection refused"
    if isinstance(error, socket.gaierror):
        return False, f"cannot resolve host ({error.strerror or error})"
    if isinstance(error, ssl.SSLCertVerificationError):
        return True, f"TLS certificate rejected ({error.verify_message})"
    if isinstance(error, (TimeoutError, socket.timeout)) or "timed out" in str(error):
        return False, "timed out"
    if isinstance(error, ValueError):  # websocket-client's answer to a malformed URL
        return True, str(error)
    return False, str(error) or type(error).__name__


def root_cause(error: BaseException) -> BaseException:
    """The socket-level error under requests' and urllib3's wrappers, which
    `classify` knows (refused, unresolvable, certificate rejected)."""
    while True:
        inner = error.__cause__ or getattr(error, "reason", None) or error.__context__
        if not isinstance(inner, BaseException):
            return error
        error = inner
