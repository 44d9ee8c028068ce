"""The shared on-disk cache: one file per profile, 0600 in a 0700 directory, guarded by a lock.

Stdlib only: `credential-process` reads it on every SDK refresh, in every process that uses it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

from .credentials import Credentials
from .fileio import atomic_write, ensure_private_dir, file_lock

if TYPE_CHECKING:
    from typing import Any

CACHE_FORMAT = "credhelper-cache/1"
STATE_FORMAT = "credhelper-state/1"


def cache_dir_path(environ: Mapping[str, str]) -> str:
    if environ.get("CREDHELPER_CACHE_DIR"):
        return os.path.expanduser(environ["CREDHELPER_CACHE_DIR"])
    base = environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "credhelper")


def _load_json(path: str) -> dict[str, Any] | None:
    try:
        with open(path, "rb") as handle:
            data = json.loads(handle.read())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


class Cache:
    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = os.fspath(directory)

    def path(self, name: str) -> str:
        return os.path.join(self.directory, name)

    def _path(self, profile: str, kind: str) -> str:
        return self.path(f"{profile}.{kind}")

    def _ensure(self) -> None:
        ensure_private_dir(self.directory)

    def lock(self, profile: str, timeout: float = 120.0) -> file_lock:
        self._ensure()
        return file_lock(self._path(profile, "lock"), timeout)

    def read_credentials(self, profile: str, fingerprint: str, kind: str = "json") -> Credentials | None:
        """The cached credentials, or None for a missing, corrupt, foreign or stale-settings file."""
        data = _load_json(self._path(profile, kind))
        if not data or data.get("format") != CACHE_FORMAT or data.get("fingerprint") != fingerprint:
            return None
        record = data.get("credentials")
        if not isinstance(record, dict):
            return None
        try:
            return Credentials.from_record(record)
        except (KeyError, TypeError, ValueError):
            return None

    def write_credentials(
        self, profile: str, fingerprint: str, credentials: Credentials, kind: str = "json"
    ) -> None:
        self._ensure()
        payload = {"format": CACHE_FORMAT, "fingerprint": fingerprint, "credentials": credentials.to_record()}
        atomic_write(self._path(profile, kind), json.dumps(payload).encode())

    def read_state(self, profile: str) -> dict[str, Any]:
        data = _load_json(self._path(profile, "state.json"))
        if not data or data.get("format") != STATE_FORMAT:
            return {}
        return data

    def update_state(self, profile: str, **changes: Any) -> dict[str, Any]:
        """Merge `changes` into the profile's state file. State never holds a secret."""
        self._ensure()
        with file_lock(self._path(profile, "state.lock"), timeout=10.0):
            state = self.read_state(profile)
            state.update(changes, format=STATE_FORMAT)
            atomic_write(self._path(profile, "state.json"), json.dumps(state, sort_keys=True).encode())
        return state
