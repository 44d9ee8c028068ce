"""Handing fresh credentials to a profile's targets, then running its hooks."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from .bedrockkey import bedrock_env
from .config import expand_path
from .credentials import Credentials
from .envtarget import (
    EnvTarget,
    guard_bedrock_key,
    guard_long_term_keys,
    guard_section,
    write_credentials_section,
    write_env_target,
)
from .errors import CredhelperError
from .fileio import read_bytes_or_none
from .hooks import run_hooks
from .profile import Profile
from .sharedcreds import holds_key_pair, shared_credentials_path

log = logging.getLogger("credhelper.delivery")


@dataclass
class DeliveryReport:
    written: list[Path] = field(default_factory=list)
    unchanged: list[Path] = field(default_factory=list)
    errors: list[CredhelperError] = field(default_factory=list)
    hook_ok: bool = True


def env_targets(profile: Profile) -> list[EnvTarget]:
    return [EnvTarget(expand_path(raw)) for raw in profile.env_files]


def credentials_targets(profile: Profile) -> list[tuple[Path, str]]:
    return [(expand_path(raw), section) for raw, section in profile.credentials_files]


def target_paths(profile: Profile) -> list[Path]:
    """Every file the profile writes, as configured (expanded)."""
    return [t.path for t in env_targets(profile)] + [path for path, _ in credentials_targets(profile)]


def adopted_checker(environ: Mapping[str, str]) -> Callable[[str, str | None], bool]:
    shared_file = shared_credentials_path(environ)

    def adopted(key_id: str, secret: str | None) -> bool:
        return holds_key_pair(shared_file, key_id, secret)

    return adopted


def check_targets(profile: Profile, environ: Mapping[str, str]) -> None:
    """Refuse before any STS call when a target holds a long-term key not yet in a source profile."""
    adopted = adopted_checker(environ)
    for target in env_targets(profile):
        data = read_bytes_or_none(target.real_path)
        if data is not None:
            text = data.decode("utf-8", "replace")
            guard_long_term_keys(target.path, text, adopted, profile.source_profile or "bedrock-developer")
            if profile.bedrock_api_key:
                guard_bedrock_key(target.path, text)
    for path, section in credentials_targets(profile):
        data = read_bytes_or_none(path)
        if data is not None:
            guard_section(path, data.decode("utf-8", "replace"), section)


def deliver(
    profile: Profile,
    credentials: Credentials,
    lock_dir: str | Path,
    environ: Mapping[str, str],
    run_hook: bool = True,
) -> DeliveryReport:
    """Write every target; one failing target does not stop the others. Hooks run after all."""
    report = DeliveryReport()
    adopted = adopted_checker(environ)
    values = credentials.env_values(profile.region) | bedrock_env(profile, credentials, time.time())
    section_values = credentials.credentials_file_values()
    hint = profile.source_profile or "bedrock-developer"
    writes: list[tuple[Path, Callable[[], bool]]] = [
        (target.path, partial(write_env_target, target, values, lock_dir, adopted, hint))
        for target in env_targets(profile)
    ]
    writes += [
        (path, partial(write_credentials_section, path, section, section_values, lock_dir))
        for path, section in credentials_targets(profile)
    ]
    for path, write in writes:
        try:
            changed = write()
        except CredhelperError as error:
            report.errors.append(error)
            continue
        except OSError as error:
            report.errors.append(CredhelperError(f"{path}: cannot write: {error.strerror}"))
            continue
        (report.written if changed else report.unchanged).append(path)
    if run_hook and (report.written or report.unchanged or not writes):
        report.hook_ok = run_hooks(profile, credentials, environ)
    return report
