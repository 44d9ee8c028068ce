"""A real Secret Service for the keyring tests: a private D-Bus session bus and gnome-keyring-daemon
started for one HOME, as a desktop login starts them, its login keyring unlocked with a password
(so its file under HOME is encrypted). The tests lock it through the Secret Service API and unlock
it through gnome-keyring's own password call, with no prompt anywhere."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

PASSWORD = "credhelper-test-login-password"
LOGIN = "/org/freedesktop/secrets/collection/login"
SERVICE_NAME = "org.freedesktop.secrets"
INTERNAL = "org.gnome.keyring.InternalUnsupportedGuiltRiddenInterface"


def available() -> bool:
    return all(shutil.which(tool) for tool in ("dbus-daemon", "gnome-keyring-daemon"))


class SecretService:
    def __init__(self, home: Path, runtime: Path) -> None:
        runtime.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.home = home
        path = os.environ.get("PATH", "/usr/bin:/bin")
        base = {"HOME": str(home), "XDG_RUNTIME_DIR": str(runtime), "PATH": path}
        self.bus = subprocess.Popen(
            ["dbus-daemon", "--session", "--nofork", "--nopidfile", "--print-address=1"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=base,
            start_new_session=True,
        )
        assert self.bus.stdout is not None
        self.address = self.bus.stdout.readline().decode().strip()
        assert self.address, "dbus-daemon gave no address"
        self.env = {**base, "DBUS_SESSION_BUS_ADDRESS": self.address}
        self.daemon: subprocess.Popen[bytes] | None = None
        try:
            self._start_keyring_daemon()
        except BaseException:
            self.stop()  # the fixture never yields: nothing else would end the bus and the daemon
            raise

    def _start_keyring_daemon(self) -> None:
        self.daemon = subprocess.Popen(
            ["gnome-keyring-daemon", "--foreground", "--unlock", "--components=secrets"],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=self.env,
            start_new_session=True,
        )
        assert self.daemon.stdin is not None
        self.daemon.stdin.write(PASSWORD.encode())
        self.daemon.stdin.close()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with contextlib.suppress(Exception), self.connection() as connection:
                import secretstorage

                # Touching the collection before the daemon owns the name would have the bus
                # start another gnome-keyring-daemon (D-Bus activation), whose login keyring is
                # locked for good: a machine busy enough made that race a failure in one run of few.
                if (
                    self._name_owned(connection)
                    and not secretstorage.Collection(connection, LOGIN).is_locked()
                ):
                    return
            time.sleep(0.05)
        raise RuntimeError("gnome-keyring-daemon did not offer an unlocked login keyring within 20 s")

    @staticmethod
    def _name_owned(connection: Any) -> bool:
        from jeepney.bus_messages import message_bus

        reply = connection.send_and_get_reply(message_bus.NameHasOwner(SERVICE_NAME), timeout=5)
        return bool(reply.body[0])

    @contextlib.contextmanager
    def connection(self) -> Iterator[Any]:
        from jeepney.io.blocking import open_dbus_connection

        connection = open_dbus_connection(self.address)
        try:
            yield connection
        finally:
            connection.close()

    def lock(self) -> None:
        import secretstorage

        with self.connection() as connection:
            collection = secretstorage.Collection(connection, LOGIN)
            collection.lock()
            assert collection.is_locked()

    def unlock(self) -> None:
        """The login keyring unlocked with its password, as a login does: no prompt."""
        import secretstorage
        from jeepney import DBusAddress, new_method_call
        from secretstorage.util import format_secret, open_session

        with self.connection() as connection:
            session = open_session(connection)
            address = DBusAddress("/org/freedesktop/secrets", bus_name=SERVICE_NAME, interface=INTERNAL)
            secret = format_secret(session, PASSWORD.encode(), "text/plain")
            message = new_method_call(address, "UnlockWithMasterPassword", "o(oayays)", (LOGIN, secret))
            connection.send_and_get_reply(message, timeout=10)
            assert not secretstorage.Collection(connection, LOGIN).is_locked()

    def is_locked(self) -> bool:
        import secretstorage

        with self.connection() as connection:
            return bool(secretstorage.Collection(connection, LOGIN).is_locked())

    def stored(self, name: str) -> dict[str, str] | None:
        """credhelper's entry `name`, read straight from the Secret Service (keyring's attributes)."""
        import secretstorage

        with self.connection() as connection:
            collection = secretstorage.Collection(connection, LOGIN)
            items = list(collection.search_items({"service": "credhelper", "username": name}))
            if not items:
                return None
            value: dict[str, str] = json.loads(items[0].get_secret().decode())
            return value

    def store(self, name: str, text: str) -> None:
        import secretstorage

        with self.connection() as connection:
            collection = secretstorage.Collection(connection, LOGIN)
            attributes = {"service": "credhelper", "username": name, "application": "Python keyring library"}
            label = f"Password for '{name}' on 'credhelper'"
            collection.create_item(label, attributes, text.encode(), replace=True)

    def stop(self) -> None:
        for process in (self.daemon, self.bus):
            if process is not None and process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(5)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()
        if self.bus.stdout is not None:
            self.bus.stdout.close()
