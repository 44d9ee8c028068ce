"""The daemon's main thread: the lock, the signals, starting the other threads, the exit.

Signal handlers only append to a deque: a handler runs between any two bytecodes of the main
thread, inside whatever lock it holds then. The main thread sleeps on its `Wakeup`, which every
signal ends whichever thread the kernel handed it to, and acts on what the handlers recorded.
"""

from __future__ import annotations

import collections
import logging
import os
import signal
import threading
from collections.abc import Mapping, Sequence
from types import FrameType
from typing import TYPE_CHECKING

from .. import children
from ..cache import Cache, cache_dir_path
from ..endpoint.containers import open_container_server
from ..endpoint.discovery import publish_endpoint, unpublish_endpoint
from ..endpoint.server import CredentialServer
from ..errors import CredhelperError, FileSystemError
from ..interfaces import Clock
from ..profile import DEFAULT_CONTAINERS_PORT, parse_listen_address
from ..refresher import Refresher
from ..schedule import SystemClock
from ..sdnotify import Notifier
from ..signals import nothing_blocked_here
from ..targets.keeper import TargetClaims
from ..wakeup import Wakeup
from .bridge import EndpointBridge
from .coordinator import Coordinator
from .lock import DaemonLock
from .rotations import RotationWorker
from .threads import name_os_threads
from .watcher import Watcher
from .world import SystemWorld, WriteGate

if TYPE_CHECKING:
    pass

log = logging.getLogger("credhelper.daemon")
SHUTDOWN_GRACE_SECONDS = 1.0  # after hooks in flight were given theirs (children.KILL_GRACE_SECONDS)


