"""Writing files so that a reader finds the old version or the new one, never half of one.

Every file remaster writes (videos, images, models, checkpoints, the work folder's journal and
segments) appears by rename from a temporary name beside it: same folder, so the rename is atomic
on one file system (DESIGN promise 5). `durable=True` also syncs data and folder entry to disk,
for what a `--resume` after a power cut must be able to trust.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from remaster.errors import OutputError


def temporary_path(destination: Path) -> Path:
    """Beside the destination (same file system, so the final rename is atomic), same extension
    (FFmpeg and OpenCV pick the format from it), hidden so nobody mistakes it for the result."""
    return destination.with_name(f".{destination.stem}.partial-{os.getpid()}{destination.suffix}")


def fsync_path(path: Path) -> None:
    """Data, then the folder entry, on disk: after a power cut a renamed file is whole."""
    for target in (path, path.parent):
        fd = os.open(target, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def replace(temporary: Path, destination: Path, *, durable: bool = False) -> None:
    """Rename a finished temporary file over `destination` (synced first when `durable`)."""
    if durable:
        fsync_path(temporary)
    os.replace(temporary, destination)
    if durable:
        fsync_path(destination)


@contextmanager
def atomic_path(destination: Path, *, durable: bool = False) -> Iterator[Path]:
    """Yield a temporary path to write `destination` through; it is renamed into place when the
    block ends normally, and deleted when it raises."""
    destination = Path(destination)
    temporary = temporary_path(destination)
    try:
        yield temporary
        replace(temporary, destination, durable=durable)
    finally:
        temporary.unlink(missing_ok=True)


def write_atomic(destination: Path, data: bytes, *, durable: bool = False) -> None:
    """Write `data` to `destination` atomically; a failing disk is one-line `OutputError`."""
    try:
        with atomic_path(destination, durable=durable) as temporary:
            temporary.write_bytes(data)
    except OSError as error:  # a full disk, a file-size limit, a folder gone read-only
        reason = (error.strerror or type(error).__name__).lower()
        raise OutputError(f"{destination}: writing failed: {reason}") from None


def sha256_of(path: Path) -> str:
    """The file's SHA-256, read a megabyte at a time."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
