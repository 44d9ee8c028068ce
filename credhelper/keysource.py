"""Where a profile's long-term key pair lives, for `rotate`: a `source_keyring` entry, or the
`source_profile` section of the shared credentials file. Read it, and store a new pair in its
place (the keyring entry stored and read back; the credentials-file section byte-preserving,
0600, atomic, through the one writer of that file). Anything else is nothing to rotate (78).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from .credentials import is_long_term_key_id
from .errors import ConfigError, CredhelperError
from .formats.ini import parse_sections, with_rotated_pair
from .keystore import (
    KeyringLocked,
    KeyringUnavailable,
    LongTermPair,
    entry_label,
    keyring_condition,
    read_pair,
    store_pair,
)
from .paths import shared_credentials_path
from .profile import Profile
from .targets.credsection import CREDENTIALS_FILE_SETTING, holds_key_pair, write_credentials_file
from .targets.files import read_target_file


@dataclass(frozen=True)
class KeySource:
    kind: str  # "keyring" or "profile"
    name: str  # the keyring entry, or the credentials-file section
    credentials_file: Path | None = None

    @property
    def label(self) -> str:
        if self.kind == "keyring":
            return entry_label(self.name)
        return f"[{self.name}] of {self.credentials_file}"

    @property
    def key(self) -> str:
        """The source's name among credhelper's rotation files."""
        return f"{self.kind}-{self.name}"


def nothing_to_rotate(profile: Profile, why: str) -> ConfigError:
    return ConfigError(
        f"profile {profile.name}: nothing to rotate: {why}; rotate renews a long-term key stored in "
        "the keyring (source_keyring) or in ~/.aws/credentials (source_profile)"
    )


def key_source(profile: Profile, environ: Mapping[str, str]) -> KeySource:
    """Where the profile's long-term pair lives; 78 when it is not a stored long-term key."""
    if profile.source_keyring:
        return KeySource("keyring", profile.source_keyring)
    if not profile.source_profile:
        raise nothing_to_rotate(
            profile,
            "it has no source_profile or source_keyring (credentials "
            "come from the environment or the SDK's default chain)",
        )
    path = shared_credentials_path(environ)
    source = KeySource("profile", profile.source_profile, path)
    section = _section(source)
    key_id = section.get("aws_access_key_id", "")
    if not key_id or not section.get("aws_secret_access_key"):
        raise nothing_to_rotate(
            profile,
            f"source profile {profile.source_profile!r} has no key pair in {path} "
            "(SSO, credential_process or a role)",
        )
    if "aws_session_token" in section or not is_long_term_key_id(key_id):
        raise nothing_to_rotate(profile, f"{source.label} holds temporary credentials, not a long-term key")
    return source


def _section(source: KeySource) -> dict[str, str]:
    assert source.credentials_file is not None
    path = source.credentials_file
    found = read_target_file(Path(os.path.realpath(path)), str(path), CREDENTIALS_FILE_SETTING)
    if found is None:
        return {}
    return parse_sections(found.text, str(path)).get(source.name, {})


def read_source_pair(source: KeySource) -> LongTermPair:
    if source.kind == "keyring":
        return read_pair(source.name)
    section = _section(source)
    key_id, secret = section.get("aws_access_key_id", ""), section.get("aws_secret_access_key", "")
    if not key_id or not secret:
        raise ConfigError(f"{source.label}: no longer holds a key pair: someone changed it; put it back")
    return LongTermPair(key_id, secret)


class StoreUncertain(CredhelperError):
    """The pair was handed to the store and could not be read back: it may be there, or not.
    Whoever acts on this asks the store what it holds now (rotate keeps its journal if nobody can
    tell), instead of taking the pair for not stored."""

    def __init__(self, cause: CredhelperError) -> None:
        super().__init__(str(cause))
        self.exit_code = cause.exit_code


def store_source_pair(source: KeySource, old_key_id: str, pair: LongTermPair, lock_dir: str) -> None:
    """The new pair where the old one lived; raises unless it is there now, as given. Any other
    error than StoreUncertain means nothing was written."""
    if source.kind == "keyring":
        condition = keyring_condition()  # a keyring refused before any write: nothing stored
        if condition.state == "locked":
            raise KeyringLocked(condition.detail)
        if condition.state != "unlocked":
            raise KeyringUnavailable(condition.detail)
        try:
            store_pair(source.name, pair)  # stored, then read back
        except CredhelperError as error:
            raise StoreUncertain(error) from error
        return
    path = source.credentials_file
    assert path is not None

    def rotated(text: str) -> str:
        return with_rotated_pair(
            text, path, source.name, old_key_id, pair.access_key_id, pair.secret_access_key
        )

    write_credentials_file(path, rotated, lock_dir)  # atomic: a failure leaves the file as it was
    try:
        stored = holds_key_pair(path, pair.access_key_id, pair.secret_access_key)
    except CredhelperError as error:
        raise StoreUncertain(error) from error
    if not stored:
        raise StoreUncertain(ConfigError(f"{source.label}: did not read back as written; check the file"))
