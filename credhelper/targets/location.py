"""Where a target's file is: the path resolved through symlinks only trusted users own, and its
directory opened once, for every later read, write and rename of `files.rewrite_file` to go
through. Also who may own the file: `refuse_unsafe_owner`."""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from pathlib import Path

from ..errors import TargetError
from ..fileio import open_directory
from ..paths import resolve_route, swappable_way_for

WRITABLE_BY_OTHERS = 0o002


def resolved_with_directory(configured: Path, label: str, setting: str) -> tuple[Path, os.stat_result]:
    """The file a target path points at (through symlinks none but this user or root owns), and
    the status of the directory it is in, as checked.

    Whoever owns a symlink on the way to a target decides where credentials go: only this
    user's and root's are followed. Root writing for another user also follows that user's own
    links, but only to a file (or, for a new one, a directory) of that same user: never a link
    of one user into root's or a third user's files; and only along a way that no one but root and
    that user could have changed (paths.swappable_way_for): a link, a directory or the file in a
    shared directory, at any depth, may have been put there by anyone, to have root's credentials
    written to a file of their own. The links checked are those of the one walk that found the
    file (paths.resolve_route)."""
    real, links = resolve_route(str(configured))
    if real is None:
        raise TargetError(f"{label}: too many levels of symbolic links; fix {setting}")
    path = Path(real)
    uid = os.geteuid()
    owners = {0, uid}
    if uid == 0:
        try:
            owners.add(os.stat(path, follow_symlinks=False).st_uid)
        except FileNotFoundError:
            with contextlib.suppress(OSError):
                owners.add(os.stat(path.parent).st_uid)
        except OSError:
            pass
    for link, owner in links:
        if owner not in owners:
            raise TargetError(
                f"{label}: {link} is a symlink owned by another user (uid {owner}), who could send the "
                f"credentials anywhere; credhelper does not follow it: remove it or point {setting} at a "
                "path of your own"
            )
    try:
        directory = os.stat(path.parent)
    except OSError:
        directory = None
    if directory is None or not stat.S_ISDIR(directory.st_mode):
        raise TargetError(f"{label}: directory {path.parent} does not exist; create it or fix {setting}")
    if uid == 0:
        _refuse_a_way_others_control(configured, path, directory, label, setting)
    return path, directory


def _refuse_a_way_others_control(
    configured: Path, path: Path, directory: os.stat_result, label: str, setting: str
) -> None:
    """Root writing a file another user U could own (the file's owner, or the owner of its
    directory, who can put a file of their own in its place at any moment): every directory on
    the way must be root's or U's, and writable by no one else."""
    try:
        file_owner = os.stat(path, follow_symlinks=False).st_uid
    except OSError:
        file_owner = 0
    for user in sorted({file_owner, directory.st_uid} - {0}):
        _refuse_a_way_user_does_not_hold(configured, user, label, setting)


def _refuse_a_way_user_does_not_hold(path: Path, user: int, label: str, setting: str) -> None:
    reason = swappable_way_for(str(path), user)
    if reason is not None:
        raise TargetError(
            f"{label}: a file uid {user} may own, on a way others control ({reason}): whoever can "
            "write there could have put it in place to read root's credentials; as root, credhelper "
            "keeps another user's file only where no one but root and that user can change the way "
            f"to it: point {setting} elsewhere"
        )


def open_target_directory(path: Path, checked: os.stat_result, label: str) -> int:
    """The directory of `path` (resolved) opened, for every later read, write and rename to go
    through: a directory on the way swapped since it was checked (by whoever owns the one above
    it: a user whose file root keeps) cannot send the write elsewhere. Refused when the one open
    is not the one `checked`."""
    changed = TargetError(
        f"{label}: directory {path.parent} was replaced while credhelper opened it; credhelper writes "
        "only into the directory it checked: try again"
    )
    try:
        dir_fd = open_directory(path.parent, no_symlinks=True)
    except OSError as error:
        if error.errno in (errno.ENOTDIR, errno.ELOOP, errno.ENOENT):  # a symlink or nothing in the way
            raise changed from None
        raise  # the caller says what the OS refused
    info = os.fstat(dir_fd)
    if (info.st_dev, info.st_ino) != (checked.st_dev, checked.st_ino):
        os.close(dir_fd)
        raise changed
    return dir_fd


def refuse_unsafe_owner(label: str, setting: str, mode: int, owner: int, path: Path) -> None:
    """Credentials never go into a file others may write, or (unless running as root) one that
    another user owns: they could read every secret credhelper puts there. Root keeps another
    user's file only along a way no third user could have changed (paths.swappable_way_for):
    checked at every read, for the file may have changed hands since the path was resolved."""
    if mode & WRITABLE_BY_OTHERS:
        raise TargetError(
            f"{label}: any user can write this file (mode {mode:o}); credhelper puts no "
            "credentials in it: chmod 600 it (or remove it and let credhelper create it)"
        )
    uid = os.geteuid()
    if uid != 0 and owner != uid:
        raise TargetError(
            f"{label}: owned by another user (uid {owner}), who could read the credentials; "
            "credhelper writes only files of your own: remove it or point the profile at your own file"
        )
    if uid == 0 and owner != 0:
        _refuse_a_way_user_does_not_hold(path, owner, label, setting)
