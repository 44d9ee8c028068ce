"""Handing fresh credentials to a profile's targets, then running its hooks."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ..credentials import Credentials
from ..errors import CredhelperError
from ..hooks import run_hooks
from ..interfaces import KeyPairCheck
from ..paths import shared_credentials_path
from ..profile import Profile
from .credsection import holds_key_pair
from .files import WRITER_WAIT_SECONDS, check_target, os_failure, write_target
from .registry import profile_targets

log = logging.getLogger("credhelper.delivery")


@dataclass
class DeliveryReport:
    written: list[Path] = field(default_factory=list)
    unchanged: list[Path] = field(default_factory=list)
    errors: list[CredhelperError] = field(default_factory=list)
    hook_ok: bool = True


def watch_paths(profile: Profile) -> set[str]:
    """Every path whose change means a target of the profile may need restoring."""
    return {path for target in profile_targets(profile) for path in target.watch_paths()}


def adopted_checker(environ: Mapping[str, str]) -> KeyPairCheck:
    shared_file = shared_credentials_path(environ)

    def adopted(key_id: str, secret: str | None) -> bool:
        return holds_key_pair(shared_file, key_id, secret)

    return adopted


def check_targets(profile: Profile, environ: Mapping[str, str]) -> None:
    """Refuse before any STS call when a target could not be written: its directory missing, not
    a regular file, too large, unreadable, or holding a long-term key not yet in a source profile."""
    adopted = adopted_checker(environ)
    for target in profile_targets(profile):
        check_target(target, adopted)


def deliver(
    profile: Profile,
    credentials: Credentials,
    lock_dir: str | Path,
    environ: Mapping[str, str],
    run_hook: bool = True,
    writer_wait: float = WRITER_WAIT_SECONDS,
) -> DeliveryReport:
    """Write every target; one failing target does not stop the others. Hooks run after all.
    `writer_wait`: how long a target another process is writing in place is waited for."""
    report = DeliveryReport()
    adopted = adopted_checker(environ)
    targets = profile_targets(profile)
    for target in targets:
        try:
            changed = write_target(target, credentials, lock_dir, adopted, writer_wait=writer_wait)
        except CredhelperError as error:
            report.errors.append(error)
            continue
        except OSError as error:  # the lock file, or anything else the OS refuses
            report.errors.append(os_failure(target.label, "write it", error))
            continue
        (report.written if changed else report.unchanged).append(target.path)
    if run_hook and (report.written or report.unchanged or not targets):
        report.hook_ok = run_hooks(profile, credentials, environ)
    return report
