"""The refresh policy, with an injected clock: milliseconds, not minutes."""

from __future__ import annotations

import random

from credhelper.schedule import (
    BACKOFF_CAP_SECONDS,
    WAKE_CHECK_SECONDS,
    Scheduler,
    backoff_seconds,
)
from credhelper.windows import KEYRING_RETRY_SECONDS, refresh_point


class FakeClock:
    """A wall clock and a monotonic clock that tests move, together or apart."""

    def __init__(self, wall: float = 1_800_000_000.0) -> None:
        self._wall = wall
        self._mono = 1000.0

    def wall(self) -> float:
        return self._wall

    def mono(self) -> float:
        return self._mono

    def advance(self, seconds: float) -> None:
        self._wall += seconds
        self._mono += seconds

    def suspend(self, seconds: float) -> None:
        """A laptop asleep: the wall clock moves on, CLOCK_MONOTONIC does not."""
        self._wall += seconds

    def set_wall(self, delta: float) -> None:
        self._wall += delta


def scheduled(clock: FakeClock, duration: int = 3600, refresh_before: int = 1200) -> Scheduler:
    scheduler = Scheduler(clock, random.Random(7))
    scheduler.succeeded("bedrock", clock.wall() + duration, refresh_before, duration)
    return scheduler


def test_refresh_comes_refresh_before_ahead_of_expiry_with_a_small_earlier_jitter() -> None:
    rng = random.Random(1)
    times = [refresh_point(10_000.0, 1200, 3600, rng) for _ in range(2000)]
    assert all(10_000 - 1200 - 30 <= t <= 10_000 - 1200 for t in times)
    assert max(times) - min(times) > 20  # spread out, so profiles do not renew together
    # Short sessions get a jitter that still leaves the 15 s cadence of the 900/885 setting.
    short = [refresh_point(900.0, 885, 900, rng) for _ in range(500)]
    assert all(900 - 885 - 1.5 <= t <= 15 for t in short)


def test_not_due_before_the_deadline_and_due_after_it() -> None:
    clock = FakeClock()
    scheduler = scheduled(clock)
    clock.advance(2400 - 31)
    assert scheduler.due() == []
    clock.advance(31)
    assert scheduler.due() == ["bedrock"]


def test_a_laptop_waking_two_hours_later_refreshes_at_once() -> None:
    clock = FakeClock()
    scheduler = scheduled(clock)
    clock.advance(60)
    assert scheduler.due() == []
    clock.suspend(2 * 3600)
    assert scheduler.due() == ["bedrock"]
    assert scheduler.sleep_seconds() == 0


def test_a_wall_clock_set_back_two_hours_does_not_delay_the_refresh() -> None:
    clock = FakeClock()
    scheduler = scheduled(clock)
    clock.set_wall(-2 * 3600)
    clock.advance(2400 - 31)
    assert scheduler.due() == []
    clock.advance(31)
    assert scheduler.due() == ["bedrock"]  # on time by the monotonic clock


def test_sleep_is_short_enough_to_notice_a_wake_and_exact_near_a_deadline() -> None:
    clock = FakeClock()
    scheduler = scheduled(clock)
    assert scheduler.sleep_seconds() == WAKE_CHECK_SECONDS
    deadline = scheduler.entries["bedrock"].deadline
    clock.advance(deadline.wall - clock.wall() - 2.0)
    assert abs(scheduler.sleep_seconds() - 2.0) < 1e-6


def test_backoff_grows_from_about_5_s_to_a_5_min_cap_with_full_jitter() -> None:
    rng = random.Random(3)
    for attempts, ceiling in [(1, 5), (2, 10), (3, 20), (5, 80), (7, 300), (30, 300)]:
        delays = [backoff_seconds(attempts, rng) for _ in range(3000)]
        assert all(1.0 <= d <= ceiling for d in delays)
        assert max(delays) > 0.9 * ceiling  # full jitter reaches the ceiling...
        assert min(delays) < max(1.5, 0.1 * ceiling)  # ...and near zero
    assert BACKOFF_CAP_SECONDS == 300


def test_a_failure_that_waits_for_a_person_is_tried_again_within_its_own_window() -> None:
    """A locked keyring: neither the quick first retries nor the 5-minute cap, however many came
    before; at most a minute after the person unlocks it."""
    rng = random.Random(5)
    for attempts in (1, 2, 8, 40):
        delays = [backoff_seconds(attempts, rng, KEYRING_RETRY_SECONDS) for _ in range(2000)]
        assert all(0.75 * KEYRING_RETRY_SECONDS <= d <= KEYRING_RETRY_SECONDS for d in delays)
    assert KEYRING_RETRY_SECONDS == 60


def test_failures_back_off_and_a_success_resets_the_count() -> None:
    clock = FakeClock()
    scheduler = scheduled(clock)
    _, first = scheduler.failed("bedrock")
    deadline, second = scheduler.failed("bedrock")
    assert (first, second) == (1, 2)
    assert 1.0 <= deadline.wall - clock.wall() <= 10
    clock.advance(deadline.wall - clock.wall())
    assert scheduler.due() == ["bedrock"]
    scheduler.succeeded("bedrock", clock.wall() + 3600, 1200, 3600)
    assert scheduler.entries["bedrock"].attempts == 0
    assert scheduler.due() == []


def test_due_now_keeps_the_failure_count() -> None:
    clock = FakeClock()
    scheduler = scheduled(clock)
    scheduler.failed("bedrock")
    scheduler.due_now("bedrock")
    assert scheduler.due() == ["bedrock"]
    assert scheduler.entries["bedrock"].attempts == 1


def test_a_profile_in_flight_does_not_keep_the_daemon_awake() -> None:
    clock = FakeClock()
    scheduler = Scheduler(clock, random.Random(1))
    scheduler.due_now("busy")
    scheduler.succeeded("idle", clock.wall() + 3600, 300, 3600)
    assert scheduler.sleep_seconds() == 0.0
    assert scheduler.sleep_seconds(busy={"busy"}) == WAKE_CHECK_SECONDS
