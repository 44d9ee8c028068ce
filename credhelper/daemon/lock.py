"""One daemon per cache directory: an flock held for the daemon's life, and a pid file."""

from __future__ import annotations

import fcntl
import os

from ..endpoint.discovery import recorded_daemon_pid
from ..errors import CredhelperError, FileSystemError
from ..fileio import atomic_write, open_lock_file, remove_quietly, trusted_private_dir
from ..paths import CACHE_DIR_FIX, daemon_lock_path, daemon_pid_path


class DaemonLock:
    """One daemon per cache directory: an flock held for the daemon's life, and a pid file."""

    def __init__(self, cache_dir: str) -> None:
        self.cache_dir = cache_dir
        self.path = daemon_lock_path(cache_dir)
        self.pid_path = daemon_pid_path(cache_dir)
        self.fd = -1

    def acquire(self) -> None:
        try:
            trusted_private_dir(self.cache_dir, "cache directory", CACHE_DIR_FIX)
            self.fd = open_lock_file(self.path)
        except OSError as error:
            raise FileSystemError.from_os_error(error, "create the daemon's lock file") from None
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self.fd)
            self.fd = -1
            raise CredhelperError(
                f"another `credhelper run` (pid {self._recorded_pid()}) already keeps "
                f"{os.path.dirname(self.path)} fresh; stop it first (systemctl --user stop credhelper)"
            ) from None
        try:
            atomic_write(self.pid_path, f"{os.getpid()}\n".encode())
        except OSError as error:
            self.release()
            raise FileSystemError.from_os_error(error, "write the daemon's pid file") from None

    def _recorded_pid(self) -> str:
        try:
            return recorded_daemon_pid(self.cache_dir) or "?"
        except OSError:
            return "?"

    def release(self) -> None:
        if self.fd >= 0:
            remove_quietly(self.pid_path)
            os.close(self.fd)
            self.fd = -1
