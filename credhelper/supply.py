"""The one path from STS to an app: obtain credentials, deliver them to every target, run the hooks.
`refresh`, `adopt-keys`, `init` and the daemon's refreshes go through `supply`; `exec`,
`credential-process` and `env --static` obtain only."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .credentials import Credentials
from .errors import CredhelperError, as_credhelper_error
from .policy import Mode, Want, want
from .profile import Profile
from .refresher import Refresher

if TYPE_CHECKING:
    from .targets.delivery import DeliveryReport


@dataclass
class Supplied:
    credentials: Credentials
    report: DeliveryReport


def supply(
    refresher: Refresher,
    profile: Profile,
    wanted: Want,
    environ: Mapping[str, str] | None = None,
    held: Credentials | None = None,
    write_guard: contextlib.AbstractContextManager[object] | None = None,
) -> Supplied:
    """Credentials as `wanted`, written to every target; hooks run when they differ from `held`.

    Raises a CredhelperError when no credentials could be had; a target that cannot take them is
    in the report's errors. `write_guard` is held while the targets are written.
    """
    from .targets.delivery import DeliveryReport, deliver

    credentials = refresher.obtain(profile, wanted.min_seconds_left, wanted.issued_after)
    if credentials.is_expired(refresher.clock()):
        raise CredhelperError(f"profile {profile.name}: the credentials expired before they could be written")
    run_hook = held is None or held.access_key_id != credentials.access_key_id
    try:
        with write_guard or contextlib.nullcontext():
            report = deliver(
                profile, credentials, refresher.cache.directory, environ or os.environ, run_hook=run_hook
            )
    except Exception as error:  # a bug in a target: a failure like any other, not a crash
        report = DeliveryReport(
            errors=[as_credhelper_error(error, f"write the targets of profile {profile.name}")]
        )
    return Supplied(credentials, report)


def refresh_and_deliver(
    refresher: Refresher, profile: Profile, environ: Mapping[str, str] | None = None
) -> Supplied:
    """New credentials from STS now (unless another process just got some), delivered."""
    return supply(refresher, profile, want(Mode.FORCE, profile, None, refresher.clock()), environ)
