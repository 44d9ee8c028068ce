"""One target, one keeper: a daemon claims each target it writes (a file, or one section of a
credentials file), for as long as the target is in its configuration.

The daemon's own lock lives in its cache directory, so two daemons with different cache directories
(the systemd unit and a `credhelper run` with another XDG_CACHE_HOME, root and the user) would each
rewrite the same `.env` with their own credentials, forever. The claim depends neither on the cache
nor on the target's directory (two daemons may keep two files of one directory): it is a Unix socket
bound in the abstract namespace under a name made of the target's resolved path and section. The
kernel lets one socket hold a name and frees it when its process dies, however it dies; no file is
left anywhere. A target another daemon of this user (or root's) holds is left to that daemon; its
profile fails like any other failure and is retried with the backoff, so when the other daemon stops,
this one takes over. A name held by another user's process is no claim of a credhelper of ours (that
user could not write this user's files anyway) and is ignored. One-shot commands (`refresh`,
`adopt-keys`) do not claim: they write under the target locks.
"""

from __future__ import annotations

import contextlib
import copy
import errno
import hashlib
import os
import socket
import struct

from ..errors import CredhelperError
from ..profile import Profile
from .registry import profile_targets

Claim = tuple[str, str]  # a target's resolved path, and its section ("" for a whole file)


class TargetKeptElsewhere(CredhelperError):
    """Another daemon keeps a target of this profile."""


def claim_address(claim: Claim) -> bytes:
    """The abstract socket name standing for one target."""
    digest = hashlib.sha256("\0".join(claim).encode("utf-8", "surrogateescape")).hexdigest()[:48]
    return b"\0credhelper/keeper/" + digest.encode()


def holder_of(address: bytes) -> tuple[int, int] | None:
    """(pid, uid) of the process whose socket holds `address`, or None when unknown."""
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        probe.setblocking(False)
        probe.connect(address)
        pid, uid, _ = struct.unpack("3i", probe.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))
    except OSError:
        return None
    finally:
        probe.close()
    return pid, uid


class TargetClaims:
    """The targets this daemon has claimed, each held by one listening socket."""

    def __init__(self) -> None:
        self.held: dict[Claim, socket.socket] = {}

    def claim(self, claim: Claim) -> int | None:
        """None when this daemon holds the target (or cannot claim it at all: the write then goes
        on as without a claim); else the pid of the daemon holding it (0 when unknown)."""
        if claim in self.held:
            return None
        address = claim_address(claim)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        try:
            sock.bind(address)
            sock.listen(8)  # so that another daemon can ask who holds it (SO_PEERCRED)
            sock.setblocking(False)
        except OSError as error:
            sock.close()
            if error.errno != errno.EADDRINUSE:
                return None
            holder = holder_of(address)
            if holder is not None and holder[1] not in (0, os.geteuid()):
                return None  # another user's squat, not a keeper of this user's files
            return holder[0] if holder is not None else 0
        self.held[claim] = sock
        return None

    def answer_questions(self) -> None:
        """Close the connections other daemons made to learn who holds a target."""
        for sock in self.held.values():
            with contextlib.suppress(OSError):
                while True:
                    sock.accept()[0].close()

    def keep_only(self, profiles: list[Profile]) -> None:
        """Release the targets none of `profiles` has any more."""
        wanted = {target.claim() for p in profiles for target in profile_targets(p)}
        for claim in set(self.held) - wanted:
            self.held.pop(claim).close()

    def release_all(self) -> None:
        for sock in self.held.values():
            sock.close()
        self.held.clear()

    def kept(self, profile: Profile) -> tuple[Profile, TargetKeptElsewhere | None]:
        """The profile as this daemon may write it: without the targets another daemon keeps
        (and without its hooks when none is left), and the error that names them."""
        self.answer_questions()
        configured: list[object] = [*profile.env_files, *profile.credentials_files]
        refused: list[tuple[str, int]] = []
        kept: list[object] = []
        for target, entry in zip(profile_targets(profile), configured, strict=True):
            holder = self.claim(target.claim())
            if holder is None:
                kept.append(entry)
            else:
                refused.append((target.label, holder))
        if not refused:
            return profile, None
        view = copy.copy(profile)
        view.env_files = tuple(raw for raw in profile.env_files if raw in kept)
        view.credentials_files = tuple(entry for entry in profile.credentials_files if entry in kept)
        if not kept:
            view.on_refresh = ()  # the other daemon runs the hooks of the targets it writes
        return view, _kept_elsewhere(profile.name, refused)


def _kept_elsewhere(profile: str, refused: list[tuple[str, int]]) -> TargetKeptElsewhere:
    label, holder = refused[0]
    who = f"another credhelper daemon (pid {holder})" if holder else "another credhelper daemon"
    more = f" and {len(refused) - 1} more target(s)" if len(refused) > 1 else ""
    return TargetKeptElsewhere(
        f"profile {profile}: {label}{more} is kept by {who}; not written "
        "by this daemon, so the two do not overwrite each other: stop one of them (this one takes "
        "over when the other stops)"
    )
