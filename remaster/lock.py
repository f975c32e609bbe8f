"""One writer per output: an advisory lock file beside the destination.

Two runs writing the same output would each rename a complete file over the other's, or (with
`--resume`) interleave segments in one work folder. The second run refuses instead. The lock is
`fcntl.flock` on `.NAME.lock` beside the output: the kernel releases it when the process dies,
even by SIGKILL or a power cut, so a stale lock file never blocks a later run.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from remaster.errors import OutputError, cannot_create


def lock_path(destination: Path) -> Path:
    return destination.with_name(f".{destination.name}.lock")


class DestinationLock:
    """`with DestinationLock(output):` holds the lock or raises a one-line `OutputError`."""

    def __init__(self, destination: str | os.PathLike):
        self.destination = Path(destination)
        self.path = lock_path(self.destination)
        self._fd: int | None = None

    def acquire(self) -> None:
        for _ in range(10):
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as error:
                raise cannot_create(self.destination, error) from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                holder = _read_pid(self.path)
                who = f" (process {holder})" if holder else ""
                raise OutputError(
                    f"{self.destination}: another remaster run{who} is writing this output; "
                    "wait for it or choose another name"
                ) from None
            # The holder before us may have unlinked the file between our open and flock: then
            # we locked an orphan, and a third run could lock the new file. Check and retry.
            try:
                same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                os.ftruncate(fd, 0)
                os.write(fd, f"{os.getpid()}\n".encode())
                self._fd = fd
                return
            os.close(fd)
        raise OutputError(f"{self.destination}: could not lock {self.path.name}; is another run starting and stopping?")

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            self.path.unlink(missing_ok=True)  # unlink while still holding it (see acquire)
        except OSError:
            pass
        os.close(self._fd)  # closing releases the lock
        self._fd = None

    def __enter__(self) -> DestinationLock:
        self.acquire()
        return self

    def __exit__(self, *exc_info) -> None:
        self.release()


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip() or 0) or None
    except (OSError, ValueError):
        return None
