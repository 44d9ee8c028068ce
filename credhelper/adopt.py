"""`adopt-keys`: move a long-term key pair out of an app's `.env` into a source profile."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .sts import StsGateway

from .config import Config, expand_path
from .envfile import long_term_key_ids, secret_for_key
from .envtarget import EnvTarget
from .errors import ConfigError, CredhelperError, UsageError
from .fileio import read_bytes_or_none
from .profile import PROFILE_NAME, Profile
from .sharedcreds import (
    append_section,
    read_sections,
    shared_credentials_path,
    write_shared_file,
)


@dataclass(frozen=True)
class Adoption:
    key_id: str
    credentials_file: Path
    caller_arn: str
    already_there: bool


def adopt_keys(
    env_file: Path,
    source_profile: str,
    environ: Mapping[str, str],
    verify: Callable[[str], str],
) -> Adoption:
    """Copy the pair into [source_profile] of the shared credentials file, then prove it works.

    `verify(profile)` returns the caller ARN for the profile, or raises. If it raises, the
    credentials file is put back as it was; the `.env` is never changed here.
    """
    if not PROFILE_NAME.match(source_profile):
        raise UsageError(f"--profile {source_profile!r}: use letters, digits, '.', '_' or '-'")
    data = read_bytes_or_none(EnvTarget(env_file).real_path)
    if data is None:
        raise UsageError(f"{env_file}: no such file; pass the .env that holds the long-term key")
    text = data.decode("utf-8", "replace")
    key_ids = long_term_key_ids(text)
    secret = secret_for_key(text)
    if not key_ids:
        raise UsageError(f"{env_file}: no long-term key (AKIA…) in AWS_ACCESS_KEY_ID; nothing to adopt")
    if len(set(key_ids)) > 1:
        raise UsageError(f"{env_file}: holds more than one long-term key; keep one pair and retry")
    if not secret:
        raise UsageError(f"{env_file}: AWS_SECRET_ACCESS_KEY is empty; the pair is incomplete")
    key_id = key_ids[0]
    path = shared_credentials_path(environ)
    before = read_bytes_or_none(path)
    before_text = before.decode("utf-8") if before is not None else ""
    existing = read_sections(before_text).get(source_profile)
    if existing is not None:
        if existing.get("aws_access_key_id") != key_id or existing.get("aws_secret_access_key") != secret:
            raise ConfigError(
                f"{path}: [{source_profile}] already holds another key; credhelper never "
                "replaces a long-term key: pick another --profile name"
            )
        return Adoption(key_id, path, verify(source_profile), already_there=True)
    write_shared_file(
        path,
        append_section(
            before_text,
            source_profile,
            {"aws_access_key_id": key_id, "aws_secret_access_key": secret},
        ),
    )
    try:
        caller = verify(source_profile)
    except CredhelperError:
        if before is None:
            path.unlink(missing_ok=True)
        else:
            write_shared_file(path, before_text)
        raise
    return Adoption(key_id, path, caller, already_there=False)


def source_verifier(gateway: StsGateway, config: Config | None) -> Callable[[str], str]:
    """GetCallerIdentity as the source profile, at the STS endpoint of a credhelper profile that
    uses it (else of any profile, else the default)."""

    def verify(source_profile: str) -> str:
        profiles = list(config.profiles.values()) if config else []
        users = [p for p in profiles if p.source_profile == source_profile] or profiles
        template = users[0] if users else None
        probe = Profile(
            name=source_profile,
            role_arn="arn:aws:iam::000000000000:role/none",  # not called: only the caller is asked for
            role_session_name="credhelper",
            source_profile=source_profile,
            region=template.region if template else None,
            sts_endpoint_url=template.sts_endpoint_url if template else None,
        )
        return gateway.caller_arn(probe)

    return verify


def profiles_targeting(config: Config | None, source_profile: str, env_file: Path) -> list[Profile]:
    """The profiles that use this source and write this `.env`: they may now take its place."""
    real = EnvTarget(env_file).real_path
    return [
        profile
        for profile in (config.profiles.values() if config else [])
        if profile.source_profile == source_profile
        and any(EnvTarget(expand_path(raw)).real_path == real for raw in profile.env_files)
    ]
