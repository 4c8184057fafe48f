"""The agent's exceptions, in one tree.

    KerutaError
    ├── ConfigError         bad configuration: reported by key path, exit 2
    │                       (defined in keruta_actors.config, beside the schema)
    ├── ChildStartError     the command cannot be run: exit 127 or 126
    ├── ReceiverError       the reference receiver cannot listen or open its database
    │                       (defined in keruta_actors.receiver.app)
    ├── SpoolError          the spool's disk refuses a write (full, read-only,
    │                       permission, file size limit) or another agent holds it:
    │                       the agent goes on with memory-only backpressure
    └── LinkError           a transport failed
          transient         worth retrying (refused, reset, timeout)
          unserved          the server answered, but serves no WebSocket there
                            (a handshake refused with 404, 426, 500, ...):
                            fall back at once, keep probing
          fatal             retrying cannot help (credentials refused, bad URL)

`LinkError.from_exception` is the one place that decides retry or fatal for
an exception raised by a transport library.
"""

from __future__ import annotations

import errno
import socket
import ssl


class KerutaError(Exception):
    """Root of every error the agent raises on purpose."""


class ChildStartError(KerutaError):
    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


# Why a spool write failed, in the words an operator searches for.
_DISK_REASONS = {
    errno.ENOSPC: "no space left on the device (disk full)",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "read-only file system",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.EFBIG: "file size limit reached",
    errno.EIO: "input/output error",
}


class SpoolError(KerutaError):
    """The spool cannot be used; the message is one line naming the path."""

    def __init__(self, message: str, path: str = "", error_number: int = 0) -> None:
        super().__init__(message, path, error_number)  # args kept whole, so it pickles
        self.path = path
        self.errno = error_number

    def __str__(self) -> str:
        return self.args[0]

    @classmethod
    def from_os_error(cls, error: OSError, action: str, path: str) -> "SpoolError":
        reason = _DISK_REASONS.get(error.errno) or error.strerror or str(error)
        return cls(f"spool: cannot {action} {path}: {reason}", path, error.errno or 0)


# HTTP statuses in a refused WebSocket handshake that retrying cannot fix:
# new credentials need a restart.
FATAL_HANDSHAKE_STATUSES = frozenset({401, 403})


class LinkError(KerutaError):
    def __init__(self, message: str, fatal: bool = False, unserved: bool = False) -> None:
        super().__init__(message)
        self.fatal = fatal
        self.unserved = unserved

    @classmethod
    def from_exception(cls, error: BaseException, context: str) -> "LinkError":
        fatal, reason = classify(error)
        # Any other answer than 101 is a server that is up and serves no log
        # WebSocket at this URL (the deployed keruta API answers 500).
        unserved = not fatal and isinstance(getattr(error, "status_code", None), int)
        return cls(f"{context}: {reason}", fatal=fatal, unserved=unserved)


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
