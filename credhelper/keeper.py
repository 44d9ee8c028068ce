"""One target, one keeper: a daemon claims the directory of each target it writes, for as long as
the target is in its configuration.

The daemon's own lock lives in its cache directory, so two daemons with different cache directories
(the systemd unit and a `credhelper run` with another XDG_CACHE_HOME, root and the user) would each
rewrite the same `.env` with their own credentials, forever. The claim does not depend on the cache:
an flock on the target's resolved parent directory, held by one open descriptor per directory. A
target whose directory another daemon holds is left to that daemon; its profile fails like any other
failure and is retried with the backoff, so when the other daemon stops, this one takes over.
One-shot commands (`refresh`, `adopt-keys`) do not claim: they write under the target locks.
"""

from __future__ import annotations

import copy
import errno
import fcntl
import os

from .errors import CredhelperError
from .fileio import lock_holder
from .profile import Profile
from .targets import profile_targets


class TargetKeptElsewhere(CredhelperError):
    """Another daemon keeps a target of this profile."""


def _directory(target_path: str) -> str:
    return os.path.dirname(os.path.realpath(target_path))


class TargetClaims:
    """The directories this daemon has claimed, each held by one open descriptor."""

    def __init__(self) -> None:
        self.held: dict[str, int] = {}

    def claim(self, directory: str) -> int | None:
        """None when this daemon holds `directory` (or it cannot be opened: the write then fails
        with its own error); else the pid holding it (0 when unknown)."""
        if directory in self.held:
            return None
        try:
            fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            holder = lock_holder(fd) if error.errno in (errno.EWOULDBLOCK, errno.EAGAIN) else None
            os.close(fd)
            return holder or 0
        self.held[directory] = fd
        return None

    def keep_only(self, profiles: list[Profile]) -> None:
        """Release the directories no target of `profiles` is in any more."""
        wanted = {_directory(str(target.path)) for p in profiles for target in profile_targets(p)}
        for directory in set(self.held) - wanted:
            os.close(self.held.pop(directory))

    def release_all(self) -> None:
        for fd in self.held.values():
            os.close(fd)
        self.held.clear()

    def kept(self, profile: Profile) -> tuple[Profile, TargetKeptElsewhere | None]:
        """The profile as this daemon may write it: without the targets another daemon keeps
        (and without its hooks when none is left), and the error that names them."""
        targets = profile_targets(profile)
        configured = list(profile.env_files) + [path for path, _ in profile.credentials_files]
        refused: list[tuple[str, int]] = []
        kept_raw: set[str] = set()
        for target, raw in zip(targets, configured, strict=True):
            holder = self.claim(_directory(str(target.path)))
            if holder is None:
                kept_raw.add(raw)
            else:
                refused.append((target.label, holder))
        if not refused:
            return profile, None
        view = copy.copy(profile)
        view.env_files = tuple(raw for raw in profile.env_files if raw in kept_raw)
        view.credentials_files = tuple(entry for entry in profile.credentials_files if entry[0] in kept_raw)
        if not kept_raw:
            view.on_refresh = ()  # the other daemon runs the hooks of the targets it writes
        return view, _kept_elsewhere(profile.name, refused)


def _kept_elsewhere(profile: str, refused: list[tuple[str, int]]) -> TargetKeptElsewhere:
    label, holder = refused[0]
    who = f"another credhelper daemon (pid {holder})" if holder else "another credhelper daemon"
    more = f" and {len(refused) - 1} more target(s)" if len(refused) > 1 else ""
    return TargetKeptElsewhere(
        f"profile {profile}: {label}{more} is kept by {who}, which holds its directory; not written "
        "by this daemon, so the two do not overwrite each other: stop one of them (this one takes "
        "over when the other stops)"
    )
