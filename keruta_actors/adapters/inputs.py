"""The byte sources the reader reads: pipes (the child's stdout and stderr,
the agent's stdin) and tailed files.

A pipe has a descriptor Thespian can watch; a regular file is always
"readable" to select, so files are polled on the reader's tick instead.
Every source answers `read()` with the bytes it holds now, b"" when it has
nothing yet, or None once it has ended.
"""

from __future__ import annotations

import os

# Bytes taken from a pipe per read: large enough that a busy child costs one
# actor message per ~10,000 short lines, small enough to bound a chunk.
READ_SIZE = 1 << 20


class Pipe:
    """The reading end of a pipe (or any descriptor), read without blocking."""

    polled = False

    def __init__(self, fd: int, key: str, on_close=None) -> None:
        os.set_blocking(fd, False)
        self.fd = fd
        self.key = key
        self._on_close = on_close or os.close
        self.closed = False

    def read(self) -> bytes | None:
        if self.closed:
            return None
        try:
            data = os.read(self.fd, READ_SIZE)
        except BlockingIOError:
            return b""
        if not data:
            self.close()
            return None
        return data

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._on_close(self.fd)


def agent_stdin(cli_pid: int) -> Pipe:
    """The agent's own stdin, for `--source stdin`.

    Thespian's actor processes have /dev/null on descriptor 0, and it closes
    every other inherited descriptor, so the reader opens the CLI process's
    stdin anew through /proc (Linux, which is where the agent runs).
    """
    return Pipe(os.open(f"/proc/{cli_pid}/fd/0", os.O_RDONLY | os.O_NONBLOCK), "stdin")
