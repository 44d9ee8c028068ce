"""One refresh attempt of the daemon's coordinator, and its outcome."""

from __future__ import annotations

from dataclasses import dataclass

from ..credentials import Credentials
from ..errors import CredhelperError
from ..policy import Want
from ..profile import Profile
from ..supply import Supplied
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
