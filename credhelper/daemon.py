"""`credhelper run`: keeps every target of every profile fresh, for weeks, at no cost while idle.

Threads: the main thread owns the signals and the exit, and sleeps on its wakeup (`Wakeup`), which
every signal wakes whichever thread the kernel hands it to; one scheduler thread owns the daemon's
state and decides (reloads, restores, which refresh starts when); up to REFRESH_CONCURRENCY short-lived
refresh threads each carry out one profile's attempt (STS call, target writes, hooks) and hand the
outcome back to the scheduler; watchdog's threads only record which paths changed and wake the
scheduler.
"""

from __future__ import annotations

import collections
import fcntl
import hashlib
import logging
import os
import queue
import signal
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import FrameType
from typing import TYPE_CHECKING

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver

from . import children
from .cache import Cache, cache_dir_path
from .config import Config, load_config
from .credentials import Credentials
from .delivery import DeliveryReport, deliver, watch_paths
from .endpoint.discovery import publish_endpoint, unpublish_endpoint
from .endpoint.protocol import UnknownProfile
from .endpoint.server import CredentialServer
from .errors import CredhelperError, FileSystemError, as_credhelper_error
from .fileio import atomic_write, open_lock_file, read_regular_file, remove_quietly, trusted_private_dir
from .keeper import TargetClaims, TargetKeptElsewhere
from .paths import CACHE_DIR_FIX, daemon_lock_path, daemon_pid_path
from .policy import (
    Mode,
    Pending,
    Requests,
    Want,
    config_change,
    is_ready,
    retrying,
    status_line,
    to_start,
    waiting,
    want,
    will_do,
)
from .profile import Profile, parse_listen_address
from .refresher import Refresher
from .schedule import Clock, Scheduler, SystemClock
from .sdnotify import Notifier
from .sharedcreds import read_sections, shared_credentials_path
from .supply import Supplied, supply
from .wakeup import Wakeup

if TYPE_CHECKING:
    from .sts import StsGateway

log = logging.getLogger("credhelper.daemon")
SHUTDOWN_GRACE_SECONDS = 1.0  # after hooks in flight were given theirs (children.KILL_GRACE_SECONDS)
ENDPOINT_WAIT_SECONDS = 20.0  # under botocore's and the JS SDK's retries, well over one STS round trip
MIN_ENDPOINT_SECONDS = 60
EVENT_SETTLE_SECONDS = 0.05
PID_FILE_MAX_BYTES = 64
SOURCE_FILE_MAX_BYTES = 1 << 20


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
            found = read_regular_file(self.pid_path, PID_FILE_MAX_BYTES)
        except OSError:
            return "?"
        return found[0].decode(errors="replace").strip() or "?" if found is not None else "?"

    def release(self) -> None:
        if self.fd >= 0:
            remove_quietly(self.pid_path)
            os.close(self.fd)
            self.fd = -1


class _PathEvents(FileSystemEventHandler):
    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type in ("opened", "closed_no_write"):
            return
        paths = [event.src_path, getattr(event, "dest_path", "")]
        self.daemon.paths_changed([os.fsdecode(p) for p in paths if p])


@dataclass(frozen=True)
class _Attempt:
    """One profile's refresh, as the scheduler thread started it."""

    profile: Profile
    wanted: Want
    held: Credentials | None
    kept: Profile  # the profile with only the targets this daemon keeps
    elsewhere: TargetKeptElsewhere | None  # the targets another daemon keeps


@dataclass(frozen=True)
class _Outcome:
    attempt: _Attempt
    supplied: Supplied | None
    error: CredhelperError | None = None


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


def name_os_threads(threads: Iterable[threading.Thread] | None = None) -> None:
    """Give threads (all of them by default) a name in /proc/PID/task/TID/comm, what ps, top and
    /proc show: ours their own, shortened to fit 15 bytes; the libraries' their class name. The
    main thread keeps the process's name."""
    for thread in threading.enumerate() if threads is None else threads:
        if thread is threading.main_thread() or thread.native_id is None:
            continue
        if thread.name.startswith("credhelper-"):
            label = "ch-" + thread.name.removeprefix("credhelper-")
        else:
            label = type(thread).__name__
        try:
            with open(f"/proc/self/task/{thread.native_id}/comm", "w") as comm:
                comm.write(label[:15])
        except OSError:
            pass  # the thread has ended, or /proc is not there: names are for people only


