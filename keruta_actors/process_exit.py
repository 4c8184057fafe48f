"""How the process ends when threads of ours may still be running.

Worker threads run blocking jobs, some inside OpenSSL (loading CA
certificates for a connection or a health check, a TLS read). The
interpreter's own exit runs the C libraries' exit handlers, and OpenSSL's
frees what such a thread is using: the process crashes (SIGSEGV, measured:
13 of 20 exits with threads loading certificates) instead of ending with
the task's exit code. So a process with threads left ends here, at once,
after flushing what it has to say.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from typing import NoReturn


def leave(code: int) -> int:
    """`code`, for the interpreter's exit when this is the only thread left;
    otherwise the process ends here with it."""
    if threading.active_count() > 1:
        exit_now(code)
    return code


def exit_now(code: int) -> NoReturn:
    """End the process without the interpreter's exit. Our files are closed
    by now; the log and the standard streams are flushed here."""
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass  # a closed or broken stream: nothing more can be said there
    os._exit(code)
