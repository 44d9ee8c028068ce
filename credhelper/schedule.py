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
from typing import TYPE_CHECKING, NamedTuple

from .windows import MIN_SCHEDULED_SECONDS, arrived_short, half_life, refresh_point

if TYPE_CHECKING:
    from .interfaces import Clock

BACKOFF_BASE_SECONDS = 5.0
BACKOFF_CAP_SECONDS = 300.0
# The longest the daemon sleeps between looks at the wall clock: a laptop that wakes past a
# deadline refreshes within this many seconds.
WAKE_CHECK_SECONDS = 5.0


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


def renewal_time(
    expiration: float, issued_at: float, now: float, refresh_before: int, duration: int, rng: random.Random
) -> float:
    """When the daemon renews credentials it obtained: those that arrived short at their half-life
    from now, the others at their refresh point, but not sooner than MIN_SCHEDULED_SECONDS from
    now (windows.py)."""
    if arrived_short(expiration, issued_at, refresh_before):
        return half_life(now, expiration)
    return max(now + MIN_SCHEDULED_SECONDS, refresh_point(expiration, refresh_before, duration, rng))


def backoff_seconds(attempts: int, rng: random.Random, retry_within: float | None = None) -> float:
    """Exponential backoff with full jitter: attempt 1 waits up to 5 s, doubling, capped at 5 min.
    A failure that names its own `retry_within` (a locked keyring) is tried again between three
    quarters of it and all of it, however many came before."""
    if retry_within is not None:
        return rng.uniform(0.75 * retry_within, retry_within)
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

    def failed(self, name: str, retry_within: float | None = None) -> tuple[Deadline, int]:
        attempts = (self.entries[name].attempts if name in self.entries else 0) + 1
        wait = backoff_seconds(attempts, self.rng, retry_within)
        deadline = Deadline.after(self.clock, self.clock.wall() + wait)
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
