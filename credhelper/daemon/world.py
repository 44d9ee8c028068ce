"""The world a running daemon's coordinator acts on: refresh threads, STS through the refresher,
target writes behind the write gate, state files, the shared credentials file, the watches."""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections.abc import Callable, Iterable, Mapping

from ..config import Config, load_config
from ..credentials import Credentials
from ..errors import CredhelperError
from ..fileio import read_regular_file
from ..formats.ini import read_sections
from ..paths import shared_credentials_path
from ..profile import Profile
from ..refresher import Refresher
from ..supply import Supplied, supply
from ..targets.delivery import DeliveryReport, deliver
from .attempt import Attempt
from .threads import name_os_threads
from .watcher import Watcher

log = logging.getLogger("credhelper.daemon")
SOURCE_FILE_MAX_BYTES = 1 << 20


class WriteGate:
    """Target writes in flight, any thread: stopping lets those finish and starts no new one."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._writing = 0
        self._closed = False

    def __enter__(self) -> WriteGate:
        with self._changed:
            if self._closed:
                raise CredhelperError("credhelper is stopping; targets are left as they are")
            self._writing += 1
        return self

    def __exit__(self, *exc: object) -> None:
        with self._changed:
            self._writing -= 1
            self._changed.notify_all()

    def close(self, timeout: float) -> bool:
        """Start no more writes; True once the ones in flight have finished, False after `timeout`."""
        with self._changed:
            self._closed = True
            return self._changed.wait_for(lambda: self._writing == 0, timeout)


class SystemWorld:
    """`coordinator.World` for `credhelper run`."""

    def __init__(
        self,
        config_option: str | None,
        environ: Mapping[str, str],
        refresher: Refresher,
        write_gate: WriteGate,
        watcher: Watcher,
    ) -> None:
        self.config_option = config_option
        self.environ = environ
        self.refresher = refresher
        self.cache = refresher.cache
        self.write_gate = write_gate
        self.watcher = watcher

    @property
    def credentials_file(self) -> str:
        return os.path.abspath(shared_credentials_path(self.environ))

    def load_config(self) -> Config:
        return load_config(self.config_option, self.environ)

    def start(self, name: str, job: Callable[[], None]) -> None:
        threading.Thread(target=_named, args=(job,), name=f"credhelper-refresh-{name}", daemon=True).start()

    def refresh(self, attempt: Attempt) -> Supplied:
        return supply(
            self.refresher, attempt.kept, attempt.wanted, self.environ, attempt.held, self.write_gate
        )

    def restore(self, profile: Profile, credentials: Credentials) -> DeliveryReport:
        with self.write_gate:
            # Never waiting on the scheduler thread: a target being written is restored on the
            # file event of its writer's close.
            return deliver(
                profile, credentials, self.cache.directory, self.environ, run_hook=False, writer_wait=0.0
            )

    def record_state(self, name: str, changes: dict[str, object]) -> None:
        """Best effort: the state file is for `status`; a full disk must not stop the schedule."""
        try:
            self.cache.update_state(name, **changes)
        except (CredhelperError, OSError) as error:
            log.debug("profile %s: state not recorded: %s", name, error)

    def source_digest(self, profiles: Iterable[Profile]) -> str:
        """An unreadable file (a FIFO, a device, too large) is logged and counts as its own state:
        the daemon carries on."""
        path = self.credentials_file
        try:
            found = read_regular_file(path, SOURCE_FILE_MAX_BYTES, follow_symlinks=True)
        except OSError as error:
            log.error("cannot read the shared credentials file %s: %s", path, error.strerror)
            return f"unreadable: {error.strerror}"
        data = found[0] if found is not None else b""
        sources = {p.source_profile or "default" for p in profiles}
        sections = read_sections(data.decode("utf-8", "replace"))
        relevant = sorted(
            (name, sorted(values.items())) for name, values in sections.items() if name in sources
        )
        return hashlib.sha256(repr(relevant).encode()).hexdigest()

    def forget_sources(self) -> None:
        self.refresher.gateway.forget_sources()

    def watch(self, directories: set[str]) -> None:
        self.watcher.watch(directories)


def _named(job: Callable[[], None]) -> None:
    name_os_threads([threading.current_thread()])
    job()
