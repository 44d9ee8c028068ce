"""Atomic, private file writing and advisory locks. Stdlib only: the credential-process hot path uses it."""

from __future__ import annotations

import errno
import fcntl
import json
import os
import stat
import time
from types import TracebackType

from .errors import ConfigError, FileSystemError, LockTimeout
from .paths import untrusted_reason

TYPE_CHECKING = False  # not typing's: it would cost the hot path an import
if TYPE_CHECKING:
    from typing import Any

PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700


def make_private_dir(path: str | os.PathLike[str]) -> None:
    """Create `path` and each missing parent 0700, whatever the umask. An existing directory is
    left as it is: credhelper never chmods a directory it did not create."""
    missing: list[str] = []
    directory = os.path.abspath(path)
    while not os.path.lexists(directory):
        missing.append(directory)
        directory = os.path.dirname(directory)
    for directory in reversed(missing):
        try:
            os.mkdir(directory, PRIVATE_DIR)
        except FileExistsError:
            continue  # made meanwhile by another process
        os.chmod(directory, PRIVATE_DIR)  # ours, just made: the umask may have loosened it


def trusted_private_dir(path: str | os.PathLike[str], what: str, fix: str, create: bool = True) -> bool:
    """The one check of a directory whose files decide what credhelper hands out (the cache, the
    runtime directory): created 0700 when absent (with `create`), else refused, ConfigError (78),
    when it is not this user's own and private (paths.untrusted_reason). False when it does not
    exist and was not to be created."""
    if not os.path.isabs(path):
        raise ConfigError(f"{os.fspath(path)}: the {what} must be an absolute path; {fix}")
    try:
        if create:
            make_private_dir(path)
        info = os.stat(path)
    except FileNotFoundError:
        return False
    except OSError as error:  # a file in the way, a read-only or full file system, no permission
        raise FileSystemError(
            f"cannot create the {what} {error.filename or os.fspath(path)}: {error.strerror}: fix the "
            f"permissions or free space, or {fix}"
        ) from None
    if not stat.S_ISDIR(info.st_mode):
        kind = file_kind(info.st_mode)
        raise ConfigError(f"{os.fspath(path)}: the {what} is a {kind}, not a directory; {fix}")
    reason = untrusted_reason(info, path=os.fspath(path))
    if reason is not None:
        raise ConfigError(
            f"{os.fspath(path)}: credhelper does not trust this {what}: {reason}, so someone else could "
            f"plant credentials there; {fix}"
        )
    return True


def read_trusted_json(path: str, what: str, fix: str, limit: int) -> dict[str, Any] | None:
    """The JSON object in one of credhelper's own small files (a cache entry, the endpoint
    record), or None when there is none or it is damaged: not a regular file (never followed if a
    symlink, never blocked on), over `limit` bytes, not a JSON object. A file that is not this
    user's own and private (paths.untrusted_reason) is refused, ConfigError (78): someone else
    could have planted it."""
    try:
        found = read_regular_file(path, limit)
    except OSError:
        return None
    if found is None:
        return None
    reason = untrusted_reason(found[1], path=path)
    if reason is not None:
        raise ConfigError(f"{path}: credhelper does not trust this {what}: {reason}; {fix}")
    try:
        data = json.loads(found[0])
    except (ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) else None


def open_directory(path: str | os.PathLike[str], no_symlinks: bool = False) -> int:
    """A directory opened for reading, to write, rename and fsync in through `dir_fd` while its
    path may change. With `no_symlinks`, `path` must be absolute and real (os.path.realpath):
    each component is opened without following a symlink, so one swapped in on the way since
    the path was resolved fails (ENOTDIR) rather than leading elsewhere."""
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
    if not no_symlinks:
        return os.open(path, flags)
    text = os.fspath(path)
    if not text.startswith("/"):
        raise ValueError(f"not an absolute path: {text}")
    parts = [part for part in text.split("/") if part]
    # O_PATH on the way: a directory one may only search (mode 711) is passed as a lookup passes it.
    fd = os.open("/", (os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC) if parts else flags)
    try:
        for number, part in enumerate(parts, 1):
            if part in (".", ".."):
                raise ValueError(f"not a real path: {text}")
            way = os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC if number < len(parts) else flags
            fd, parent = os.open(part, way | os.O_NOFOLLOW, dir_fd=fd), fd
            os.close(parent)
    except BaseException:
        os.close(fd)
        raise
    return fd


def remove_quietly(path: str | os.PathLike[str], dir_fd: int | None = None) -> None:
    try:  # noqa: SIM105 - contextlib would cost the hot path an import
        os.unlink(path, dir_fd=dir_fd)
    except FileNotFoundError:
        pass


