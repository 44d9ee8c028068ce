"""Atomic, private file writing and advisory locks. Stdlib only: the credential-process hot path uses it."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import time
from collections.abc import Iterator
from pathlib import Path

PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700


def ensure_private_dir(path: Path) -> Path:
    """Create `path` 0700 if absent; tighten it to 0700 if it exists with looser bits."""
    path.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
    if path.stat().st_mode & 0o777 != PRIVATE_DIR:
        os.chmod(path, PRIVATE_DIR)
    return path


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_temp(directory: Path, stem: str, data: bytes, mode: int) -> Path:
    """A new file beside its destination, fully written and fsynced, with exactly `mode`."""
    for attempt in range(100):
        temp = directory / f".{stem}.credhelper-{os.getpid()}-{attempt}.tmp"
        try:
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, PRIVATE_FILE)
        except FileExistsError:
            continue
        try:
            os.fchmod(fd, mode)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            temp.unlink(missing_ok=True)
            raise
        os.close(fd)
        return temp
    raise OSError(errno.EEXIST, f"cannot create a temporary file in {directory}")


def replace_file(temp: Path, destination: Path) -> None:
    try:
        os.replace(temp, destination)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    fsync_dir(destination.parent)


def atomic_write(path: Path, data: bytes, mode: int = PRIVATE_FILE) -> None:
    """Temp file in the same directory, fsync, rename over, fsync the directory."""
    replace_file(write_temp(path.parent, path.name, data, mode), path)


def read_bytes_or_none(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


class LockTimeout(Exception):
    pass


@contextlib.contextmanager
def file_lock(path: Path, timeout: float = 120.0, shared: bool = False) -> Iterator[None]:
    """An flock on `path` (created 0600). Held by the open file, so a crashed holder frees it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, PRIVATE_FILE)
    try:
        operation = fcntl.LOCK_SH if shared else fcntl.LOCK_EX
        deadline = time.monotonic() + timeout
        delay = 0.005
        while True:
            try:
                fcntl.flock(fd, operation | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise LockTimeout(str(path)) from None
                time.sleep(delay)
                delay = min(delay * 2, 0.1)
        yield
    finally:
        os.close(fd)
