"""The renewals of a supervised command's credentials: when each is due (the rules of `schedule`),
the backoff after a failure, and each renewal in a thread of its own, so that a hanging STS delays
neither a signal for the command nor exec's exit when the command exits."""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable

from ..credentials import Credentials
from ..errors import CredhelperError, as_credhelper_error
from ..profile import Profile
from ..refresher import Refresher
from ..schedule import Clock, Deadline, Scheduler, half_life_renewal, refresh_time

log = logging.getLogger("credhelper.exec")


def supervised_renewal_time(
    credentials: Credentials, profile: Profile, now: float, rng: random.Random
) -> float:
    """When exec renews (and restarts onto) the credentials its command holds: the profile's
    refresh point, or for credentials that arrive already past it (from the cache, or issued
    short) schedule's half-life rule. Unlike the daemon's `schedule.renewal_time`, it needs no
    issue time: what matters is whether the command's set is due already."""
    at = refresh_time(credentials.expiration, profile.refresh_before_seconds, profile.duration_seconds, rng)
    if at > now:
        return at
    return half_life_renewal(credentials.expiration, now)


def renewal_failure_message(
    profile: Profile, error: CredhelperError, held: Credentials, now: float, retry_in: float
) -> str | None:
    """What to tell the user on stderr when a renewal failed: nothing while the command's
    credentials still work (it is retried), one line each time once they have expired."""
    if not held.is_expired(now):
        return None
    return (
        f"profile {profile.name}: the command's credentials expired at {held.expiration_text} and "
        f"could not be renewed: {error}; next try in {retry_in:.0f} s"
    )


class Renewal:
    """One renewal, in a thread of its own: the supervisor's main thread goes on passing signals
    and watching the command while STS takes its time (retries and timeouts can add up to a
    minute). `done` is called from that thread once the outcome is there."""

    def __init__(self, obtain: Callable[[], Credentials], done: Callable[[], None]) -> None:
        self.outcome: Credentials | CredhelperError | None = None
        self._obtain = obtain
        self._done = done
        self._finished = threading.Event()
        # A daemon thread: exec exits with the command, never waiting for STS.
        threading.Thread(target=self._run, name="credhelper-renewal", daemon=True).start()

    @property
    def finished(self) -> bool:
        return self._finished.is_set()

    def _run(self) -> None:
        try:
            self.outcome = self._obtain()
        except Exception as error:  # Refresher.obtain raises CredhelperError; anything else is a bug
            self.outcome = as_credhelper_error(error, "renew the command's credentials")
        finally:
            self._finished.set()
            self._done()


class Renewals:
    """The renewals of one command's credentials: when the next is due, each started in a thread,
    and the backoff after failures (`schedule.Scheduler`)."""

    def __init__(self, profile: Profile, refresher: Refresher, clock: Clock, rng: random.Random) -> None:
        self.profile = profile
        self.refresher = refresher
        self.clock = clock
        self.rng = rng
        self.scheduler = Scheduler(clock, rng)

    def past_refresh_point(self, credentials: Credentials) -> bool:
        at = refresh_time(
            credentials.expiration,
            self.profile.refresh_before_seconds,
            self.profile.duration_seconds,
            self.rng,
        )
        return at <= self.clock.wall()

    def start(self, held: Credentials, done: Callable[[], None]) -> Renewal:
        """Credentials newer than `held`, in a thread: another process's renewal if there was
        one, else STS's."""
        return Renewal(
            lambda: self.refresher.obtain(
                self.profile,
                min_seconds_left=self.profile.refresh_before_seconds,
                issued_after=held.issued_at + 1e-3,
            ),
            done,
        )

    def succeeded(self, credentials: Credentials) -> Deadline:
        """When to renew `credentials`; a success resets the backoff."""
        at = supervised_renewal_time(credentials, self.profile, self.clock.wall(), self.rng)
        deadline = Deadline.after(self.clock, at)
        self.scheduler.forget(self.profile.name)
        return deadline

    def backoff(self) -> tuple[Deadline, int]:
        """When to try again after a failure, and how many failed in a row."""
        return self.scheduler.failed(self.profile.name)

    def failed(self, error: CredhelperError, held: Credentials) -> Deadline:
        """The command runs on; the next try is due after the backoff."""
        deadline, attempts = self.backoff()
        retry_in = deadline.seconds_left(self.clock)
        message = renewal_failure_message(self.profile, error, held, self.clock.wall(), retry_in)
        if message:
            log.warning("%s", message)
        else:
            log.info("%s (attempt %d; next try in %.0f s)", error, attempts, retry_in)
        return deadline
