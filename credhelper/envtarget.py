"""Writing credentials into targets, an app's `.env` (DESIGN §6) or one section of a shared
credentials file: the I/O around the pure merges."""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .bedrockkey import TOKEN_VARIABLE, is_long_term_bedrock_key
from .credentials import is_long_term_key_id, mask_key_id
from .envfile import long_term_key_ids, managed_values, merge_env, secret_for_key
from .errors import ConfigError, CredhelperError
from .fileio import PRIVATE_FILE, file_lock, read_bytes_or_none, remove_quietly, replace_file, write_temp
from .sharedcreds import read_sections, set_section

log = logging.getLogger("credhelper.envfile")
MAX_MERGE_ROUNDS = 20
_warned_modes: set[Path] = set()


class LongTermKeyError(CredhelperError):
    exit_code = 78


@dataclass(frozen=True)
class EnvTarget:
    path: Path  # as configured, expanded

    @property
    def real_path(self) -> Path:
        """A symlinked `.env` is written through to the file it points at."""
        return Path(os.path.realpath(self.path))


def _decode(path: Path, data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text; credhelper leaves it untouched") from None


def guard_long_term_keys(
    path: Path, text: str, is_adopted: Callable[[str, str | None], bool], profile_hint: str
) -> None:
    for key_id in long_term_key_ids(text):
        if not is_adopted(key_id, secret_for_key(text)):
            raise LongTermKeyError(
                f"{path} holds a long-term access key ({mask_key_id(key_id)}) that credhelper will "
                f"not overwrite: move it to a source profile first with `credhelper adopt-keys "
                f"--env-file {path} --profile {profile_hint}`, then refresh again"
            )


def guard_bedrock_key(path: Path, text: str) -> None:
    for value in managed_values(text, (TOKEN_VARIABLE,)).get(TOKEN_VARIABLE, []):
        if is_long_term_bedrock_key(value):
            raise LongTermKeyError(
                f"{path} holds a long-term Amazon Bedrock API key in {TOKEN_VARIABLE} that credhelper "
                "will not overwrite: keep it elsewhere if you still need it (or delete it in the IAM "
                "console), remove that line, then refresh again"
            )


def rewrite_file(
    configured: Path,
    transform: Callable[[str], str],
    lock_dir: str | Path,
    setting: str,
    before_rename: Callable[[], None] | None = None,
) -> bool:
    """Apply `transform` (text in, text out; it may refuse by raising) to a file, atomically, under
    a per-file lock, merging again if a person saved the file meanwhile. A symlink is written
    through. Returns False when the file already had the content."""
    path = Path(os.path.realpath(configured))
    if not path.parent.is_dir():
        raise ConfigError(f"{configured}: directory {path.parent} does not exist; create it or fix {setting}")
    lock_name = "target-" + hashlib.sha256(str(path).encode()).hexdigest()[:16] + ".lock"
    with file_lock(os.path.join(lock_dir, lock_name), timeout=30.0):
        before = read_bytes_or_none(path)
        text = _decode(path, before) if before is not None else ""
        merged = transform(text)
        if before is not None and merged == text:
            return False
        mode = path.stat().st_mode & 0o7777 if before is not None else PRIVATE_FILE
        if mode & 0o077 and path not in _warned_modes:
            _warned_modes.add(path)
            log.warning("%s is readable by other users (mode %o); chmod 600 it", configured, mode)
        for _ in range(MAX_MERGE_ROUNDS):
            temp = write_temp(path.parent, path.name, merged.encode("utf-8"), mode)
            if before_rename is not None:
                before_rename()
            # A person may have saved the file while the merge ran: merge their version instead.
            now = read_bytes_or_none(path)
            if now == before:
                replace_file(temp, path)
                return True
            remove_quietly(temp)
            before = now
            merged = transform(_decode(path, now) if now is not None else "")
        raise CredhelperError(f"{configured} kept changing while credhelper wrote it; try again")


def write_env_target(
    target: EnvTarget,
    values: dict[str, str],
    lock_dir: str | Path,
    is_adopted: Callable[[str, str | None], bool],
    profile_hint: str = "bedrock-developer",
    before_rename: Callable[[], None] | None = None,
) -> bool:
    """Merge `values` into the `.env`. Returns False when the file already held them."""

    def transform(text: str) -> str:
        guard_long_term_keys(target.real_path, text, is_adopted, profile_hint)
        if TOKEN_VARIABLE in values:
            guard_bedrock_key(target.real_path, text)
        return merge_env(text, values)

    return rewrite_file(target.path, transform, lock_dir, "env_files", before_rename)


def guard_section(path: Path, text: str, section: str) -> None:
    held = read_sections(text).get(section, {}).get("aws_access_key_id", "")
    if is_long_term_key_id(held):
        raise LongTermKeyError(
            f"{path}: [{section}] holds a long-term access key ({mask_key_id(held)}) that credhelper "
            "will not overwrite: name another section in credentials_files"
        )


def write_credentials_section(path: Path, section: str, values: dict[str, str], lock_dir: str | Path) -> bool:
    """Set one section of a shared credentials file; every other byte stays."""

    def transform(text: str) -> str:
        guard_section(path, text, section)
        return set_section(text, section, values)

    return rewrite_file(path, transform, lock_dir, "credentials_files")
