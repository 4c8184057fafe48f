"""The user's command as a child process whose stdout and stderr we read.

The child runs in its own process group so that a signal forwarded by the
agent reaches the whole script (a shell and what it started), and so that a
Ctrl-C in a terminal reaches the child once, through the agent.
"""

from __future__ import annotations

import errno
import os
import signal
import subprocess

from keruta_actors.errors import ChildStartError

# Bytes taken from a pipe per read: large enough that a busy child costs one
# actor message per ~10,000 short lines, small enough to bound a chunk.
READ_SIZE = 1 << 20


class ChildProcess:
    def __init__(self, command: tuple[str, ...]) -> None:
        self.command = command
        self.process: subprocess.Popen | None = None
        self.pipes: dict[int, str] = {}  # open pipe fd -> "stdout" | "stderr"
        self._streams: dict[int, object] = {}

    def start(self) -> None:
        try:
            self.process = subprocess.Popen(
                self.command,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                process_group=0,
            )
        except FileNotFoundError:
            raise ChildStartError(f"command not found: {self.command[0]}", 127) from None
        except PermissionError:
            raise ChildStartError(f"permission denied: {self.command[0]}", 126) from None
        except OSError as error:
            code = 126 if error.errno in (errno.ENOEXEC, errno.EACCES) else 127
            raise ChildStartError(f"cannot run {self.command[0]}: {error.strerror}", code) from None
        for stream, source in ((self.process.stdout, "stdout"), (self.process.stderr, "stderr")):
            os.set_blocking(stream.fileno(), False)
            self.pipes[stream.fileno()] = source
            self._streams[stream.fileno()] = stream

    @property
    def pid(self) -> int:
        return self.process.pid

    def read(self, fd: int) -> bytes | None:
        """What the pipe holds now: b"" if nothing yet, None at end of stream."""
        try:
            data = os.read(fd, READ_SIZE)
        except BlockingIOError:
            return b""
        if not data:
            self.close_pipe(fd)
            return None
        return data

    def close_pipe(self, fd: int) -> None:
        if self.pipes.pop(fd, None) is not None:
            self._streams.pop(fd).close()

    def exit_code(self) -> int | None:
        """None while running; the shell's convention (128+N for signal N) after."""
        code = self.process.poll()
        if code is None:
            return None
        return 128 - code if code < 0 else code

    def signal(self, signum: int) -> None:
        try:
            os.killpg(self.process.pid, signum)
        except ProcessLookupError:
            pass

    def kill(self) -> None:
        self.signal(signal.SIGKILL)
