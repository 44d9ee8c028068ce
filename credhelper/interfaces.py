"""The interfaces between credhelper's layers, declared in one place: what a lower layer calls
without knowing what is above it, and what tests replace with fakes.

- `Clock`: the two clocks of every time-dependent decision (schedule.SystemClock; a fake in tests).
- `Target`: one kind of file a profile keeps supplied (targets.envfile, targets.credsection; the
  registry of kinds in targets.registry, their I/O in targets.files).
- `Lookup`: how the endpoint's server finds a profile's credentials (the daemon's
  daemon.bridge, exec's appexec.supervisor).
- `World`, `Notify`: what the daemon's coordinator acts on (daemon.world.SystemWorld and
  sdnotify.Notifier in a running daemon; tests/daemonfakes.py in the tests).
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Protocol

from .credentials import Credentials

if TYPE_CHECKING:  # annotations only: the layers these name sit above this module
    from .config import Config
    from .daemon.attempt import Attempt
    from .profile import Profile
    from .supply import Supplied
    from .targets.delivery import DeliveryReport


class Clock(Protocol):
    """The wall clock (what expirations are measured in) and the monotonic clock (immune to the
    wall clock being set back)."""

    def wall(self) -> float: ...

    def mono(self) -> float: ...


# Is this long-term pair (key id, secret if known) already kept in a source profile?
KeyPairCheck = Callable[[str, "str | None"], bool]


@dataclass(frozen=True)
class Target(ABC):
    """One file (or part of one) a profile keeps supplied with credentials."""

    path: Path  # as configured, expanded
    setting: ClassVar[str]  # the profile key that names it

    @property
    def label(self) -> str:
        """How messages and `status` name the target."""
        return str(self.path)

    @property
    def real_path(self) -> Path:
        """A symlinked target is written through to the file it points at."""
        return Path(os.path.realpath(self.path))

    def claim(self) -> tuple[str, str]:
        """What the target owns; two profiles must never claim the same (after symlinks)."""
        return (str(self.real_path), "")

    def watch_paths(self) -> set[str]:
        """The configured path and, for a symlink, the file it points at."""
        configured = os.path.abspath(self.path)
        return {configured, os.path.realpath(configured)}

    @abstractmethod
    def guard(self, text: str, adopted: KeyPairCheck) -> None:
        """Raise (TargetError, LongTermKeyError) when `text` must not be rewritten. Pure."""

    @abstractmethod
    def render(self, text: str, credentials: Credentials) -> str:
        """The new text: `text` with the credentials in place, every other byte kept. Pure."""

    @abstractmethod
    def state(self, text: str | None, credentials: Credentials | None) -> str:
        """'missing', 'current' or 'stale', for `status`. Pure."""

    @abstractmethod
    def must_be_private(self, text: str) -> bool:
        """Whether a file of this kind holding `text` must be 0600: it keeps a long-term secret
        beside the credentials credhelper writes. Pure."""

    def guarded_render(self, text: str, credentials: Credentials, adopted: KeyPairCheck) -> str:
        """What a write puts in place of `text`: `guard`, then `render`. Pure. A kind whose
        questions share a parse of the text overrides it to parse once."""
        self.guard(text, adopted)
        return self.render(text, credentials)


class UnknownProfile(Exception):
    """A request at an endpoint named a profile the endpoint does not serve."""


# Looks a profile's credentials up for a request: returns them, raises UnknownProfile, or raises
# CredhelperError when none can be had.
Lookup = Callable[[str], Credentials]


class World(Protocol):
    """What the coordinator asks of the world around it: a running daemon's is
    `world.SystemWorld`; tests pass a fake (tests/daemonfakes.py)."""

    @property
    def credentials_file(self) -> str:
        """The shared credentials file, absolute: a change there may be rotated source keys."""

    def load_config(self) -> Config:
        """The configuration as the daemon was told to read it; raises CredhelperError."""

    def start(self, name: str, job: Callable[[], None]) -> None:
        """Run `job`, one attempt of profile `name`, on a thread of its own."""

    def refresh(self, attempt: Attempt) -> Supplied:
        """Carry out one attempt (on that thread): credentials as wanted, written to the targets
        kept, hooks run. Raises when no credentials could be had."""

    def restore(self, profile: Profile, credentials: Credentials) -> DeliveryReport:
        """Write credentials already held to the profile's targets again: no STS call, no hook.
        Raises CredhelperError once the daemon is stopping."""

    def record_state(self, name: str, changes: dict[str, object]) -> None:
        """Best effort: note `changes` in the profile's state file, for `status`."""

    def source_digest(self, profiles: Iterable[Profile]) -> str:
        """What of the shared credentials file these profiles depend on."""

    def forget_sources(self) -> None:
        """The source keys changed: sessions made from the old ones are not to be reused."""

    def watch(self, directories: set[str]) -> None:
        """Watch exactly these directories; changes come back through `paths_changed`."""


class Notify(Protocol):
    """systemd's notification socket (`sdnotify.Notifier`)."""

    @property
    def watchdog_interval(self) -> float | None: ...

    def send(self, *fields: str) -> None: ...

    def watchdog(self) -> None: ...
