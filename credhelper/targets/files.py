"""The I/O around every kind of target: every read, check, write and status of a target goes
through these functions, so each rule (never block on a FIFO, refuse what is not a regular file or
is over 1 MiB, keep mode and owner, leave no temp file, merge a concurrent edit again) holds for
every kind at once. `rewrite_file` underneath is the one writer of every file outside
credhelper's own private directories that may hold a secret, targets or not.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..credentials import Credentials
from ..errors import (
    CredhelperError,
    LockTimeout,
    TargetBeingWritten,
    TargetError,
    TargetWriteError,
)
from ..fileio import (
    PRIVATE_FILE,
    FileTooLarge,
    NotRegularFile,
    file_lock,
    read_regular_file,
    remove_quietly,
    replace_file,
    write_temp,
    writers_gone,
)
from ..interfaces import KeyPairCheck, Target
from ..paths import target_lock_path
from .location import open_target_directory, refuse_unsafe_owner, resolved_with_directory

log = logging.getLogger("credhelper.targets")  # the name it had as one module: log filters keep working
MAX_TARGET_BYTES = 1 << 20
MAX_MERGE_ROUNDS = 20
READABLE_BY_OTHERS = 0o044
LOCK_SECONDS = 30.0
# How long a write waits for another process to close the file it is writing in place.
WRITER_WAIT_SECONDS = 2.0


@dataclass(frozen=True)
class Snapshot:
    """A target file as read: its text and what a rewrite keeps (mode, owner)."""

    data: bytes
    text: str
    mode: int
    owner: tuple[int, int]


def _decode(label: str, data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise TargetError(f"{label}: not UTF-8 text; credhelper leaves it untouched") from None


_FIXES = {
    errno.EACCES: "give your user read and write access to the file (chmod u+rw) and its directory",
    errno.EPERM: "give your user read and write access to the file (chmod u+rw) and its directory",
    errno.ENOSPC: "free some space on that file system",
    errno.EDQUOT: "free some space (the disk quota is reached)",
    errno.EROFS: "the file system is read-only; make it writable or move the target",
}


def os_failure(label: str, verb: str, error: OSError) -> TargetWriteError:
    fix = _FIXES.get(error.errno or 0, "check the file and its directory")
    return TargetWriteError(f"{label}: cannot {verb}: {error.strerror or error}; {fix}")


def read_target_file(path: Path, label: str, setting: str, dir_fd: int | None = None) -> Snapshot | None:
    """The file at `path` (already resolved), never blocking; None when it does not exist. With
    `dir_fd` (its directory, opened by `open_target_directory`), read by name in that directory."""
    try:
        if dir_fd is None:
            found = read_regular_file(path, limit=MAX_TARGET_BYTES)
        else:
            found = read_regular_file(path.name, limit=MAX_TARGET_BYTES, dir_fd=dir_fd)
    except NotRegularFile as error:
        raise TargetError(
            f"{label}: is a {error.kind}, not a regular file; point {setting} at a regular file "
            "(or a symlink to one)"
        ) from None
    except FileTooLarge:
        raise TargetError(
            f"{label}: larger than 1 MiB, more than a credentials target ever holds; check that "
            f"{setting} names the right file"
        ) from None
    except OSError as error:
        raise os_failure(label, "read it", error) from None
    if found is None:
        return None
    data, info = found
    return Snapshot(data, _decode(label, data), info.st_mode & 0o7777, (info.st_uid, info.st_gid))


def read_target(target: Target) -> Snapshot | None:
    label, setting = target.label, target.setting
    path, directory = resolved_with_directory(target.path, label, setting)
    try:
        dir_fd = open_target_directory(path, directory, label)  # read where it was checked, too
    except OSError as error:
        raise os_failure(label, "open its directory", error) from None
    try:
        found = read_target_file(path, label, setting, dir_fd)
    finally:
        os.close(dir_fd)
    if found is not None:
        refuse_unsafe_owner(label, setting, found.mode, found.owner[0], path)
    return found


def placeholder_credentials() -> Credentials:
    """Obviously fake credentials shaped like STS's, for proving a write would be accepted."""
    return Credentials(
        "ASIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "EXAMPLE+session/token=", 4e9
    )


def check_target(target: Target, adopted: KeyPairCheck) -> None:
    """Everything that would refuse the write, checked before any STS call: the same guard,
    render and read-back the write runs, on the current text with placeholder credentials."""
    found = read_target(target)
    target.guarded_render(found.text if found is not None else "", placeholder_credentials(), adopted)
    _check_writable(target)


def _check_writable(target: Target) -> None:
    """The rename needs a writable directory: say so now rather than after an STS call."""
    directory = target.real_path.parent
    if os.access(directory, os.W_OK | os.X_OK, effective_ids=os.access in os.supports_effective_ids):
        return
    read_only = bool(os.statvfs(directory).f_flag & os.ST_RDONLY)
    code = errno.EROFS if read_only else errno.EACCES
    raise os_failure(target.label, "write it", OSError(code, os.strerror(code)))


def target_state(target: Target, credentials: Credentials | None) -> str:
    """For `status`: the pure state, or why the target is refused."""
    try:
        found = read_target(target)
        return target.state(found.text if found is not None else None, credentials)
    except CredhelperError as error:
        problem = str(error).removeprefix(f"{target.label}: ").removeprefix(f"{target.path}: ")
        return f"refused: {problem}"


def write_target(
    target: Target,
    credentials: Credentials,
    lock_dir: str | Path,
    adopted: KeyPairCheck,
    before_rename: Callable[[], None] | None = None,
    writer_wait: float = WRITER_WAIT_SECONDS,
) -> bool:
    """Guard, render and write one target. Returns False when it already held the credentials."""

    def transform(text: str) -> str:
        return target.guarded_render(text, credentials, adopted)

    return rewrite_file(
        target.path,
        transform,
        lock_dir,
        target.label,
        target.setting,
        before_rename,
        holds_secret=target.must_be_private,
        warn_if_readable=True,
        writer_wait=writer_wait,
    )


