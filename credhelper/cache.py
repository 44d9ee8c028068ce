"""The shared on-disk cache: one file per profile, 0600 in a 0700 directory, guarded by a lock.

Stdlib only: `credential-process` reads it on every SDK refresh, in every process that uses it.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from .credentials import LONGEST_SESSION_SECONDS, Credentials, plausible_epoch
from .errors import LockTimeout
from .fileio import atomic_write, file_kind, file_lock, read_trusted_json, remove_quietly, trusted_private_dir
from .paths import CACHE_DIR_FIX, cache_dir_path, profile_file

__all__ = ["Cache", "cache_dir_path"]

if TYPE_CHECKING:
    from typing import Any

CACHE_FORMAT = "credhelper-cache/1"
STATE_FORMAT = "credhelper-state/1"
CACHE_FILE_MAX_BYTES = 64 * 1024  # an entry is under 4 KiB


def _load_json(path: str) -> dict[str, Any] | None:
    """The file's JSON object, or None. Opened without following a symlink or blocking, read up to
    a small limit: a FIFO, a device, a symlink or a huge file is ignored, and replaced at the next
    write, rather than hanging the command or eating its memory."""
    return read_trusted_json(
        path, "cache file", "remove it (credhelper writes a new one)", CACHE_FILE_MAX_BYTES
    )


def _replace(path: str, data: bytes) -> None:
    """Write a cache file; a directory in its way (the rename cannot replace one) is moved aside."""
    try:
        in_the_way = file_kind(os.lstat(path).st_mode) == "directory"
    except OSError:
        in_the_way = False
    if in_the_way:
        os.rename(path, f"{path}.in-the-way-{os.getpid()}-{time.time_ns()}")
    atomic_write(path, data)


class Cache:
    def __init__(self, directory: str | os.PathLike[str], clock: Callable[[], float] = time.time) -> None:
        self.directory = os.fspath(directory)
        self.clock = clock

    def path(self, profile: str, kind: str) -> str:
        return profile_file(self.directory, profile, kind)

    def ensure(self) -> str:
        """The directory, created 0700 if absent, refused (78) when it cannot be trusted."""
        trusted_private_dir(self.directory, "cache directory", CACHE_DIR_FIX)
        return self.directory

    def _exists(self) -> bool:
        """Whether the directory is there to be read; refused (78) when it cannot be trusted."""
        return trusted_private_dir(self.directory, "cache directory", CACHE_DIR_FIX, create=False)

    def lock(self, profile: str, timeout: float = 120.0) -> file_lock:
        self.ensure()
        return file_lock(self.path(profile, "lock"), timeout)

    def mfa_prompt_lock(self, profile: str, timeout: float) -> file_lock:
        """Held while a person is asked for the profile's MFA code, and only then."""
        self.ensure()
        return file_lock(self.path(profile, "mfa.lock"), timeout)

    def mfa_prompt_held(self, profile: str) -> tuple[bool, int | None]:
        """Whether a process is asking a person for the profile's MFA code now, and its pid when
        known. The lock is taken for a moment to tell: an asker waits longer than that for it."""
        try:
            with self.mfa_prompt_lock(profile, timeout=0):
                return False, None
        except LockTimeout as held:
            return True, held.holder

    def read_credentials(self, profile: str, fingerprint: str, kind: str = "json") -> Credentials | None:
        """The cached credentials, or None for a missing, damaged, foreign or stale-settings file."""
        if not self._exists():
            return None
        data = _load_json(self.path(profile, kind))
        if not data or data.get("format") != CACHE_FORMAT or data.get("fingerprint") != fingerprint:
            return None
        record = data.get("credentials")
        if not isinstance(record, dict):
            return None
        try:
            return Credentials.from_record(record, self.clock())
        except (KeyError, TypeError, ValueError, OverflowError):
            return None

    def write_credentials(
        self, profile: str, fingerprint: str, credentials: Credentials, kind: str = "json"
    ) -> None:
        self.ensure()
        payload = {"format": CACHE_FORMAT, "fingerprint": fingerprint, "credentials": credentials.to_record()}
        _replace(self.path(profile, kind), json.dumps(payload).encode())
        if kind == "json":  # the ready answer of credential-process was the entry just replaced
            remove_quietly(self.path(profile, "answer"))

    def read_state(self, profile: str) -> dict[str, Any]:
        """The profile's state; a field of the wrong type or an impossible time is left out."""
        if not self._exists():
            return {}
        data = _load_json(self.path(profile, "state.json"))
        if not data or data.get("format") != STATE_FORMAT:
            return {}
        latest = self.clock() + LONGEST_SESSION_SECONDS
        return {key: value for key, value in data.items() if _state_value_ok(key, value, latest)}

    def update_state(self, profile: str, **changes: Any) -> dict[str, Any]:
        """Merge `changes` into the profile's state file. State never holds a secret."""
        self.ensure()
        with file_lock(self.path(profile, "state.lock"), timeout=10.0):
            state = self.read_state(profile)
            state.update(changes, format=STATE_FORMAT)
            _replace(self.path(profile, "state.json"), json.dumps(state, sort_keys=True).encode())
        return state


_STATE_TIMES = (
    "last_refresh",
    "last_error_at",
    "next_refresh",
    "next_try",
    "source_key_created",
    "rotation_tried",
)
_STATE_TYPES: dict[str, type] = {"last_error": str, "role_arn": str, "mfa_needed": bool, "source_key_id": str}


def _state_value_ok(key: str, value: object, latest: float) -> bool:
    """Known fields must hold their type (None allowed); fields this version does not know are kept."""
    if value is None:
        return key != "attempts"
    if key in _STATE_TIMES:
        try:
            plausible_epoch(value, latest)
        except (TypeError, ValueError):
            return False
        return True
    if key == "attempts":
        return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 1_000_000
    expected = _STATE_TYPES.get(key)
    return expected is None or isinstance(value, expected)