def _give_to(fd: int, owner: tuple[int, int]) -> None:
    """Hand a new file to the owner and group of the file it replaces (root writing another
    user's file); as far as this process may."""
    uid, gid = owner
    if (uid, gid) == (os.geteuid(), os.getegid()):
        return
    try:
        os.fchown(fd, uid, gid)
    except PermissionError:
        try:  # noqa: SIM105 - contextlib would cost the hot path an import
            os.fchown(fd, -1, gid)  # a group this user belongs to
        except PermissionError:
            pass


def write_temp(dir_fd: int, stem: str, data: bytes, mode: int, owner: tuple[int, int] | None = None) -> str:
    """A new file beside its destination in the directory open at `dir_fd`, fully written and
    fsynced, with exactly `mode` (and `owner`'s uid and gid, when given). Returns its name there."""
    for attempt in range(100):
        temp = f".{stem}.credhelper-{os.getpid()}-{attempt}.tmp"
        try:
            fd = os.open(
                temp,
                os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                PRIVATE_FILE,
                dir_fd=dir_fd,
            )
        except FileExistsError:
            continue
        try:
            if owner is not None:
                _give_to(fd, owner)
            os.fchmod(fd, mode)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            remove_quietly(temp, dir_fd)
            raise
        os.close(fd)
        return temp
    raise OSError(errno.EEXIST, f"cannot create a temporary file for {stem}")


def replace_file(dir_fd: int, temp: str, name: str) -> None:
    """Rename `temp` over `name`, both in the directory open at `dir_fd`, and fsync the directory;
    `temp` is removed if the rename fails."""
    try:
        os.replace(temp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except BaseException:
        remove_quietly(temp, dir_fd)
        raise
    os.fsync(dir_fd)


def atomic_write(path: str | os.PathLike[str], data: bytes, mode: int = PRIVATE_FILE) -> None:
    """Temp file in the same directory, fsync, rename over, fsync the directory."""
    directory, name = os.path.split(os.path.abspath(path))
    dir_fd = open_directory(directory)
    try:
        replace_file(dir_fd, write_temp(dir_fd, name, data, mode), name)
    finally:
        os.close(dir_fd)


def read_bytes_or_none(path: str | os.PathLike[str]) -> bytes | None:
    """The file's bytes, or None when there is none. Never blocks: a FIFO, socket, device or
    directory raises NotRegularFile."""
    found = read_regular_file(path, follow_symlinks=True)
    return found[0] if found is not None else None


class NotRegularFile(OSError):
    """The path names a FIFO, socket, device or directory: never opened for reading or replaced."""

    def __init__(self, path: str | os.PathLike[str], kind: str) -> None:
        super().__init__(errno.EINVAL, f"a {kind}, not a regular file", os.fspath(path))
        self.kind = kind


class FileTooLarge(OSError):
    def __init__(self, path: str | os.PathLike[str], limit: int) -> None:
        super().__init__(errno.EFBIG, f"larger than {limit} bytes", os.fspath(path))
        self.limit = limit


_KINDS = (
    (stat.S_ISREG, "regular file"),
    (stat.S_ISDIR, "directory"),
    (stat.S_ISFIFO, "FIFO"),
    (stat.S_ISSOCK, "socket"),
    (stat.S_ISCHR, "device"),
    (stat.S_ISBLK, "device"),
    (stat.S_ISLNK, "symbolic link"),
)


def file_kind(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "special file")


def read_regular_file(
    path: str | os.PathLike[str],
    limit: int | None = None,
    follow_symlinks: bool = False,
    dir_fd: int | None = None,
) -> tuple[bytes, os.stat_result] | None:
    """The bytes and fstat of a regular file, or None when it does not exist. Opened without
    blocking and checked with fstat before a byte is read, so a FIFO or device cannot hang the
    caller; at most `limit` bytes are read (more raise FileTooLarge). Without `follow_symlinks`
    a symlink is refused: the caller resolved it already, and one appearing since is a race.
    With `dir_fd`, a relative `path` is opened in the directory open there."""
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
    if not follow_symlinks:
        flags |= os.O_NOFOLLOW
    try:
        fd = os.open(path, flags, dir_fd=dir_fd)
    except FileNotFoundError:
        return None
    except OSError as error:
        if error.errno in (errno.ENXIO, errno.ELOOP, errno.EOPNOTSUPP):  # a socket; a symlink
            try:
                kind = file_kind(os.stat(path, dir_fd=dir_fd, follow_symlinks=False).st_mode)
            except OSError:
                raise error from None
            raise NotRegularFile(path, kind) from None
        raise
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise NotRegularFile(path, file_kind(info.st_mode))
        if limit is not None and info.st_size > limit:
            raise FileTooLarge(path, limit)
        chunks = []
        left = (limit + 1) if limit is not None else -1
        while True:
            chunk = os.read(fd, 1 << 16 if left < 0 else min(left, 1 << 16))
            if not chunk:
                break
            chunks.append(chunk)
            if left >= 0:
                left -= len(chunk)
                if left == 0:
                    raise FileTooLarge(path, limit or 0)
        return b"".join(chunks), info
    finally:
        os.close(fd)


F_SETLEASE = getattr(fcntl, "F_SETLEASE", 1024)


def being_written(dir_fd: int, name: str) -> bool:
    """Whether another process holds the file `name` open for writing (an editor or `cp` writing
    it in place: truncated, its new text an instant later). The kernel grants a read lease only on
    a file nobody has open for writing; the lease is released at once. False when the file is not
    there, or the file system grants no leases (nothing is known: the caller goes on)."""
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dir_fd)
    except OSError:
        return False
    try:
        fcntl.fcntl(fd, F_SETLEASE, fcntl.F_RDLCK)  # released by the close below
    except OSError as error:
        return error.errno == errno.EAGAIN
    finally:
        os.close(fd)
    return False


