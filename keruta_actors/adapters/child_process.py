"""The user's command as a child process whose stdout and stderr we read.

The child runs in its own process group so that a signal forwarded by the
agent reaches the whole script (a shell and what it started), and so that a
Ctrl-C in a terminal reaches the child once, through the agent.
"""

from __future__ import annotations

import errno
import fcntl
import os
import signal
import subprocess

from keruta_actors.adapters.inputs import Pipe
from keruta_actors.errors import ChildStartError


class ChildProcess:
    def __init__(self, command: tuple[str, ...], env: tuple[tuple[str, str], ...] = (), cwd: str = "") -> None:
        self.command = command
        self.env = env
        self.cwd = cwd
        self.process: subprocess.Popen | None = None
        self.pipes: list[Pipe] = []  # stdout, then stderr

    def start(self) -> None:
        try:
            self.process = subprocess.Popen(
                self.command,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                process_group=0,
                env=os.environ | dict(self.env) if self.env else None,
                cwd=self.cwd or None,
            )
        except FileNotFoundError:
            raise ChildStartError(f"command not found: {self.command[0]}", 127) from None
        except PermissionError:
            raise ChildStartError(f"permission denied: {self.command[0]}", 126) from None
        except OSError as error:
            code = 126 if error.errno in (errno.ENOEXEC, errno.EACCES) else 127
            raise ChildStartError(f"cannot run {self.command[0]}: {error.strerror}", code) from None
        for stream, key in ((self.process.stdout, "stdout"), (self.process.stderr, "stderr")):
            widen(stream.fileno())
            self.pipes.append(Pipe(stream.fileno(), key, on_close=lambda _fd, stream=stream: stream.close()))

    @property
    def pid(self) -> int:
        return self.process.pid

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


# A pipe holds 64 KiB by default: about 600 lines, after which a busy child
# blocks until the agent's next read. 1 MiB (Linux's default most any user
# may ask for) lets a read take ~10,000 lines and the child run on meanwhile.
PIPE_SIZE = 1 << 20


def widen(fd: int) -> None:
    """Give the pipe PIPE_SIZE of buffer where the system allows it."""
    try:
        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, PIPE_SIZE)
    except (AttributeError, OSError):
        pass  # not Linux, or over the user's pipe quota: the default will do
