"""Files the agent keeps in `logStreaming.stateDir` (tail offsets, the spool).

They hold a task's output, so they are private to the agent's user: files
0600 in 0700 directories. Small state is replaced whole and atomically
(temp file, fsync, rename, fsync of the directory), so a crash leaves either
the old or the new contents, never a mix.
"""

from __future__ import annotations

import os


def private_dir(path: str) -> str:
    """`path`, created 0700 if missing (an existing one is left as it is)."""
    os.makedirs(path, mode=0o700, exist_ok=True)
    return path


def task_file_name(task_id: str) -> str:
    """A task id made safe as a file name: only letters, digits, `-_.`."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in task_id)


def open_private(path: str, flags: int) -> int:
    """A descriptor for `path`, created 0600 (whatever the umask)."""
    fd = os.open(path, flags | os.O_CREAT | os.O_CLOEXEC, 0o600)
    os.fchmod(fd, 0o600)
    return fd


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def write_atomically(path: str, data: bytes) -> None:
    """Replace `path` with `data` (mode 0600), durably."""
    temporary = f"{path}.{os.getpid()}.tmp"
    fd = open_private(temporary, os.O_WRONLY | os.O_TRUNC)
    try:
        write_all(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temporary, path)
    fsync_dir(os.path.dirname(os.path.abspath(path)))


def fsync_dir(directory: str) -> None:
    """Make the directory's entries (files created, renamed, deleted) durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