def writers_gone(dir_fd: int, name: str, seconds: float) -> bool:
    """Whether every other writer of `name` closed it within `seconds` (polled every 20 ms)."""
    deadline = time.monotonic() + seconds
    while being_written(dir_fd, name):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)
    return True


def lock_holder(fd: int) -> int | None:
    """The pid holding an flock on the file open at `fd`, from /proc/locks; None if unknown."""
    info = os.fstat(fd)
    try:
        with open("/proc/locks") as handle:
            lines = handle.read().splitlines()
    except OSError:
        return None
    for line in lines:
        fields = line.split()
        if len(fields) < 6 or fields[1] != "FLOCK" or fields[-3].count(":") != 2:
            continue
        major, minor, inode = fields[-3].split(":")
        try:
            if int(inode) == info.st_ino and os.makedev(int(major, 16), int(minor, 16)) == info.st_dev:
                return int(fields[-4])
        except ValueError:
            continue
    return None


def open_lock_file(path: str | os.PathLike[str]) -> int:
    """A lock file, opened read-write without following a symlink or blocking. Lock files are
    credhelper's own: a FIFO, symlink, socket or device in the way is removed and a new file made
    (a directory is not: it raises NotRegularFile)."""
    flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
    for _ in range(5):
        try:
            fd = os.open(path, flags, PRIVATE_FILE)
        except OSError as error:
            if error.errno not in (errno.ELOOP, errno.ENXIO, errno.EOPNOTSUPP, errno.EISDIR):
                raise
            kind = file_kind(os.lstat(path).st_mode)
        else:
            mode = os.fstat(fd).st_mode
            if stat.S_ISREG(mode):
                return fd
            os.close(fd)
            kind = file_kind(mode)
        if kind == "directory":
            raise NotRegularFile(path, kind)
        remove_quietly(path)
    raise NotRegularFile(path, kind)


def is_still_at(fd: int, path: str | os.PathLike[str]) -> bool:
    """Whether `path` still names the file open at `fd` (a lock file may have been replaced)."""
    try:
        named = os.stat(path, follow_symlinks=False)
    except OSError:
        return False
    held = os.fstat(fd)
    return (named.st_dev, named.st_ino) == (held.st_dev, held.st_ino)


class file_lock:
    """An flock on `path` (created 0600). Held by the open file, so a crashed holder frees it."""

    def __init__(self, path: str | os.PathLike[str], timeout: float = 120.0) -> None:
        self.path = path
        self.timeout = timeout
        self.fd = -1

    def __enter__(self) -> None:
        self.fd = open_lock_file(self.path)
        deadline = time.monotonic() + self.timeout
        delay = 0.005
        while True:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                if is_still_at(self.fd, self.path):
                    return
                os.close(self.fd)  # replaced while this process waited: lock the one there now
                self.fd = open_lock_file(self.path)
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = lock_holder(self.fd)
                    os.close(self.fd)
                    raise LockTimeout(os.fspath(self.path), holder, self.timeout) from None
                time.sleep(delay)
                delay = min(delay * 2, 0.1)

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        os.close(self.fd)
