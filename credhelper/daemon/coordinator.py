"""The daemon's scheduler: its state, and the decisions of `policy.py` and `schedule.py` carried
out: which refresh starts when, what an attempt's outcome means, reloads, restores, READY and the
status line.

One thread (`credhelper-scheduler`) runs `loop`: a `tick`, then a sleep of `pause()` seconds or
until woken. Other threads only ask (`ask_reload`, `ask_refresh_all`, `ask_ensure`,
`paths_changed`, `stop`): a request is recorded under a lock and wakes the loop. Whatever touches
the world (the configuration file, a refresh attempt and the thread it runs on, a restore's writes,
the state files, the watches) goes through a `World`, and every reading of time through a `Clock`:
tests drive a coordinator with a made-up clock and a fake world, in milliseconds.
"""

from __future__ import annotations

import functools
import logging
import os
import queue
import random
import threading
import time
from collections.abc import Callable, Iterable, Sequence

from ..config import Config
from ..credentials import Credentials
from ..errors import CredhelperError, TargetBeingWritten, as_credhelper_error
from ..interfaces import Clock, Notify, World
from ..policy import (
    Mode,
    Pending,
    Requests,
    config_change,
    is_ready,
    retrying,
    status_line,
    to_start,
    waiting,
    want,
)
from ..profile import Profile
from ..schedule import Scheduler
from ..targets.delivery import DeliveryReport, watch_paths
from ..targets.keeper import TargetClaims
from .attempt import Attempt, Outcome

log = logging.getLogger("credhelper.daemon")
EVENT_SETTLE_SECONDS = 0.05
BUG_PAUSE_SECONDS = 1.0  # after an unexpected error in a tick, so a bug cannot spin


