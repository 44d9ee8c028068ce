"""What the daemon's coordinator works with: an attempt and its outcome, and the interfaces of what
it acts on (the `World`: `world.SystemWorld` in a running daemon, a fake in the tests; systemd's
notification socket)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from ..config import Config
from ..credentials import Credentials
from ..errors import CredhelperError
from ..policy import Want
from ..profile import Profile
from ..supply import Supplied
from ..targets.delivery import DeliveryReport
from ..targets.keeper import TargetKeptElsewhere


@dataclass(frozen=True)
class Attempt:
    """One profile's refresh, as the scheduler thread started it."""

    profile: Profile
    wanted: Want
    held: Credentials | None
    kept: Profile  # the profile with only the targets this daemon keeps
    elsewhere: TargetKeptElsewhere | None  # the targets another daemon keeps


@dataclass(frozen=True)
class Outcome:
    attempt: Attempt
    supplied: Supplied | None
    error: CredhelperError | None = None


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
