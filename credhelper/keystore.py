"""The OS keyring, where `source_keyring = "NAME"` keeps a long-term key pair (DESIGN section 13):
service `credhelper`, user NAME, the pair as JSON with the two `~/.aws/credentials` key names.

Through the `keyring` library (Secret Service on Linux, Keychain on macOS, Credential Locker on
Windows), imported only when a keyring is used. Nothing here ever asks a person to unlock anything:
the library's Secret Service backend unlocks a locked collection by itself, which pops up a prompt
(or, headless, waits for one), so the collection it would use is checked with `secretstorage`
first and a locked one is refused. Every failure is one line naming the backend and the fix.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .credentials import mask_key_id
from .errors import AwsRefusedError, ConfigError
from .windows import KEYRING_RETRY_SECONDS

if TYPE_CHECKING:
    from typing import Any

SERVICE = "credhelper"
ENTRY_KEYS = ("aws_access_key_id", "aws_secret_access_key")
ENTRY_MAX_CHARS = 4096
UNLOCK_FIX = (
    "unlock it (log in to the desktop session, or open Seahorse), or see `keyring --list-backends`"
)


class KeyringUnavailable(AwsRefusedError):
    """The keyring is locked, absent or refused the call (exit 77: try again once it is fixed)."""

    retry_within = KEYRING_RETRY_SECONDS


class KeyringLocked(KeyringUnavailable):
    """The keyring answers but is locked; nothing was read, and no unlock prompt was shown."""


@dataclass(frozen=True)
class LongTermPair:
    access_key_id: str
    secret_access_key: str

    def __repr__(self) -> str:
        return f"LongTermPair({mask_key_id(self.access_key_id)})"

    def entry(self) -> str:
        return json.dumps(dict(zip(ENTRY_KEYS, (self.access_key_id, self.secret_access_key), strict=True)))


@dataclass(frozen=True)
class KeyringCondition:
    """What a look at the keyring found, without reading any entry: `unlocked`, `locked` or `absent`."""

    state: str
    backend: str
    detail: str = ""


def entry_label(name: str) -> str:
    return f"keyring entry {name!r} (service {SERVICE})"


def _backend() -> Any:
    try:
        import keyring
    except ImportError as error:
        raise KeyringUnavailable(
            f"the `keyring` library cannot be loaded ({error}): reinstall credhelper with its dependencies"
        ) from error
    return keyring.get_keyring()


def backend_name(backend: Any) -> str:
    name = getattr(backend, "name", None) or type(backend).__name__
    return str(name)


def _secret_service_backends(backend: Any) -> list[Any]:
    from keyring.backends import SecretService

    inner = getattr(backend, "backends", None)  # the chainer backend, when several are viable
    candidates = list(inner) if inner is not None else [backend]
    return [b for b in candidates if isinstance(b, SecretService.Keyring)]


def _secret_service_locked(backend: Any) -> bool:
    """Whether the collection the backend would use is locked, asked without unlocking it."""
    import secretstorage

    connection = secretstorage.dbus_init()
    try:
        preferred = getattr(backend, "preferred_collection", None)
        if preferred:
            collection = secretstorage.Collection(connection, preferred)
        else:
            collection = secretstorage.get_default_collection(connection)
        return bool(collection.is_locked())
    finally:
        connection.close()


def _refused(backend: Any, what: str, error: BaseException) -> KeyringUnavailable:
    reason = str(error).strip().rstrip(".") or type(error).__name__
    return KeyringUnavailable(f"keyring ({backend_name(backend)}) refused to {what}: {reason}; {UNLOCK_FIX}")


def _usable_backend(what: str) -> Any:
    """The keyring backend, checked to be there and unlocked; never prompts."""
    from keyring.backends import fail

    backend = _backend()
    if isinstance(backend, fail.Keyring):
        raise KeyringUnavailable(
            "no OS keyring is available (no Secret Service on the session bus, no other backend): "
            "start one (gnome-keyring or KWallet in a desktop session), or see `keyring --list-backends`"
        )
    for service in _secret_service_backends(backend):
        try:
            locked = _secret_service_locked(service)
        except Exception as error:  # no bus, no collection, a D-Bus error: refused, never prompted
            raise _refused(service, what, error) from error
        if locked:
            raise KeyringLocked(
                f"keyring ({backend_name(service)}) is locked, so credhelper cannot {what}; {UNLOCK_FIX}"
            )
    return backend


def read_pair(name: str) -> LongTermPair:
    """The pair stored under `name`; held by the caller no longer than one STS call."""
    pair = held_pair(name)
    if pair is None:
        raise KeyringUnavailable(
            f"{entry_label(name)} holds no key pair: store one with "
            f"`credhelper adopt-keys --to-keyring {name} --env-file FILE` (or --from-profile PROFILE)"
        )
    return pair


def held_pair(name: str) -> LongTermPair | None:
    """The pair stored under `name`, or None when there is no such entry (adopt-keys and init ask
    before they store one: a different pair there is never replaced)."""
    backend = _usable_backend(f"read {entry_label(name)}")
    try:
        text = backend.get_password(SERVICE, name)
    except Exception as error:
        raise _refused(backend, f"read {entry_label(name)}", error) from error
    return None if text is None else parse_entry(name, text)


def parse_entry(name: str, text: str) -> LongTermPair:
    try:
        data = json.loads(text) if len(text) <= ENTRY_MAX_CHARS else None
    except ValueError:
        data = None
    values = [data.get(key) for key in ENTRY_KEYS] if isinstance(data, dict) else []
    if len(values) != 2 or not all(isinstance(v, str) and v for v in values):
        raise ConfigError(
            f"{entry_label(name)} is not a JSON object with aws_access_key_id and "
            f"aws_secret_access_key: store the pair again with `credhelper adopt-keys --to-keyring {name}`"
        )
    return LongTermPair(str(values[0]), str(values[1]))


def store_pair(name: str, pair: LongTermPair) -> None:
    """Stored, then read back: raises unless the keyring now returns exactly this pair."""
    backend = _usable_backend(f"store {entry_label(name)}")
    try:
        backend.set_password(SERVICE, name, pair.entry())
    except Exception as error:
        raise _refused(backend, f"store {entry_label(name)}", error) from error
    if read_pair(name) != pair:
        raise KeyringUnavailable(f"{entry_label(name)} did not read back as stored; {UNLOCK_FIX}")


def delete_pair(name: str) -> None:
    backend = _usable_backend(f"delete {entry_label(name)}")
    try:
        backend.delete_password(SERVICE, name)
    except Exception as error:
        raise _refused(backend, f"delete {entry_label(name)}", error) from error


def keyring_condition() -> KeyringCondition:
    """Whether a keyring answers and is unlocked, read from no entry (init's default, doctor,
    status)."""
    try:
        backend = _usable_backend("use it")
    except KeyringLocked as locked:
        return KeyringCondition("locked", "", str(locked))
    except KeyringUnavailable as absent:
        return KeyringCondition("absent", "", str(absent))
    except Exception as error:  # a backend failing in a way of its own
        return KeyringCondition("absent", "", f"{type(error).__name__}: {error}")
    return KeyringCondition("unlocked", backend_name(backend))


def unencrypted_keyrings(home: str | os.PathLike[str]) -> list[Path]:
    """GNOME Keyring files stored without a password, whose contents anyone who can read the file
    reads: an encrypted one starts with the binary `GnomeKeyring` header, a plain one is text."""
    found = []
    directory = Path(home) / ".local" / "share" / "keyrings"
    try:
        entries = sorted(directory.glob("*.keyring"))
    except OSError:
        return []
    for path in entries:
        try:
            with open(path, "rb") as file:
                head = file.read(16)
        except OSError:
            continue
        if head.startswith(b"[keyring]"):
            found.append(path)
    return found
