"""When each profile refreshes: pure policy with an injected clock.

Deadlines are kept on two clocks. The wall clock is what expirations are measured in, and it
jumps forward across a laptop's sleep (CLOCK_MONOTONIC does not count suspend on Linux), so a
deadline missed while asleep fires on wake. The monotonic clock is immune to the wall clock being
set back, so a deadline is never pushed later by a clock change. A profile is due when either
clock says so.
"""

from __future__ import annotations

import random
import time
from collections.abc import Collection
from typing import NamedTuple, Protocol

BACKOFF_BASE_SECONDS = 5.0
# Credentials that arrive already due are renewed no sooner than this, however short they are.
MIN_RENEW_SECONDS = 60.0
# Nor are any others: a session that arrives a hair over refresh_before_seconds must not be
# renewed every second.
MIN_SCHEDULED_SECONDS = 10.0
BACKOFF_CAP_SECONDS = 300.0
MAX_JITTER_SECONDS = 30.0
# The longest the daemon sleeps between looks at the wall clock: a laptop that wakes past a
# deadline refreshes within this many seconds.
WAKE_CHECK_SECONDS = 5.0


class Clock(Protocol):
    def wall(self) -> float: ...

    def mono(self) -> float: ...


class SystemClock:
    def wall(self) -> float:
        return time.time()

    def mono(self) -> float:
        return time.monotonic()


class Deadline(NamedTuple):
    wall: float
    mono: float

    @classmethod
    def after(cls, clock: Clock, wall_time: float) -> Deadline:
        """The moment `wall_time` on the wall clock, pinned on the monotonic clock too."""
        return cls(wall_time, clock.mono() + (wall_time - clock.wall()))

    def passed(self, clock: Clock) -> bool:
        return clock.wall() >= self.wall or clock.mono() >= self.mono

    def seconds_left(self, clock: Clock) -> float:
        return max(0.0, min(self.wall - clock.wall(), self.mono - clock.mono()))


def refresh_time(expiration: float, refresh_before: int, duration: int, rng: random.Random) -> float:
    """When to renew credentials expiring at `expiration`: `refresh_before` ahead of it, a little
    earlier by a random jitter so that many profiles do not renew in the same second."""
    spread = min(MAX_JITTER_SECONDS, 0.1 * (duration - refresh_before), 0.05 * refresh_before)
    return expiration - refresh_before - rng.uniform(0.0, max(0.0, spread))


def arrived_short(expiration: float, issued_at: float, refresh_before: int) -> bool:
    """Whether credentials were already due for renewal when issued: a clock ahead of AWS's, or a
    role whose maximum session is shorter than asked."""
    return expiration - issued_at < refresh_before


def half_life_renewal(expiration: float, now: float) -> float:
    """When to renew credentials that are due already: at half their remaining life, never sooner
    than MIN_RENEW_SECONDS. Renewing them at once would bring an equally short set, again and again."""
    return now + max(MIN_RENEW_SECONDS, (expiration - now) / 2)


def renewal_time(
    expiration: float, issued_at: float, now: float, refresh_before: int, duration: int, rng: random.Random
) -> float:
    """When the daemon renews credentials it obtained: those that arrived short at half their
    remaining life (`half_life_renewal`), the others at their refresh point, but not sooner than
    MIN_SCHEDULED_SECONDS from now."""
    if arrived_short(expiration, issued_at, refresh_before):
        return half_life_renewal(expiration, now)
    return max(now + MIN_SCHEDULED_SECONDS, refresh_time(expiration, refresh_before, duration, rng))


def backoff_seconds(attempts: int, rng: random.Random) -> float:
    """Exponential backoff with full jitter: attempt 1 waits up to 5 s, doubling, capped at 5 min."""
    ceiling = min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2 ** max(0, attempts - 1))
    return max(1.0, rng.uniform(0.0, ceiling))


class Entry(NamedTuple):
    deadline: Deadline
    attempts: int  # failures in a row


class Scheduler:
    """Per profile: the next deadline, and how many refreshes in a row have failed."""

    def __init__(self, clock: Clock, rng: random.Random | None = None) -> None:
        self.clock = clock
        self.rng = rng or random.Random()
        self.entries: dict[str, Entry] = {}

    def due_now(self, name: str) -> None:
        attempts = self.entries[name].attempts if name in self.entries else 0
        self.entries[name] = Entry(Deadline(self.clock.wall(), self.clock.mono()), attempts)

    def succeeded(
        self, name: str, expiration: float, refresh_before: int, duration: int, issued_at: float = 0.0
    ) -> Deadline:
        when = renewal_time(expiration, issued_at, self.clock.wall(), refresh_before, duration, self.rng)
        deadline = Deadline.after(self.clock, when)
        self.entries[name] = Entry(deadline, 0)
        return deadline

    def failed(self, name: str) -> tuple[Deadline, int]:
        attempts = (self.entries[name].attempts if name in self.entries else 0) + 1
        deadline = Deadline.after(self.clock, self.clock.wall() + backoff_seconds(attempts, self.rng))
        self.entries[name] = Entry(deadline, attempts)
        return deadline, attempts

    def forget(self, name: str) -> None:
        self.entries.pop(name, None)

    def due(self) -> list[str]:
        return [name for name, entry in self.entries.items() if entry.deadline.passed(self.clock)]

    def sleep_seconds(self, busy: Collection[str] = ()) -> float:
        """How long the daemon may sleep before something is due (at most WAKE_CHECK_SECONDS);
        profiles in `busy` (a refresh in flight, which wakes the daemon when it ends) are not due."""
        soonest = min(
            (
                entry.deadline.seconds_left(self.clock)
                for name, entry in self.entries.items()
                if name not in busy
            ),
            default=WAKE_CHECK_SECONDS,
        )
        return min(WAKE_CHECK_SECONDS, soonest)