class Daemon:
    def __init__(
        self,
        config_option: str | None,
        names: Sequence[str],
        environ: Mapping[str, str],
        clock: Clock | None = None,
        serve: str | None = None,
    ) -> None:
        self.serve_option = serve
        self.config_option = config_option
        self.names = list(names)
        self.environ = environ
        self.clock = clock or SystemClock()
        self.cache = Cache(cache_dir_path(environ))
        self.refresher = Refresher(self.cache, self._gateway, clock=self.clock.wall, interactive=False)
        self.scheduler = Scheduler(self.clock)
        self.notifier = Notifier(environ)
        self.config: Config | None = None
        self.profiles: dict[str, Profile] = {}
        self.current: dict[str, Credentials] = {}
        self.pending = Pending()
        self.delivered: set[str] = set()  # profiles whose targets took credentials at least once
        self.attempts_done: dict[str, int] = {}
        self.attempt_finished = threading.Condition()
        self.server: CredentialServer | None = None
        self.requests = Requests()
        self.later = Requests()  # held back until the profile's refresh in flight ends
        self.in_flight: dict[str, _Attempt] = {}
        self.target_forms: dict[str, set[str]] = {}  # per profile, its targets' paths (_rewatch)
        self.settle_until: float | None = None  # changed paths wait until then (monotonic)
        self.state_changes: dict[str, dict[str, object]] = {}
        self.outcomes: queue.SimpleQueue[_Outcome] = queue.SimpleQueue()
        self.lock = threading.Lock()
        self.signals_received: collections.deque[int] = collections.deque()
        self.write_gate = WriteGate()
        self.wake = threading.Event()
        self.stopping = threading.Event()
        self.wakeup = Wakeup()  # the main thread's sleep, ended by any signal
        self.observer: BaseObserver | None = None
        self.watched: set[str] = set()
        self.ready = False
        self.last_status = ""
        self.source_digest = ""
        self.claims = TargetClaims()  # one target, one keeper, whatever the cache directory
        self.claim_errors: dict[str, str] = {}

    @staticmethod
    def _gateway() -> StsGateway:
        from .sts import StsGateway  # botocore is imported once the first STS call is due

        return StsGateway()

    # -- main thread -----------------------------------------------------------------------

    def run(self) -> int:
        with self.wakeup:
            self._install_signals()
            return self._run()

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
                len(self.profiles),
                self.cache.directory,
                os.getpid(),
            )
            while True:
                self._take_signals()
                if self.stopping.is_set():
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
            if self.observer is not None:
                self.observer.stop()
            if self.server is not None:
                unpublish_endpoint(self.environ, self.cache.directory)
                self.server.stop()
            self.claims.release_all()
            daemon_lock.release()

    def _start(self) -> threading.Thread:
        self._apply_config(load_config(self.config_option, self.environ))
        self.source_digest = self._source_digest()
        self._start_server()
        # The observer's dispatch thread wakes every `timeout` seconds while idle; events
        # themselves are delivered at once.
        self.observer = Observer(timeout=30)
        self.observer.name = "credhelper-watch"
        self.observer.start()
        self._rewatch()
        worker = threading.Thread(target=self._work, name="credhelper-scheduler", daemon=True)
        worker.start()
        return worker

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
                self.stopping.set()
            with self.lock:
                if signum == signal.SIGHUP:
                    self.requests.reload = True
                elif signum == signal.SIGUSR1:
                    self.requests.force |= set(self.profiles)
            self.wake.set()

    def _start_server(self) -> None:
        address = self.serve_option or (self.config.serve if self.config else None)
        if not address:
            unpublish_endpoint(self.environ, self.cache.directory)  # a killed daemon's, if any
            return
        host, port = parse_listen_address(address, "--serve" if self.serve_option else "[daemon] serve")
        try:
            self.server = CredentialServer(host, port, self.endpoint_credentials)
        except OSError as error:
            raise CredhelperError(
                f"cannot listen on {address}: {error.strerror}; pick another port"
            ) from None
        self.server.start()
        publish_endpoint(self.server, self.environ, self.cache.directory)

    def endpoint_credentials(self, name: str) -> Credentials:
        """For a request at the endpoint (any thread): the cached credentials if they last the
        handout window; otherwise ask the scheduler and wait for the refresh in flight. A profile
        retrying with backoff is not asked again: requests never add STS calls to the backoff's."""
        profile = self.profiles.get(name)
        if profile is None:
            raise UnknownProfile(name)
        credentials = self.refresher.cached(profile)
        if credentials is not None and will_do(credentials, Want(profile.handout_seconds), self.clock.wall()):
            return credentials
        if not retrying(self.scheduler.entries.get(name)):
            self._ask_and_wait(name)
        credentials = self.refresher.cached(profile)
        if credentials is not None and credentials.seconds_left(self.clock.wall()) > MIN_ENDPOINT_SECONDS:
            return credentials  # short-lived beats none while STS is failing; the SDK asks again
        last_error = self.cache.read_state(name).get("last_error")
        raise CredhelperError(str(last_error or f"profile {name}: no valid credentials yet; try again"))

    def _ask_and_wait(self, name: str) -> None:
        with self.attempt_finished:
            seen = self.attempts_done.get(name, 0)
        with self.lock:
            self.requests.ensure.add(name)
        self.wake.set()
        with self.attempt_finished:
            self.attempt_finished.wait_for(
                lambda: self.attempts_done.get(name, 0) > seen, ENDPOINT_WAIT_SECONDS
            )

    def paths_changed(self, paths: list[str]) -> None:
        with self.lock:
            self.requests.paths.update(paths)
        self.wake.set()

    # -- scheduler thread ------------------------------------------------------------------

    def _work(self) -> None:
        try:
            self._schedule()
        finally:
            self.wakeup.wake()  # the main thread exits when this thread has ended

    def _schedule(self) -> None:
        name_os_threads()
        for name in self.profiles:
            self.pending.request(name, Mode.ENSURE)
            self.scheduler.due_now(name)
        while not self.stopping.is_set():
            try:
                self._tick()
            except Exception:  # the daemon must outlive its bugs; say what happened
                log.exception("unexpected error in the scheduler; carrying on")
                time.sleep(1.0)
            busy = waiting(self.scheduler.due(), self.in_flight)
            pause = self.scheduler.sleep_seconds(busy=busy)
            if self.notifier.watchdog_interval is not None:
                pause = min(pause, self.notifier.watchdog_interval)
            if self.settle_until is not None:
                pause = min(pause, max(0.0, self.settle_until - time.monotonic()))
            self.wake.wait(pause)
            self.wake.clear()

    def _tick(self) -> None:
        self.notifier.watchdog()
        self._collect_outcomes()
        self._start_due()  # refill the slots first: what follows may take a while
        requests = self._take_requests()
        self._let_paths_settle(requests)
        if requests.reload or self._config_path() in requests.paths:
            self._reload()
        digest = self._source_digest() if self._credentials_file() in requests.paths else self.source_digest
        if digest != self.source_digest:
            log.info("source credentials changed; refreshing every profile")
            self.source_digest = digest
            self.refresher.gateway.forget_sources()
            requests.force |= set(self.profiles)
        busy_paths = {form for name in self.in_flight for form in self.target_forms.get(name, ())}
        self.later.merge(requests.held_back(self.in_flight, busy_paths))
        for name in requests.ensure & set(self.profiles):
            if not retrying(self.scheduler.entries.get(name)):
                self.pending.request(name, Mode.ENSURE)
                self.scheduler.due_now(name)
        for name in requests.force & set(self.profiles):
            self.pending.request(name, Mode.FORCE)
            self.scheduler.due_now(name)
        if requests.paths:
            self._restore_targets(requests.paths)
        self._start_due()
        self._report()
        self._write_states()

    def _let_paths_settle(self, requests: Requests) -> None:
        """Changed paths wait until EVENT_SETTLE_SECONDS after the first of them, so an editor's
        burst of events lands as one; the scheduler goes on with other work meanwhile."""
        now = time.monotonic()
        if requests.paths and self.settle_until is None:
            self.settle_until = now + EVENT_SETTLE_SECONDS
        if self.settle_until is not None and now < self.settle_until:
            self.later.paths |= requests.paths
            requests.paths = set()
        else:
            self.settle_until = None

    def _take_requests(self) -> Requests:
        """The new requests, and those held back for profiles whose refresh has ended since."""
        with self.lock:
            requests, self.requests = self.requests, Requests()
        requests.merge(self.later)
        self.later = Requests()
        return requests

    def _start_due(self) -> None:
        for name in to_start(self.scheduler.due(), self.in_flight):
            if self.stopping.is_set():
                return
            profile = self.profiles[name]
            held = self.current.get(name)
            wanted = want(self.pending.mode(name, held), profile, held, self.clock.wall())
            kept, elsewhere = self.claims.kept(profile)  # the claims belong to this thread
            attempt = _Attempt(profile, wanted, held, kept, elsewhere)
            self.in_flight[name] = attempt
            threading.Thread(
                target=self._attempt, args=(attempt,), name=f"credhelper-refresh-{name}", daemon=True
            ).start()

    def _attempt(self, attempt: _Attempt) -> None:
        """A refresh thread: one attempt, its outcome handed to the scheduler thread. Every failure,
        of whatever kind, is an outcome that goes to the backoff."""
        name_os_threads([threading.current_thread()])
        profile = attempt.profile
        try:
            supplied = supply(
                self.refresher, attempt.kept, attempt.wanted, self.environ, attempt.held, self.write_gate
            )
            outcome = _Outcome(attempt, supplied)
        except Exception as error:
            outcome = _Outcome(attempt, None, as_credhelper_error(error, f"refresh profile {profile.name}"))
        self.outcomes.put(outcome)
        self.wake.set()

    def _collect_outcomes(self) -> None:
        while True:
            try:
                outcome = self.outcomes.get_nowait()
            except queue.Empty:
                return
            name = outcome.attempt.profile.name
            del self.in_flight[name]
            try:
                if self.profiles.get(name) == outcome.attempt.profile:
                    self._settle(outcome)
                # else: reloaded meanwhile; the new settings are due already
            finally:
                with self.attempt_finished:
                    self.attempts_done[name] = self.attempts_done.get(name, 0) + 1
                    self.attempt_finished.notify_all()

    def _settle(self, outcome: _Outcome) -> None:
        """Credentials obtained but not delivered are delivered again from the cache, never asked of
        STS again."""
        profile = outcome.attempt.profile
        name = profile.name
        if outcome.supplied is None:
            assert outcome.error is not None
            self._failed(name, outcome.error)
            return
        credentials = outcome.supplied.credentials
        self.current[name] = credentials
        self._log_delivery(profile, outcome.supplied.report)
        elsewhere = outcome.attempt.elsewhere
        if elsewhere is not None:
            outcome.supplied.report.errors.insert(0, elsewhere)
            if self.claim_errors.get(name) != str(elsewhere):
                log.error("%s", elsewhere)
        self.claim_errors[name] = str(elsewhere or "")
        if outcome.supplied.report.errors:
            self.pending.not_delivered(name)
            error = outcome.supplied.report.errors[0]
            self._failed(name, error, last_error=str(error))
            return
        cleared = {"last_error": None} if self.pending.delivery_failed(name) else {}
        self.pending.delivered(name)
        self.delivered.add(name)
        deadline = self.scheduler.succeeded(
            name,
            credentials.expiration,
            profile.refresh_before_seconds,
            profile.duration_seconds,
            credentials.issued_at,
        )
        self._record_state(name, next_refresh=deadline.wall, next_try=None, **cleared)

    def _failed(self, name: str, error: CredhelperError, **state: object) -> None:
        deadline, attempts = self.scheduler.failed(name)
        self._record_state(name, next_try=deadline.wall, next_refresh=None, **state)
        log.warning("%s (attempt %d; next try in %.0f s)", error, attempts, deadline.wall - self.clock.wall())

    def _record_state(self, name: str, **changes: object) -> None:
        """Noted now, written at the end of the tick (_write_states), after the next refreshes
        have started."""
        self.state_changes.setdefault(name, {}).update(changes)

    def _write_states(self) -> None:
        """Best effort: the state file is for `status`; a full disk must not stop the schedule."""
        changes, self.state_changes = self.state_changes, {}
        for name, change in changes.items():
            try:
                self.cache.update_state(name, **change)
            except (CredhelperError, OSError) as error:
                log.debug("profile %s: state not recorded: %s", name, error)

    def _write_targets(self, profile: Profile, credentials: Credentials, run_hook: bool) -> None:
        if credentials.is_expired(self.clock.wall()):
            return  # expired credentials are never written
        profile, _ = self.claims.kept(profile)
        try:
            with self.write_gate:
                report = deliver(profile, credentials, self.cache.directory, self.environ, run_hook=run_hook)
        except CredhelperError:
            return  # stopping
        self._log_delivery(profile, report)

    @staticmethod
    def _log_delivery(profile: Profile, report: DeliveryReport) -> None:
        for error in report.errors:
            log.error("%s", error)
        for path in report.written:
            log.info("profile %s: wrote %s", profile.name, path)

    def _restore_targets(self, paths: set[str]) -> None:
        for name, profile in self.profiles.items():
            if self.target_forms.get(name, set()) & paths and name in self.current:
                self._write_targets(profile, self.current[name], run_hook=False)

    def _report(self) -> None:
        if not self.ready and is_ready(list(self.profiles), self.delivered):
            self.ready = True
            self.notifier.send("READY=1")
        status = status_line(list(self.profiles), self.scheduler.entries)
        if status != self.last_status:
            self.last_status = status
            self.notifier.send(status)

    # -- configuration and watches -----------------------------------------------------------

    def _config_path(self) -> str:
        return os.path.abspath(str(self.config.path)) if self.config else ""

    def _credentials_file(self) -> str:
        return os.path.abspath(shared_credentials_path(self.environ))

    def _source_digest(self) -> str:
        """What of the shared credentials file the profiles depend on. An unreadable file (a FIFO,
        a device, too large) is logged and counts as its own state: the daemon carries on."""
        path = self._credentials_file()
        try:
            found = read_regular_file(path, SOURCE_FILE_MAX_BYTES, follow_symlinks=True)
        except OSError as error:
            log.error("cannot read the shared credentials file %s: %s", path, error.strerror)
            return f"unreadable: {error.strerror}"
        data = found[0] if found is not None else b""
        sources = {p.source_profile or "default" for p in self.profiles.values()}
        sections = read_sections(data.decode("utf-8", "replace"))
        relevant = sorted(
            (name, sorted(values.items())) for name, values in sections.items() if name in sources
        )
        return hashlib.sha256(repr(relevant).encode()).hexdigest()

    def _apply_config(self, config: Config) -> None:
        selected = config.select(self.names)
        old = self.profiles
        self.config = config
        self.profiles = {p.name: p for p in selected}
        self.claims.keep_only(selected)
        for profile in selected:
            for warning in profile.warnings:
                log.warning("%s", warning)
        change = config_change(old, self.profiles)
        for name in change.removed:
            self.scheduler.forget(name)
            self.pending.forget(name)
            self.delivered.discard(name)
            self.current.pop(name, None)
        for name in change.rekeyed:
            self.current.pop(name, None)  # credentials of other settings are not this profile's
        for name in change.to_ensure:
            self.pending.request(name, Mode.ENSURE)
            self.scheduler.due_now(name)

    def _reload(self) -> None:
        try:
            config = load_config(self.config_option, self.environ)
            config.select(self.names)
        except CredhelperError as error:
            log.error("configuration not reloaded, the previous one stays in force: %s", error)
            return
        self._apply_config(config)
        self._rewatch()
        log.info("configuration reloaded: %d profile(s)", len(self.profiles))

    def _rewatch(self) -> None:
        """Watch the directories of the configuration, the source credentials and every target,
        and note each target's paths as file events will name them (a symlink's, as it is now)."""
        self.target_forms = {name: watch_paths(profile) for name, profile in self.profiles.items()}
        if self.observer is None:
            return
        directories = {os.path.dirname(self._config_path()), os.path.dirname(self._credentials_file())}
        for forms in self.target_forms.values():
            directories.update(os.path.dirname(form) for form in forms)
        if directories == self.watched:
            return
        self.watched = directories
        self.observer.unschedule_all()
        handler = _PathEvents(self)
        for directory in sorted(directories):
            if os.path.isdir(directory):
                self.observer.schedule(handler, directory, recursive=False)
            else:
                log.warning("not watching %s: no such directory", directory)
        name_os_threads()
        # An event that landed while the watches were being replaced is lost: look at every target.
        self.paths_changed([form for forms in self.target_forms.values() for form in forms])


def run_daemon(
    config_option: str | None, names: Sequence[str], environ: Mapping[str, str], serve: str | None = None
) -> int:
    return Daemon(config_option, names, environ, serve=serve).run()