class Coordinator:
    """The scheduler thread's state, and what it does with it."""

    def __init__(
        self,
        clock: Clock,
        world: World,
        notifier: Notify,
        names: Sequence[str] = (),
        claims: TargetClaims | None = None,
        rng: random.Random | None = None,
        reloaded: Callable[[], None] | None = None,
    ) -> None:
        self.clock = clock
        self.reloaded = reloaded  # told (from this thread) once a reload is in force
        self.world = world
        self.notifier = notifier
        self.names = list(names)  # the profiles to keep; all of them when none is named
        self.claims = claims or TargetClaims()  # one target, one keeper; used by this thread only
        self.scheduler = Scheduler(clock, rng)
        self.config: Config | None = None
        self.profiles: dict[str, Profile] = {}
        self.current: dict[str, Credentials] = {}
        self.pending = Pending()
        self.delivered: set[str] = set()  # profiles whose targets took credentials at least once
        self.in_flight: dict[str, Attempt] = {}
        self.outcomes: queue.SimpleQueue[Outcome] = queue.SimpleQueue()
        self.lock = threading.Lock()  # guards `requests`, which other threads add to
        self.requests = Requests()
        self.later = Requests()  # held back until the profile's refresh in flight ends
        self.wake = threading.Event()
        self.stopping = threading.Event()
        self.attempt_finished = threading.Condition()  # guards `attempts_done`
        self.attempts_done: dict[str, int] = {}
        self.target_forms: dict[str, set[str]] = {}  # per profile, its targets' paths (rewatch)
        self.watched: set[str] = set()
        self.settle_until: float | None = None  # changed paths wait until then (monotonic)
        self.state_changes: dict[str, dict[str, object]] = {}
        self.source_digest = ""
        self.claim_errors: dict[str, str] = {}
        self.ready = False
        self.last_status = ""

    # -- any thread: requests ------------------------------------------------------------------

    def ask_reload(self) -> None:
        with self.lock:
            self.requests.reload = True
        self.wake.set()

    def ask_refresh_all(self) -> None:
        with self.lock:
            self.requests.force |= set(self.profiles)
        self.wake.set()

    def ask_ensure(self, name: str) -> None:
        """Credentials lasting the handout window for `name` (a request at the endpoint)."""
        with self.lock:
            self.requests.ensure.add(name)
        self.wake.set()

    def paths_changed(self, paths: Iterable[str]) -> None:
        with self.lock:
            self.requests.paths.update(paths)
        self.wake.set()

    def stop(self) -> None:
        """Start no more refreshes, and end `loop` at once."""
        self.stopping.set()
        self.wake.set()

    def is_retrying(self, name: str) -> bool:
        return retrying(self.scheduler.entries.get(name))

    def attempts_ended(self, name: str) -> int:
        with self.attempt_finished:
            return self.attempts_done.get(name, 0)

    def wait_for_attempt(self, name: str, seen: int, timeout: float) -> bool:
        """Until an attempt of `name` ends after the `seen`th one (True), or `timeout` passes."""
        with self.attempt_finished:
            return self.attempt_finished.wait_for(lambda: self.attempts_done.get(name, 0) > seen, timeout)

    # -- main thread, before the scheduler thread starts -------------------------------------------

    def start(self) -> None:
        """The configuration loaded (every profile due at once) and the source credentials read."""
        self._apply_config(self.world.load_config())
        self.source_digest = self.world.source_digest(self.profiles.values())

    # -- scheduler thread ------------------------------------------------------------------------

    def loop(self) -> None:
        """The scheduler thread, until `stop`."""
        while not self.stopping.is_set():
            try:
                self.tick()
            except Exception:  # the daemon must outlive its bugs; say what happened
                log.exception("unexpected error in the scheduler; carrying on")
                time.sleep(BUG_PAUSE_SECONDS)
            self.wake.wait(self.pause())
            self.wake.clear()

    def pause(self) -> float:
        """How long the loop may sleep: until the next deadline, the next watchdog ping, or the end
        of the settling of changed paths."""
        busy = waiting(self.scheduler.due(), self.in_flight)
        pause = self.scheduler.sleep_seconds(busy=busy)
        if self.notifier.watchdog_interval is not None:
            pause = min(pause, self.notifier.watchdog_interval)
        if self.settle_until is not None:
            pause = min(pause, max(0.0, self.settle_until - self.clock.mono()))
        return pause

    def tick(self) -> None:
        self.notifier.watchdog()
        self._collect_outcomes()
        self._start_due()  # refill the slots first: what follows may take a while
        requests = self._take_requests()
        self._let_paths_settle(requests)
        if requests.reload or self._config_path() in requests.paths:
            self._reload()
        if self.world.credentials_file in requests.paths:
            digest = self.world.source_digest(self.profiles.values())
        else:
            digest = self.source_digest
        if digest != self.source_digest:
            log.info("source credentials changed; refreshing every profile")
            self.source_digest = digest
            self.world.forget_sources()
            requests.force |= set(self.profiles)
        busy_paths = {form for name in self.in_flight for form in self.target_forms.get(name, ())}
        self.later.merge(requests.held_back(self.in_flight, busy_paths))
        for name in requests.ensure & set(self.profiles):
            if not self.is_retrying(name):
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
        now = self.clock.mono()
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
            kept, elsewhere = self.claims.kept(profile)
            attempt = Attempt(profile, wanted, held, kept, elsewhere)
            self.in_flight[name] = attempt
            self.world.start(name, functools.partial(self._attempt, attempt))

    def _attempt(self, attempt: Attempt) -> None:
        """On the attempt's own thread: its outcome handed to the scheduler thread. Every failure,
        of whatever kind, is an outcome that goes to the backoff."""
        try:
            outcome = Outcome(attempt, self.world.refresh(attempt))
        except Exception as error:
            failure = as_credhelper_error(error, f"refresh profile {attempt.profile.name}")
            outcome = Outcome(attempt, None, failure)
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

    def _settle(self, outcome: Outcome) -> None:
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
        _log_delivery(profile, outcome.supplied.report)
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
        deadline, attempts = self.scheduler.failed(name, error.retry_within)
        self._record_state(name, next_try=deadline.wall, next_refresh=None, **state)
        log.warning("%s (attempt %d; next try in %.0f s)", error, attempts, deadline.wall - self.clock.wall())

    def _record_state(self, name: str, **changes: object) -> None:
        """Noted now, written at the end of the tick (_write_states), after the next refreshes
        have started."""
        self.state_changes.setdefault(name, {}).update(changes)

    def _write_states(self) -> None:
        changes, self.state_changes = self.state_changes, {}
        for name, change in changes.items():
            self.world.record_state(name, change)

    def _restore_targets(self, paths: set[str]) -> None:
        """Targets someone changed get the credentials held again; expired ones are never written."""
        for name, profile in self.profiles.items():
            if not (self.target_forms.get(name, set()) & paths and name in self.current):
                continue
            credentials = self.current[name]
            if credentials.is_expired(self.clock.wall()):
                continue
            kept, _ = self.claims.kept(profile)
            try:
                report = self.world.restore(kept, credentials)
            except CredhelperError:
                continue  # stopping
            _log_delivery(kept, report)

    def _report(self) -> None:
        if not self.ready and is_ready(list(self.profiles), self.delivered):
            self.ready = True
            self.notifier.send("READY=1")
        status = status_line(list(self.profiles), self.scheduler.entries)
        if status != self.last_status:
            self.last_status = status
            self.notifier.send(status)

    # -- configuration and watches ---------------------------------------------------------------

    def _config_path(self) -> str:
        return os.path.abspath(str(self.config.path)) if self.config else ""

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
            config = self.world.load_config()
            config.select(self.names)
        except CredhelperError as error:
            log.error("configuration not reloaded, the previous one stays in force: %s", error)
            return
        self._apply_config(config)
        self.rewatch()
        log.info("configuration reloaded: %d profile(s)", len(self.profiles))
        if self.reloaded is not None:
            self.reloaded()

    def rewatch(self) -> None:
        """Watch the directories of the configuration, the source credentials and every target,
        and note each target's paths as file events will name them (a symlink's, as it is now)."""
        self.target_forms = {name: watch_paths(profile) for name, profile in self.profiles.items()}
        directories = {os.path.dirname(self._config_path()), os.path.dirname(self.world.credentials_file)}
        for forms in self.target_forms.values():
            directories.update(os.path.dirname(form) for form in forms)
        if directories == self.watched:
            return
        self.watched = directories
        self.world.watch(directories)
        # An event that landed while the watches were being replaced is lost: look at every target.
        self.paths_changed([form for forms in self.target_forms.values() for form in forms])


def _log_delivery(profile: Profile, report: DeliveryReport) -> None:
    for error in report.errors:
        if isinstance(error, TargetBeingWritten):
            log.info("%s", error)
        else:
            log.error("%s", error)
    for path in report.written:
        log.info("profile %s: wrote %s", profile.name, path)
