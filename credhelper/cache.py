"""The shared on-disk cache: one file per profile, 0600 in a 0700 directory, guarded by a lock.

Stdlib only: `credential-process` reads it on every SDK refresh, in every process that uses it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from .credentials import Credentials
from .fileio import atomic_write, ensure_private_dir, file_lock

CACHE_FORMAT = "credhelper-cache/1"
STATE_FORMAT = "credhelper-state/1"


def cache_dir_path(environ: Mapping[str, str]) -> Path:
    if environ.get("CREDHELPER_CACHE_DIR"):
        return Path(environ["CREDHELPER_CACHE_DIR"]).expanduser()
    base = environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "credhelper"


def _load_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


class Cache:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def _path(self, profile: str, kind: str) -> Path:
        return self.directory / f"{profile}.{kind}"

    def _ensure(self) -> None:
        ensure_private_dir(self.directory)

    def lock(self, profile: str, timeout: float = 120.0) -> AbstractContextManager[None]:
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

    def profiles_with_files(self) -> Iterator[str]:
        if self.directory.is_dir():
            for entry in sorted(self.directory.glob("*.json")):
                if entry.name.count(".") == 1:
                    yield entry.stem
