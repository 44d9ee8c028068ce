"""The daemon's decisions, driven by a made-up clock: milliseconds, not real sessions."""

from __future__ import annotations

import random

import pytest

from credhelper.credentials import Credentials
from credhelper.policy import (
    REFRESH_CONCURRENCY,
    ConfigChange,
    Mode,
    Pending,
    Requests,
    Want,
    config_change,
    is_ready,
    short_session_warning,
    status_line,
    to_start,
    waiting,
    want,
    will_do,
)
from credhelper.profile import Profile, parse_profile
from credhelper.schedule import Scheduler
from credhelper.windows import MIN_RENEW_SECONDS, MIN_SCHEDULED_SECONDS
from tests.test_schedule import FakeClock

ROLE = "arn:aws:iam::123456789012:role/BedrockAccessRole"
NOW = 1_800_000_000.0


def profile(name: str = "bedrock", **settings: object) -> Profile:
    raw: dict[str, object] = {"role_arn": ROLE, "region": "us-east-1"}
    raw.update(settings)
    return parse_profile(name, raw, "config.toml", "credhelper-test")


def issued(at: float, lasting: float, key: str = "ASIAEXAMPLE000000001") -> Credentials:
    return Credentials(key, "secret", "token", expiration=at + lasting, issued_at=at)


# -- which refresh --------------------------------------------------------------------------


def test_a_profile_with_nothing_held_ensures_then_renews_on_schedule() -> None:
    pending = Pending()
    assert pending.mode("bedrock", None) is Mode.ENSURE
    assert pending.mode("bedrock", issued(NOW, 3600)) is Mode.RENEW


@pytest.mark.parametrize(
    ("requests", "expected"),
    [
        ([Mode.ENSURE], Mode.ENSURE),
        ([Mode.FORCE], Mode.FORCE),
        ([Mode.ENSURE, Mode.FORCE], Mode.FORCE),  # SIGUSR1 wins over a config change
        ([Mode.FORCE, Mode.ENSURE], Mode.FORCE),
    ],
)
def test_requests_pick_the_mode_force_first(requests: list[Mode], expected: Mode) -> None:
    pending = Pending()
    for mode in requests:
        pending.request("bedrock", mode)
    assert pending.mode("bedrock", issued(NOW, 3600)) is expected


def test_a_failed_obtain_retries_in_the_same_mode_and_success_clears_it() -> None:
    pending = Pending()
    held = issued(NOW, 3600)
    pending.request("bedrock", Mode.FORCE)
    assert pending.mode("bedrock", held) is Mode.FORCE  # nothing changed by a failure
    pending.delivered("bedrock")
    assert pending.mode("bedrock", held) is Mode.RENEW


def test_credentials_obtained_but_not_delivered_are_delivered_again_without_asking_sts() -> None:
    pending = Pending()
    held = issued(NOW, 3600)
    pending.request("bedrock", Mode.FORCE)
    pending.not_delivered("bedrock")  # a held target lock, a full disk
    assert pending.mode("bedrock", held) is Mode.ENSURE and pending.delivery_failed("bedrock")
    wanted = want(Mode.ENSURE, profile(), held, NOW + 5)
    assert will_do(held, wanted, NOW + 5)  # the cache serves the retry: no STS call
    pending.delivered("bedrock")
    assert not pending.delivery_failed("bedrock") and pending.mode("bedrock", held) is Mode.RENEW


def test_what_each_mode_wants() -> None:
    bedrock = profile(duration_seconds=3600, refresh_before_seconds=1200)
    held = issued(NOW - 2400, 3600)
    assert want(Mode.FORCE, bedrock, held, NOW) == Want(MIN_RENEW_SECONDS, issued_after=NOW)
    assert want(Mode.ENSURE, bedrock, held, NOW) == Want(bedrock.handout_seconds)
    renew = want(Mode.RENEW, bedrock, held, NOW)
    assert renew.min_seconds_left == 1200 and renew.issued_after is not None
    assert not will_do(held, renew, NOW)  # the held set itself is not a renewal
    other = issued(NOW - 10, 3600, key="ASIAEXAMPLE000000002")
    assert will_do(other, renew, NOW)  # another process's newer set is


