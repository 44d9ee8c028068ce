"""The OS keyring, where `source_keyring = "NAME"` keeps a long-term key pair (DESIGN section 13):
service `credhelper`, user NAME, the pair as JSON with the two `~/.aws/credentials` key names.

Through the `keyring` library (Secret Service on Linux, Keychain on macOS, Credential Locker on
Windows), imported only when a keyring is used. Nothing here ever asks a person anything: the
library's Secret Service backend unlocks a locked collection, and creates a missing default one,
each with a prompt (or, headless, a wait for one), so a Secret Service is read and written through
`secretstorage` directly, in the collection keyring would use, and a locked or missing one is
refused. Every failure is one line naming the backend and the fix.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import threading
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
    if sys.platform != "darwin":
        # keyring's macOS backend looks for the Security framework when it is imported, with
        # ctypes.util.find_library, which off macOS runs ldconfig, gcc and ld (three processes, a
        # tenth of a second) for a backend that is never chosen there.
        sys.modules.setdefault("keyring.backends.macOS.api", None)  # type: ignore[arg-type]
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


def _refused(backend: Any, what: str, error: BaseException) -> KeyringUnavailable:
    reason = str(error).strip().rstrip(".") or type(error).__name__
    return KeyringUnavailable(f"keyring ({backend_name(backend)}) refused to {what}: {reason}; {UNLOCK_FIX}")


_DETECTION = threading.Lock()


def _usable_backend() -> Any:
    """The keyring backend; refused when there is none. The library picks its backend once per
    process: none found is looked for again each time, so a daemon started before the desktop's
    keyring (a user unit starting first) finds it once it is up."""
    from keyring.backends import fail

    with _DETECTION:  # the daemon's refresh and rotation threads: one detection at a time
        backend = _backend()
        if isinstance(backend, fail.Keyring):
            import keyring.backend
            import keyring.core

            with contextlib.suppress(KeyError):  # KeyError: the backends were never looked at
                keyring.backend.get_all_keyring.reset()  # the viable backends, remembered as well
            keyring.core.init_backend()
            backend = _backend()
    if isinstance(backend, fail.Keyring):
        raise KeyringUnavailable(
            "no OS keyring is available (no Secret Service on the session bus, no other backend): "
            "start one (gnome-keyring or KWallet in a desktop session), or see `keyring --list-backends`"
        )
    return backend


class _SecretServiceCollection:
    """The collection keyring's Secret Service backend would use, reached through `secretstorage`
    with nothing ever unlocked or created: keyring's own calls unlock a locked collection and create
    a missing default one, each with a prompt. Used as `with _SecretServiceCollection(b, what) as c:`;
    a missing collection, a locked one or a D-Bus failure is refused (77) in one line."""

    DEFAULT = "/org/freedesktop/secrets/aliases/default"

    def __init__(self, backend: Any, what: str) -> None:
        self.backend, self.what = backend, what
        self.connection: Any = None

    def __enter__(self) -> Any:
        import secretstorage

        try:
            self.connection = secretstorage.dbus_init()
            path = getattr(self.backend, "preferred_collection", None) or self.DEFAULT
            try:
                collection = secretstorage.Collection(self.connection, path)
            except secretstorage.ItemNotFoundException:
                raise KeyringUnavailable(
                    f"keyring ({backend_name(self.backend)}) has no default collection (no login "
                    f"keyring), so credhelper cannot {self.what}: create one by logging in to the "
                    "desktop session, or with Seahorse"
                ) from None
            locked = collection.is_locked()
        except KeyringUnavailable:
            self.close()
            raise
        except Exception as error:  # no bus, a D-Bus error: refused, never prompted
            self.close()
            raise _refused(self.backend, self.what, error) from error
        if locked:
            self.close()
            raise KeyringLocked(
                f"keyring ({backend_name(self.backend)}) is locked, so credhelper cannot {self.what}; "
                f"{UNLOCK_FIX}"
            )
        return collection

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None


def _entry_attributes(name: str) -> dict[str, str]:
    return {"username": name, "service": SERVICE}  # what keyring's Secret Service backend looks up


def _secret_service_read(backend: Any, name: str) -> str | None:
    what = f"read {entry_label(name)}"
    with _SecretServiceCollection(backend, what) as collection:
        try:
            for item in collection.search_items(_entry_attributes(name)):
                if item.is_locked():  # get_secret refuses a locked item; it never prompts
                    raise KeyringLocked(f"{entry_label(name)} is locked; {UNLOCK_FIX}")
                return str(item.get_secret().decode("utf-8"))
        except KeyringUnavailable:
            raise
        except Exception as error:
            raise _refused(backend, what, error) from error
    return None


def _secret_service_store(backend: Any, name: str, text: str) -> None:
    what = f"store {entry_label(name)}"
    with _SecretServiceCollection(backend, what) as collection:
        attributes = {**_entry_attributes(name), "application": str(getattr(backend, "appid", SERVICE))}
        try:
            collection.create_item(f"Password for '{name}' on '{SERVICE}'", attributes, text, replace=True)
        except Exception as error:
            raise _refused(backend, what, error) from error


def _secret_service_delete(backend: Any, name: str) -> None:
    what = f"delete {entry_label(name)}"
    with _SecretServiceCollection(backend, what) as collection:
        try:
            for item in collection.search_items(_entry_attributes(name)):
                item.delete()
                return
        except Exception as error:
            raise _refused(backend, what, error) from error


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
    before they store one: a different pair there is never replaced). Each of the keyring's
    backends is asked in its order, as keyring's own chainer does; a Secret Service only through
    `secretstorage`, so that nothing is ever unlocked."""
    backend = _usable_backend()
    inner = getattr(backend, "backends", None)
    for candidate in list(inner) if inner is not None else [backend]:
        if _secret_service_backends(candidate):
            text = _secret_service_read(candidate, name)
        else:
            try:
                text = candidate.get_password(SERVICE, name)
            except Exception as error:
                raise _refused(candidate, f"read {entry_label(name)}", error) from error
        if text is not None:
            return parse_entry(name, text)
    return None


