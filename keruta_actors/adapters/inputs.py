"""The byte sources the reader reads: pipes (the child's stdout and stderr,
the agent's stdin) and tailed files.

A pipe has a descriptor the reactor can watch; a regular file is always
"readable" to select, so files are polled on the reader's tick instead.
Every source answers `read()` with the bytes it holds now, b"" when it has
nothing yet, or None once it has ended.
"""

from __future__ import annotations

import os
from collections import deque

from keruta_actors.adapters.file_tail import FileTail
from keruta_actors.adapters.state_files import private_dir, task_file_name

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


def agent_stdin() -> Pipe:
    """The agent's own stdin, for `--source stdin`: a descriptor of its own,
    so that closing it at the end leaves descriptor 0 in place."""
    return Pipe(os.dup(0), "stdin")


class TailedFile:
    """`--source file:PATH`, polled: a tail has no end of its own.

    Offsets are committed only for lines the server has confirmed: after each
    read the reader notes a checkpoint (how many lines, and the stream
    position just past the last complete one); `delivered(line)` commits the
    newest checkpoint at or below `line`. After a restart the tail resumes at
    the committed byte, and `first_line_number` continues the numbering.
    """

    polled = True
    fd = None

    def __init__(self, path: str, state_path: str) -> None:
        self.tail = FileTail(path, state_path)
        self._checkpoints: deque[tuple[int, int]] = deque()  # (line number, stream position)

    @property
    def first_line_number(self) -> int:
        """The number of the last line committed before a restart (0 if none)."""
        return int((self.tail.checkpoint or {}).get("lineNumber", 0))

    def read(self) -> bytes:
        return self.tail.poll()

    def note(self, line_number: int) -> None:
        """`line_number` lines are now read. A checkpoint is exact only when
        the stream ends on a newline (no partial line is counted or pending)."""
        at_line_end = self.tail.line_end == self.tail.position
        if at_line_end and (not self._checkpoints or self._checkpoints[-1][1] < self.tail.line_end):
            self._checkpoints.append((line_number, self.tail.line_end))

    def delivered(self, line_number: int) -> None:
        """Lines up to `line_number` are confirmed: commit the offset after them."""
        newest = None
        while self._checkpoints and self._checkpoints[0][0] <= line_number:
            newest = self._checkpoints.popleft()
        if newest is not None:
            self.tail.commit(newest[1], {"lineNumber": newest[0]})

    def close(self) -> None:
        self.tail.close()


def offsets_file(state_dir: str, task_id: str) -> str:
    """Where a task's tailed files keep their offsets: a 0700 directory."""
    return os.path.join(private_dir(state_dir), f"{task_file_name(task_id)}.offsets.json")