# -- credentials that arrive short ------------------------------------------------------------


def test_credentials_that_arrive_short_do_until_half_their_life() -> None:
    wanted = Want(min_seconds_left=840)  # handout of duration 900, refresh_before 800
    short = issued(NOW, 790)  # a clock 110 s ahead of AWS's
    assert will_do(short, wanted, NOW + 1)
    assert will_do(short, wanted, NOW + 394)
    assert not will_do(short, wanted, NOW + 396)
    aged = Credentials("ASIAEXAMPLE000000001", "s", "t", expiration=NOW + 790, issued_at=NOW - 2810)
    assert not will_do(aged, wanted, NOW)  # an hour's session that aged is renewed as usual


def test_expired_credentials_never_do() -> None:
    tiny = issued(NOW, 30)
    assert will_do(tiny, Want(840), NOW + 29)
    assert not will_do(tiny, Want(840), NOW + 30)


@pytest.mark.parametrize(
    ("lasting", "renew_after"),
    [
        (790, 395),  # half the remaining life
        (799, 399.5),
        (100, MIN_RENEW_SECONDS),  # never sooner than a minute
    ],
)
def test_short_credentials_are_renewed_at_half_their_life_never_sooner_than_a_minute(
    lasting: float, renew_after: float
) -> None:
    clock = FakeClock(NOW)
    scheduler = Scheduler(clock, random.Random(3))
    deadline = scheduler.succeeded("bedrock", NOW + lasting, 800, 900, issued_at=NOW)
    assert deadline.wall == pytest.approx(NOW + renew_after)


def test_short_credentials_cost_one_sts_call_per_half_life_not_one_per_second() -> None:
    """Ten minutes of a daemon whose sessions arrive with 790 s left (duration 900, refresh_before 800)."""
    clock = FakeClock(NOW)
    scheduler = Scheduler(clock, random.Random(5))
    bedrock = profile(duration_seconds=900, refresh_before_seconds=800)
    pending = Pending()
    held: Credentials | None = None
    calls = 0
    scheduler.due_now("bedrock")
    for _ in range(600):
        if "bedrock" in scheduler.due():
            wanted = want(pending.mode("bedrock", held), bedrock, held, clock.wall())
            if held is None or not will_do(held, wanted, clock.wall()):
                calls += 1
                held = issued(clock.wall(), 790, key=f"ASIAEXAMPLE{calls:09d}")
            pending.delivered("bedrock")
            scheduler.succeeded("bedrock", held.expiration, 800, 900, held.issued_at)
        clock.advance(1)
    assert calls == 2  # at 0 s and at 395 s


def test_a_session_a_hair_over_refresh_before_is_not_renewed_every_second() -> None:
    clock = FakeClock(NOW)
    scheduler = Scheduler(clock, random.Random(3))
    deadline = scheduler.succeeded("bedrock", NOW + 801, 800, 900, issued_at=NOW)
    assert deadline.wall == NOW + MIN_SCHEDULED_SECONDS
    ordinary = scheduler.succeeded("bedrock", NOW + 900, 885, 900, issued_at=NOW)  # renewed every 15 s
    assert NOW + 13 <= ordinary.wall <= NOW + 15


def test_the_warning_names_both_likely_causes_only_for_short_credentials() -> None:
    bedrock = profile(duration_seconds=900, refresh_before_seconds=800)
    warning = short_session_warning(bedrock, issued(NOW, 790))
    assert warning is not None
    assert "clock" in warning and "maximum session duration" in warning and "790 s" in warning
    assert short_session_warning(bedrock, issued(NOW, 800)) is None


# -- configuration changes --------------------------------------------------------------------


