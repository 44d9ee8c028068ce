"""`adopt-keys`: move a long-term key pair out of an app's `.env` into a source profile."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from .envfile import long_term_key_ids, secret_for_key
from .envtarget import EnvTarget
from .errors import ConfigError, CredhelperError, UsageError
from .fileio import read_bytes_or_none
from .profile import PROFILE_NAME
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