class Daemon:
    def __init__(
        self,
        config_option: str | None,
        names: Sequence[str],
        environ: Mapping[str, str],
        clock: Clock | None = None,
        serve: str | None = None,
        serve_containers: bool = False,
    ) -> None:
        self.serve_option = serve
        self.containers_option = serve_containers
        self.environ = environ
        self.clock = clock or SystemClock()
        self.cache = Cache(cache_dir_path(environ))
        self.refresher = Refresher(self.cache, clock=self.clock.wall, interactive=False)
        self.notifier = Notifier(environ)
        self.write_gate = WriteGate()
        self.watcher = Watcher()
        self.claims = TargetClaims()  # one target, one keeper, whatever the cache directory
        world = SystemWorld(config_option, environ, self.refresher, self.write_gate, self.watcher)
        self.coordinator = Coordinator(
            self.clock, world, self.notifier, names, self.claims, reloaded=self._reloaded
        )
        self.bridge = EndpointBridge(self.coordinator, self.refresher, self.clock)
        self.server: CredentialServer | None = None
        self.container_server: CredentialServer | None = None  # on 169.254.170.2 (DESIGN 14)
        self.signals_received: collections.deque[int] = collections.deque()
        self.wakeup = Wakeup()  # the main thread's sleep, ended by any signal

    def run(self) -> int:
        nothing_blocked_here()
        with self.wakeup:
            self._install_signals()
            try:
                return self._run()
            finally:
                # Stopped: another SIGTERM or Ctrl-C has nothing left to stop, and the interpreter's
                # exit puts the default action of a handled signal back, so one arriving then would
                # end a clean stop (0) as a death by that signal.
                for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1):
                    signal.signal(signum, signal.SIG_IGN)

    def _run(self) -> int:
        daemon_lock = DaemonLock(self.cache.directory)
        daemon_lock.acquire()
        try:
            try:
                worker = self._start()
            except OSError as error:  # a full or read-only disk, no inotify watches left, ...
                raise FileSystemError.from_os_error(error, "start the daemon: writing") from None
            log.info(
                "running: %d profile(s), cache %s, pid %d",
                len(self.coordinator.profiles),
                self.cache.directory,
                os.getpid(),
            )
            while True:
                self._take_signals()
                if self.coordinator.stopping.is_set():
                    break
                if not worker.is_alive():
                    log.error("the scheduler thread stopped unexpectedly; exiting so systemd restarts it")
                    return 1
                self.wakeup.wait(None)  # until a signal, or the scheduler thread's end
            # Hooks and mfa_command in flight end with their process groups; writes in flight
            # finish; STS calls in flight are abandoned with their (daemon) threads.
            children.end_all()
            self.write_gate.close(SHUTDOWN_GRACE_SECONDS)
            self.notifier.send("STOPPING=1")
            log.info("stopped")
            return 0
        finally:
            self.watcher.stop()
            if self.server is not None or self.container_server is not None:
                unpublish_endpoint(self.environ, self.cache.directory)
            for server in (self.server, self.container_server):
                if server is not None:
                    server.stop()
            self.claims.release_all()
            daemon_lock.release()

    def _start(self) -> threading.Thread:
        self.coordinator.start()
        self._start_server()
        self.watcher.start(self.coordinator.paths_changed)
        self.coordinator.rewatch()
        worker = threading.Thread(target=self._work, name="credhelper-scheduler", daemon=True)
        worker.start()
        RotationWorker(
            lambda: list(self.coordinator.profiles.values()),
            self.refresher,
            self.environ,
            self.coordinator.stopping,
            self.clock.wall,
        ).start()
        return worker

    def _work(self) -> None:
        try:
            name_os_threads()
            self.coordinator.loop()
        finally:
            self.wakeup.wake()  # the main thread exits when this thread has ended

    def _install_signals(self) -> None:
        def record(signum: int, frame: FrameType | None) -> None:
            # Only a lock-free append: a handler runs between any two bytecodes of the main
            # thread, inside whatever lock it holds then (another handler's Event.set included).
            self.signals_received.append(signum)

        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1):
            signal.signal(signum, record)

    def _take_signals(self) -> None:
        """On the main thread, outside any handler: SIGTERM/SIGINT stop, SIGHUP reloads, SIGUSR1
        refreshes every profile."""
        while self.signals_received:
            signum = self.signals_received.popleft()
            if signum in (signal.SIGTERM, signal.SIGINT):
                self.coordinator.stop()
            elif signum == signal.SIGHUP:
                self.coordinator.ask_reload()
            elif signum == RELOADED:
                self._reconcile_containers()
            elif signum == signal.SIGUSR1:
                self.coordinator.ask_refresh_all()

    def _start_server(self) -> None:
        """The loopback endpoint (`serve`), the one for containers (`serve_containers`), or both
        with one token; the record says where each listens."""
        config = self.coordinator.config
        address = self.serve_option or (config.serve if config else None)
        if address:
            host, port = parse_listen_address(address, "--serve" if self.serve_option else "[daemon] serve")
            try:
                self.server = CredentialServer(host, port, self.bridge.endpoint_credentials)
            except OSError as error:
                raise CredhelperError(
                    f"cannot listen on {address}: {error.strerror}; pick another port"
                ) from None
        self.container_server = self._open_containers()
        first = self.server or self.container_server
        if first is None:
            unpublish_endpoint(self.environ, self.cache.directory)  # a killed daemon's, if any
            return
        for server in (self.server, self.container_server):
            if server is not None:
                server.start()
        self._publish()

    def _open_containers(self) -> CredentialServer | None:
        """The listener on 169.254.170.2 when serve_containers asks for it and it can be opened;
        else None (and one log line saying what is missing)."""
        config = self.coordinator.config
        if not (self.containers_option or (config is not None and config.serve_containers)):
            return None
        port = config.containers_port if config else DEFAULT_CONTAINERS_PORT
        token = self.server.token if self.server else None
        return open_container_server(port, self.bridge.endpoint_credentials, token)

    def _reloaded(self) -> None:
        """From the scheduler thread, once a reloaded configuration is in force: the main thread
        makes the listener for containers what it now says."""
        self.signals_received.append(RELOADED)
        self.wakeup.wake()

    def _reconcile_containers(self) -> None:
        """After a reload: the listener for containers closed when serve_containers is gone, opened
        again on a new containers_port, or opened when a start could not (`containers setup` has
        added the address since); the record republished whenever it changed."""
        config = self.coordinator.config
        wanted = self.containers_option or (config is not None and config.serve_containers)
        port = config.containers_port if config else DEFAULT_CONTAINERS_PORT
        running = self.container_server
        if running is not None and (not wanted or running.port != port):
            running.stop()
            self.container_server = None
            log.warning("no longer serving containers on %s", running.url)
        elif running is not None or not wanted:
            return
        if wanted and (server := self._open_containers()) is not None:
            server.start()
            self.container_server = server
        try:
            if self.server is None and self.container_server is None:
                unpublish_endpoint(self.environ, self.cache.directory)
            else:
                self._publish()
        except CredhelperError as error:
            log.error("%s", error)

    def _publish(self) -> None:
        first = self.server or self.container_server
        assert first is not None
        containers_url = self.container_server.url if self.container_server else None
        publish_endpoint(first.token, first.url, self.environ, self.cache.directory, containers_url)


RELOADED = -1  # beside the signal numbers the main thread takes: a reload is in force


def run_daemon(
    config_option: str | None,
    names: Sequence[str],
    environ: Mapping[str, str],
    serve: str | None = None,
    serve_containers: bool = False,
) -> int:
    return Daemon(config_option, names, environ, serve=serve, serve_containers=serve_containers).run()