def test_config_change_tells_added_removed_changed_and_rekeyed_profiles() -> None:
    old = {
        "same": profile("same"),
        "gone": profile("gone"),
        "hooked": profile("hooked"),
        "longer": profile("longer"),
        "other-role": profile("other-role"),
    }
    new = {
        "same": profile("same"),
        "hooked": profile("hooked", on_refresh=["true"]),
        "longer": profile("longer", duration_seconds=7200),
        "other-role": profile("other-role", role_arn=ROLE.replace("Bedrock", "Other")),
        "new": profile("new"),
    }
    change = config_change(old, new)
    assert change.added == {"new"}
    assert change.removed == {"gone"}
    assert change.changed == {"hooked"}  # held credentials still belong to it
    assert change.rekeyed == {"longer", "other-role"}  # held credentials are not its any more
    assert change.to_ensure == {"new", "hooked", "longer", "other-role"}


def test_an_unchanged_config_changes_nothing() -> None:
    same = {"bedrock": profile()}
    assert config_change(same, {"bedrock": profile()}) == ConfigChange(
        frozenset(), frozenset(), frozenset(), frozenset()
    )


# -- what to report ---------------------------------------------------------------------------


def test_ready_only_once_every_profile_was_delivered() -> None:
    assert not is_ready([], set())
    assert not is_ready(["a", "b"], {"a"})
    assert is_ready(["a", "b"], {"a", "b", "removed"})


def test_status_line_shows_next_refresh_or_retry_and_at_most_five_profiles() -> None:
    clock = FakeClock(NOW)
    scheduler = Scheduler(clock, random.Random(1))
    names = [f"p{i}" for i in range(7)]
    for name in names:
        scheduler.succeeded(name, NOW + 3600, 1200, 3600, issued_at=NOW)
    scheduler.failed("p0")
    line = status_line(names, scheduler.entries)
    assert line.startswith("STATUS=p0: retry 20")
    assert "p1: next refresh 20" in line
    assert "p4:" in line and "p5:" not in line and line.endswith("; ...")
    assert status_line(["unknown"], scheduler.entries) == "STATUS="


def test_a_profile_in_backoff_is_retrying_and_a_success_ends_it() -> None:
    from credhelper.policy import retrying

    clock = FakeClock(NOW)
    scheduler = Scheduler(clock, random.Random(2))
    assert not retrying(scheduler.entries.get("bedrock"))
    scheduler.due_now("bedrock")
    assert not retrying(scheduler.entries["bedrock"])  # the first attempt is still to come
    scheduler.failed("bedrock")
    assert retrying(scheduler.entries["bedrock"])
    scheduler.succeeded("bedrock", NOW + 3600, 1200, 3600, issued_at=NOW)
    assert not retrying(scheduler.entries["bedrock"])


def test_to_start_never_starts_a_profile_in_flight_and_keeps_the_bound() -> None:
    bound = REFRESH_CONCURRENCY
    due = [f"p{n}" for n in range(bound + 12)]
    assert to_start(due, in_flight=set()) == due[:bound]
    assert to_start(due, in_flight={"p0", "p1", "p2"}) == due[3:bound]
    assert to_start(due, in_flight={f"p{n}" for n in range(bound)}) == []
    assert to_start(["p0"], in_flight={"p0"}, bound=bound) == []


def test_requests_for_a_profile_in_flight_are_held_back_not_dropped() -> None:
    asked = Requests(force={"a", "b"}, ensure={"a", "c"}, paths={"/a.env", "/c.env", "/config.toml"})
    requests = Requests(force=set(asked.force), ensure=set(asked.ensure), paths=set(asked.paths))
    later = requests.held_back(busy={"a"}, busy_paths={"/a.env"})
    assert later == Requests(force={"a"}, ensure={"a"}, paths={"/a.env"})
    assert requests == Requests(force={"b"}, ensure={"c"}, paths={"/c.env", "/config.toml"})
    requests.merge(later)
    assert requests == asked


def test_profiles_waiting_for_a_slot_do_not_wake_the_daemon_until_a_refresh_ends() -> None:
    due = [f"p{n}" for n in range(REFRESH_CONCURRENCY + 12)]
    full = set(due[:REFRESH_CONCURRENCY])
    assert waiting(due, in_flight=full) == set(due)  # nothing can start before one ends
    assert waiting(due, in_flight={"p0"}) == {"p0"}  # a free slot: the due ones start now