def parse_entry(name: str, text: str) -> LongTermPair:
    try:
        data = json.loads(text) if len(text) <= ENTRY_MAX_CHARS else None
    except ValueError:
        data = None
    values = [data.get(key) for key in ENTRY_KEYS] if isinstance(data, dict) else []
    if len(values) != 2 or not all(isinstance(v, str) and v for v in values):
        raise ConfigError(
            f"{entry_label(name)} is not a JSON object holding aws_access_key_id and "
            f"aws_secret_access_key; store the pair again with `credhelper adopt-keys --to-keyring {name}`"
        )
    return LongTermPair(str(values[0]), str(values[1]))


def _writing_backend() -> Any:
    """The backend keyring would write to: the first of the chainer's, else the only one."""
    backend = _usable_backend()
    inner = getattr(backend, "backends", None)
    return next(iter(inner)) if inner else backend


def store_pair(name: str, pair: LongTermPair) -> None:
    """Stored, then read back: raises unless the keyring now returns exactly this pair."""
    backend = _writing_backend()
    if _secret_service_backends(backend):
        _secret_service_store(backend, name, pair.entry())
    else:
        try:
            backend.set_password(SERVICE, name, pair.entry())
        except Exception as error:
            raise _refused(backend, f"store {entry_label(name)}", error) from error
    if read_pair(name) != pair:
        raise KeyringUnavailable(f"{entry_label(name)} did not read back as stored; {UNLOCK_FIX}")


def delete_pair(name: str) -> None:
    backend = _writing_backend()
    if _secret_service_backends(backend):
        _secret_service_delete(backend, name)
        return
    try:
        backend.delete_password(SERVICE, name)
    except Exception as error:
        raise _refused(backend, f"delete {entry_label(name)}", error) from error


def keyring_condition() -> KeyringCondition:
    """Whether a keyring answers and is unlocked, read from no entry (init's default, doctor,
    status)."""
    try:
        backend = _usable_backend()
        for service in _secret_service_backends(backend):
            with _SecretServiceCollection(service, "use it"):
                pass
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
