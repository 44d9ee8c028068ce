"""Writing credentials into an app's `.env` (DESIGN §6): the I/O around the pure merge."""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .credentials import mask_key_id
from .envfile import long_term_key_ids, merge_env, secret_for_key
from .errors import ConfigError, CredhelperError
from .fileio import PRIVATE_FILE, file_lock, read_bytes_or_none, remove_quietly, replace_file, write_temp

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

    def lock_name(self) -> str:
        return "target-" + hashlib.sha256(str(self.real_path).encode()).hexdigest()[:16] + ".lock"


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


def write_env_target(
    target: EnvTarget,
    values: dict[str, str],
    lock_dir: str | Path,
    is_adopted: Callable[[str, str | None], bool],
    profile_hint: str = "bedrock-developer",
    before_rename: Callable[[], None] | None = None,
) -> bool:
    """Merge `values` into the target. Returns False when the file already held them."""
    path = target.real_path
    if not path.parent.is_dir():
        raise ConfigError(
            f"env file {target.path}: directory {path.parent} does not exist; create it or fix env_files"
        )
    with file_lock(os.path.join(lock_dir, target.lock_name()), timeout=30.0):
        before = read_bytes_or_none(path)
        text = _decode(path, before) if before is not None else ""
        guard_long_term_keys(path, text, is_adopted, profile_hint)
        merged = merge_env(text, values)
        if before is not None and merged == text:
            return False
        mode = path.stat().st_mode & 0o7777 if before is not None else PRIVATE_FILE
        if mode & 0o077 and path not in _warned_modes:
            _warned_modes.add(path)
            log.warning("%s is readable by other users (mode %o); chmod 600 it", target.path, mode)
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
            text = _decode(path, now) if now is not None else ""
            guard_long_term_keys(path, text, is_adopted, profile_hint)
            merged = merge_env(text, values)
        raise CredhelperError(f"{target.path} kept changing while credhelper wrote it; try again")