def rewrite_file(
    configured: Path,
    transform: Callable[[str], str],
    lock_dir: str | Path,
    label: str,
    setting: str,
    before_rename: Callable[[], None] | None = None,
    holds_secret: Callable[[str], bool] | None = None,
    new_file_mode: int = PRIVATE_FILE,
    warn_if_readable: bool = False,
    writer_wait: float = WRITER_WAIT_SECONDS,
) -> bool:
    """The one writer of every file credhelper changes that may hold a secret (targets, the shared
    credentials file, init's files): `transform` (text in, text out; it may refuse by raising) is
    applied atomically, under a per-file lock, merging again if a person saved the file meanwhile.
    A symlink is written through (never replaced; one another user owns is refused); mode, owner
    and group are kept (a new file: `new_file_mode`, ours), except that a file whose new text
    `holds_secret` ends 0600. No temp file outlives the call. Returns False when the file already
    had the content. `warn_if_readable`: the file holds credentials whatever its text, so a mode
    that lets others read it is worth a warning at every write. A file another process has open for
writing is waited for, `writer_wait` seconds at most (`_wait_for_writer`). Every read, write and rename after
    the check goes through the directory checked, opened once (`open_target_directory`)."""
    path, directory = resolved_with_directory(configured, label, setting)
    lock_path = target_lock_path(os.fspath(lock_dir), hashlib.sha256(str(path).encode()).hexdigest()[:16])
    try:
        dir_fd = open_target_directory(path, directory, label)
    except OSError as error:
        raise os_failure(label, "open its directory", error) from None
    try:
        with file_lock(lock_path, timeout=LOCK_SECONDS):
            return _rewrite_locked(
                dir_fd,
                path,
                transform,
                label,
                setting,
                before_rename,
                holds_secret or _no_secret,
                new_file_mode,
                warn_if_readable,
                writer_wait,
            )
    except LockTimeout as error:
        who = f"process {error.holder}" if error.holder is not None else "another credhelper process"
        raise LockTimeout(
            error.path,
            error.holder,
            LOCK_SECONDS,
            f"{label}: {who} has held its lock for {LOCK_SECONDS:.0f} s; if it is stuck, stop it",
        ) from None
    finally:
        os.close(dir_fd)


def _wait_for_writer(dir_fd: int, name: str, label: str, seconds: float) -> None:
    """Never rename over a file another process is writing in place: its text would land in the
    file replaced, and be lost. Waits up to `seconds` for it to close the file (then its text is
    merged), or refuses; the daemon writes the file again when the writer closes it (a file event)."""
    if not writers_gone(dir_fd, name, seconds):
        raise TargetBeingWritten(
            f"{label}: another process has it open for writing; credhelper writes it once that "
            "process closes it (or run `credhelper refresh` again then)"
        )


def _no_secret(text: str) -> bool:
    return False


def _mode_for(label: str, mode: int, holds_secret: bool) -> int:
    """The mode a write leaves: the file's own, but 0600 for one holding a long-term secret."""
    if not holds_secret or mode == PRIVATE_FILE:
        return mode
    if mode & ~PRIVATE_FILE:
        log.warning(
            "%s holds a long-term secret and was open to others (mode %o); credhelper made it 0600",
            label,
            mode,
        )
    return PRIVATE_FILE


def _rewrite_locked(
    dir_fd: int,
    path: Path,
    transform: Callable[[str], str],
    label: str,
    setting: str,
    before_rename: Callable[[], None] | None,
    holds_secret: Callable[[str], bool],
    new_file_mode: int,
    warn_if_readable: bool,
    writer_wait: float,
) -> bool:
    def refuse_unsafe(found: Snapshot) -> None:
        refuse_unsafe_owner(label, setting, found.mode, found.owner[0], path)

    before = read_target_file(path, label, setting, dir_fd)
    if before is not None:
        refuse_unsafe(before)
    merged = transform(before.text if before is not None else "")
    secret = holds_secret(merged)
    if before is not None and merged == before.text and not (secret and before.mode != PRIVATE_FILE):
        return False
    mode = before.mode if before is not None else new_file_mode
    owner = before.owner if before is not None else None
    for _ in range(MAX_MERGE_ROUNDS):
        mode = _mode_for(label, mode, secret)
        try:
            written = write_temp(dir_fd, path.name, merged.encode("utf-8"), mode, owner)
        except OSError as error:
            raise os_failure(label, "write it", error) from None
        temp: str | None = written
        try:
            if before_rename is not None:
                before_rename()
            # A person may have saved the file while the merge ran: merge their version instead.
            _wait_for_writer(dir_fd, path.name, label, writer_wait)
            now = read_target_file(path, label, setting, dir_fd)
            if (now.data if now else None) == (before.data if before else None):
                try:
                    replace_file(dir_fd, written, path.name)
                except OSError as error:
                    raise os_failure(label, "write it", error) from None
                temp = None
                if warn_if_readable and mode & READABLE_BY_OTHERS:
                    log.warning(
                        "%s is readable by other users (mode %o) and now holds credentials; chmod 600 it",
                        label,
                        mode,
                    )
                return True
        finally:
            if temp is not None:
                remove_quietly(temp, dir_fd)
        before = now
        if now is not None:
            refuse_unsafe(now)
        merged = transform(now.text if now is not None else "")
        secret = holds_secret(merged)
        if now is not None:
            mode, owner = now.mode, now.owner
    raise CredhelperError(f"{label} kept changing while credhelper wrote it; try again")
