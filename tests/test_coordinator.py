"""The daemon's coordinator, on a made-up clock in a made-up world (tests/daemonfakes.py): what
`credhelper run` does and when, in milliseconds. The policy it follows has its own tables
(test_policy.py, test_schedule.py); these check that the coordinator follows it."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from credhelper.credentials import format_utc
from credhelper.errors import ConfigError, CredhelperError, StsUnavailableError
from credhelper.keystore import KeyringLocked
from credhelper.policy import REFRESH_CONCURRENCY
from credhelper.schedule import BACKOFF_BASE_SECONDS, WAKE_CHECK_SECONDS
from credhelper.targets.keeper import TargetClaims
from credhelper.windows import KEYRING_RETRY_SECONDS, MAX_JITTER_SECONDS
from tests.daemonfakes import NOW, OTHER_ROLE, Rig, make_config

Start = Callable[[list[str]], Rig]


@pytest.fixture
def start(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> Iterator[Start]:
    """Starts coordinators for the named profiles; their claims on targets are released at the end."""
    caplog.set_level(logging.INFO, logger="credhelper.daemon")
    started: list[Rig] = []

    def started_with(names: list[str]) -> Rig:
        started.append(Rig(tmp_path, names))
        return started[-1]

    yield started_with
    for rig in started:
        rig.claims.release_all()


@pytest.fixture
def rig(start: Start) -> Rig:
    return start(["bedrock"])


# -- the first refresh, READY, renewal ----------------------------------------------------------


def test_ready_is_told_once_every_profile_has_its_targets_written(start: Start) -> None:
    rig = start(["bedrock", "other"])
    assert sorted(name for name, _ in rig.world.jobs) == ["bedrock", "other"], "both refresh at once"
    rig.world.run_job("bedrock")  # bedrock's ends first
    rig.coordinator.tick()
    assert str(rig.key("bedrock")).startswith("ASIA")
    assert "READY=1" not in rig.notifier.messages, "READY=1 before every .env was written"
    rig.settle()
    assert rig.notifier.messages.count("READY=1") == 1
    assert rig.world.sts_calls == ["bedrock", "other"], "one STS call per profile"
    rig.run_until(NOW + 60)
    assert rig.notifier.messages.count("READY=1") == 1, "READY=1 is said once"


def test_renewal_comes_refresh_before_ahead_of_expiry_spread_by_the_jitter(start: Start) -> None:
    names = [f"p{number}" for number in range(8)]
    rig = start(names)
    rig.settle()
    first = {name: rig.key(name) for name in names}
    expiry = next(iter(rig.world.cache.values())).expiration  # one hour sessions, renewed 1200 s ahead
    planned = {name: rig.planned("next_refresh", name) for name in names}
    for name, when in planned.items():
        assert expiry - 1200 - MAX_JITTER_SECONDS <= when <= expiry - 1200, name
    assert len({round(when) for when in planned.values()}) > 1, "every profile renews in the same second"
    rig.run_until(expiry - 1200 - MAX_JITTER_SECONDS - 1, step=60)
    assert len(rig.world.sts_calls) == len(names), "a renewal before its time"
    while rig.clock.wall() < expiry - 1200:
        rig.clock.advance(0.5)
        rig.coordinator.tick()
        for name, _ in rig.world.jobs:
            assert rig.clock.wall() >= planned[name], f"{name} renewed before its deadline"
            assert rig.clock.wall() - 1.0 < planned[name], f"{name} renewed late"
        rig.world.run_jobs()
    rig.settle()
    assert len(rig.world.sts_calls) == 2 * len(names)
    renewals = rig.world.attempts[len(names) :]
    assert all(a.held and a.wanted.issued_after for a in renewals), "a renewal asks for a newer set"
    assert all(rig.key(name) not in (None, first[name]) for name in names)


def test_the_daemon_sleeps_until_the_next_deadline_at_most_a_few_seconds(rig: Rig) -> None:
    rig.settle()
    assert rig.coordinator.pause() == WAKE_CHECK_SECONDS  # so a laptop waking late is noticed
    rig.run_until(rig.planned("next_refresh") - 2, step=60)
    assert 0 < rig.coordinator.pause() <= 2


# -- failures and backoff ---------------------------------------------------------------------


def test_a_failing_refresh_backs_off_keeps_the_old_credentials_then_recovers(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    rig.settle()
    first = rig.key("bedrock")
    rig.world.failures["bedrock"] = [StsUnavailableError("STS is throttling (Throttling)")] * 3
    rig.clock.advance(1)
    rig.coordinator.ask_refresh_all()  # SIGUSR1
    rig.settle()
    for attempt in (1, 2, 3):
        assert rig.key("bedrock") == first, "the old credentials left the .env while STS failed"
        assert f"(Throttling) (attempt {attempt}; next try in" in caplog.text
        retry = rig.planned("next_try")
        ceiling = BACKOFF_BASE_SECONDS * 2 ** (attempt - 1)
        assert 1.0 <= retry - rig.clock.wall() <= ceiling
        assert rig.state()["next_refresh"] is None
        assert rig.notifier.statuses[-1] == f"STATUS=bedrock: retry {format_utc(retry)}"
        calls = len(rig.world.sts_calls)
        rig.coordinator.ask_ensure("bedrock")  # a request at the endpoint meanwhile
        rig.run_until(retry - 0.5, step=0.25)
        assert len(rig.world.sts_calls) == calls, "a retry before the backoff's time"
        rig.run_until(retry)
    assert rig.key() not in (None, first), "the retries must bring new credentials, as SIGUSR1 asked"
    assert len(rig.world.sts_calls) == 1 + 4
    assert rig.state()["next_try"] is None and rig.state()["next_refresh"] is not None
    assert rig.notifier.statuses[-1].startswith("STATUS=bedrock: next refresh ")


def test_a_locked_keyring_is_looked_at_about_once_a_minute_and_recovers_within_one(rig: Rig) -> None:
    locked = KeyringLocked("keyring (SecretService Keyring) is locked, so credhelper cannot read it")
    rig.world.failures["bedrock"] = [locked] * 1000
    rig.settle()
    assert len(rig.world.attempts) == 1 and rig.key() is None
    rig.run_until(rig.clock.wall() + 600, step=5)
    lookups = len(rig.world.attempts) - 1
    assert 10 <= lookups <= 14, f"{lookups} keyring lookups in ten minutes"
    assert rig.key() is None

    rig.world.failures["bedrock"] = []  # the person unlocks it
    unlocked = rig.clock.wall()
    rig.run_until(unlocked + KEYRING_RETRY_SECONDS, step=1)
    assert rig.key() is not None, "not recovered within a minute of the unlock"
    assert rig.state()["next_try"] is None


def test_a_target_that_refuses_the_credentials_is_retried_from_the_cache_with_backoff(
    start: Start, caplog: pytest.LogCaptureFixture
) -> None:
    rig = start(["bedrock", "other"])
    rig.world.refused[rig.env()] = CredhelperError("cannot write ~/bedrock/.env: Read-only file system")
    rig.settle()
    assert "Read-only file system" in str(rig.state()["last_error"])
    assert rig.key("other") is not None, "one profile's failing target stalls another"
    assert "READY=1" not in rig.notifier.messages
    for _ in range(2):
        rig.run_until(rig.planned("next_try"))
    assert caplog.text.count("Read-only file system (attempt") == 3
    assert rig.world.sts_calls.count("bedrock") == 1, "a target that cannot be written made new STS calls"
    del rig.world.refused[rig.env()]
    rig.run_until(rig.planned("next_try"))
    assert rig.key("bedrock") is not None and rig.state()["last_error"] is None
    assert rig.world.sts_calls.count("bedrock") == 1
    assert "READY=1" in rig.notifier.messages


def test_a_target_another_daemon_keeps_is_left_to_it_until_it_stops(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    rig.settle()
    rig.claims.release_all()  # this daemon stops keeping it for a while ...
    other = TargetClaims()
    try:
        other.kept(rig.coordinator.profiles["bedrock"])  # ... and another daemon claims it
        rig.world.targets.clear()
        rig.clock.advance(1)
        rig.coordinator.ask_refresh_all()
        rig.settle()
        for _ in range(2):
            rig.run_until(rig.planned("next_try"))
        assert rig.key("bedrock") is None, "two daemons overwrote each other's target"
        said = [r.message for r in caplog.records if r.levelno == logging.ERROR and "kept by" in r.message]
        assert len(said) == 1, "the other daemon's pid is said once, not at every try"
        assert f"pid {os.getpid()}" in said[0]
        assert "(attempt 3;" in caplog.text
    finally:
        other.release_all()
    rig.run_until(rig.planned("next_try"))
    assert rig.key("bedrock") is not None, "once the other daemon stops, this one keeps the target"


# -- requests: SIGUSR1, rotated source keys, a refresh in flight ---------------------------------


def test_sigusr1_refreshes_every_profile_now_with_one_sts_call_each(start: Start) -> None:
    rig = start(["bedrock", "other"])
    rig.settle()
    first = dict(rig.world.targets)
    rig.clock.advance(1)
    rig.coordinator.ask_refresh_all()
    rig.settle()
    assert len(rig.world.sts_calls) == 4
    assert all(rig.world.targets[path] != key for path, key in first.items())


def test_sigusr1_while_a_refresh_is_in_flight_is_not_lost(rig: Rig) -> None:
    assert len(rig.world.jobs) == 1  # the first refresh, in flight
    rig.coordinator.ask_refresh_all()  # asked after it began: that one does not serve it
    rig.coordinator.tick()
    assert len(rig.world.jobs) == 1, "two refreshes of one profile at once"
    rig.world.run_jobs()
    first = rig.key("bedrock")
    rig.clock.advance(1)
    rig.coordinator.tick()
    assert len(rig.world.jobs) == 1, "the forced refresh must start once the first has ended"
    rig.settle()
    assert rig.key("bedrock") not in (None, first)
    assert len(rig.world.sts_calls) == 2


def test_rotated_source_keys_refresh_every_profile_and_other_edits_of_the_file_do_not(
    start: Start, caplog: pytest.LogCaptureFixture
) -> None:
    rig = start(["bedrock", "other"])
    rig.settle()
    rig.clock.advance(1)
    rig.world.digest = "source keys 2"
    rig.coordinator.paths_changed([rig.world.credentials_file])
    rig.let_paths_settle()
    rig.settle()
    assert "source credentials changed; refreshing every profile" in caplog.text
    assert rig.world.sources_forgotten == 1 and len(rig.world.sts_calls) == 4
    rig.coordinator.paths_changed([rig.world.credentials_file])  # another section edited
    rig.let_paths_settle()
    rig.settle()
    assert len(rig.world.sts_calls) == 4 and rig.world.sources_forgotten == 1


# -- restores ---------------------------------------------------------------------------------


def test_an_overwritten_target_gets_the_held_credentials_back_without_sts(rig: Rig) -> None:
    rig.settle()
    held = rig.key("bedrock")
    rig.world.restores.clear()  # the look at every target after the watches were set
    rig.world.targets[rig.env()] = "overwritten by someone"
    rig.coordinator.paths_changed([rig.env(), str(rig.root / "bedrock" / "unrelated")])
    rig.coordinator.tick()
    assert rig.world.restores == [], "an editor's burst of events must land as one"
    assert rig.coordinator.pause() <= 0.05
    rig.let_paths_settle()
    assert rig.world.restores == [("bedrock", held)]
    assert rig.key("bedrock") == held
    assert rig.world.sts_calls == ["bedrock"] and rig.world.jobs == [], "restoring never calls STS"


def test_a_target_changed_during_its_refresh_gets_the_new_set_not_the_old(rig: Rig) -> None:
    rig.settle()
    rig.world.restores.clear()
    rig.clock.advance(1)
    rig.coordinator.ask_refresh_all()
    rig.coordinator.tick()
    rig.coordinator.paths_changed([rig.env()])
    rig.let_paths_settle()
    assert rig.world.restores == [], "a restore wrote back the set its refresh is replacing"
    rig.world.run_jobs()
    rig.let_paths_settle()
    assert rig.world.restores == [("bedrock", rig.key())]


def test_expired_credentials_are_never_written_back(rig: Rig) -> None:
    rig.settle()
    rig.world.failures["bedrock"] = [StsUnavailableError("STS is unreachable")] * 1000
    rig.run_until(NOW + 3600 + 1, step=30)
    rig.world.restores.clear()
    rig.coordinator.paths_changed([rig.env()])
    rig.let_paths_settle()
    assert rig.world.restores == []


# -- configuration reloads, the status line ------------------------------------------------------


def test_a_reload_that_changes_the_role_gets_credentials_of_the_new_role(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    rig.settle()
    first = rig.key("bedrock")
    rig.world.config = make_config(rig.root, ["bedrock"], role_arn=OTHER_ROLE)
    rig.coordinator.ask_reload()  # SIGHUP
    rig.settle()
    assert "configuration reloaded: 1 profile(s)" in caplog.text
    assert rig.world.attempts[-1].held is None, "credentials of the old role taken for the new one"
    assert rig.world.attempts[-1].profile.role_arn == OTHER_ROLE
    assert len(rig.world.sts_calls) == 2 and rig.key("bedrock") not in (None, first)


def test_a_config_edit_that_keeps_the_role_writes_a_new_target_from_the_cache(rig: Rig) -> None:
    rig.settle()
    held = rig.key("bedrock")
    second = str(rig.root / "second" / ".env")
    rig.world.config = make_config(rig.root, ["bedrock"], env_files=[rig.env(), second])
    rig.coordinator.paths_changed([str(rig.root / "config.toml")])  # the file watch saw the edit
    rig.let_paths_settle()
    rig.settle()
    assert rig.world.targets[second] == held
    assert rig.world.sts_calls == ["bedrock"], "same role settings: the cache must serve"
    assert str(rig.root / "second") in rig.world.watched[-1], "the new target's directory is not watched"


def test_every_target_is_looked_at_again_once_the_watches_are_replaced(rig: Rig) -> None:
    rig.settle()
    held = rig.key()
    rig.world.targets[rig.env()] = "overwritten while the watches were being replaced: no event"
    rig.world.config = make_config(rig.root, ["bedrock", "other"])  # a new directory to watch
    rig.coordinator.ask_reload()
    rig.settle()
    assert rig.key() == held and rig.world.sts_calls == ["bedrock", "other"]


def test_a_bad_edit_keeps_the_previous_configuration_in_force(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    rig.settle()
    held = rig.key("bedrock")
    rig.world.config = ConfigError("config.toml: malformed TOML: expected ']' (line 1)")
    rig.coordinator.ask_reload()
    rig.settle()
    assert "configuration not reloaded, the previous one stays in force: config.toml: malformed TOML" in (
        caplog.text
    )
    rig.world.targets[rig.env()] = "overwritten"
    rig.coordinator.paths_changed([rig.env()])
    rig.let_paths_settle()
    assert rig.key("bedrock") == held, "the daemon stopped keeping its targets after a bad edit"


def test_the_status_line_shows_each_next_refresh_or_retry_and_is_sent_when_it_changes(start: Start) -> None:
    rig = start(["bedrock", "other"])
    rig.settle()
    refresh = {name: format_utc(rig.planned("next_refresh", name)) for name in ("bedrock", "other")}
    expected = f"STATUS=bedrock: next refresh {refresh['bedrock']}; other: next refresh {refresh['other']}"
    assert rig.notifier.statuses[-1] == expected
    sent = len(rig.notifier.statuses)
    rig.run_until(NOW + 60)
    assert len(rig.notifier.statuses) == sent, "an unchanged status line was sent again"
    rig.world.failures["other"] = [StsUnavailableError("STS is unreachable")]
    rig.clock.advance(1)
    rig.coordinator.ask_refresh_all()
    rig.settle()
    retry = format_utc(rig.planned("next_try", "other"))
    assert rig.notifier.statuses[-1].endswith(f"; other: retry {retry}")


# -- many profiles, and stopping ----------------------------------------------------------------

MANY = REFRESH_CONCURRENCY + 8  # more than one wave


def test_a_wave_refreshes_a_bounded_number_at_a_time_and_ready_waits_for_all(
    start: Start, caplog: pytest.LogCaptureFixture
) -> None:
    rig = start([f"p{number}" for number in range(MANY)])
    assert len(rig.world.jobs) == REFRESH_CONCURRENCY
    rig.world.run_jobs()
    rig.coordinator.tick()
    assert len(rig.world.jobs) == MANY - REFRESH_CONCURRENCY, "the next wave must start as slots free"
    assert "READY=1" not in rig.notifier.messages, "READY=1 before every .env was written"
    rig.settle()
    assert "READY=1" in rig.notifier.messages
    assert len(rig.world.sts_calls) == MANY and len(rig.world.targets) == MANY, "one STS call per profile"
    assert caplog.text.count(": wrote ") == MANY


def test_stop_during_a_wave_starts_no_more_refreshes(start: Start) -> None:
    rig = start([f"p{number}" for number in range(MANY)])
    rig.coordinator.stop()  # SIGTERM, with a wave in flight
    rig.world.run_jobs()
    rig.coordinator.tick()
    assert rig.world.jobs == [], "a refresh started after SIGTERM"
    assert len(rig.world.sts_calls) == REFRESH_CONCURRENCY
    rig.coordinator.loop()  # returns at once


def test_a_request_wakes_the_sleeping_scheduler_at_once(rig: Rig) -> None:
    rig.settle()
    assert rig.coordinator.pause() == WAKE_CHECK_SECONDS
    rig.coordinator.wake.clear()
    loop = threading.Thread(target=rig.coordinator.loop, daemon=True)
    loop.start()
    try:
        time.sleep(0.2)  # asleep, for WAKE_CHECK_SECONDS
        rig.clock.advance(1)
        started = time.monotonic()
        rig.coordinator.ask_refresh_all()  # SIGUSR1, or a request at the endpoint
        while not rig.world.jobs and time.monotonic() - started < 2.0:
            time.sleep(0.005)
        assert rig.world.jobs and time.monotonic() - started < 1.0, "the refresh waited for the next wake"
    finally:
        rig.coordinator.stop()
        loop.join(2.0)


def test_stop_ends_the_scheduler_loop_at_once_during_a_wave(start: Start) -> None:
    rig = start([f"p{number}" for number in range(MANY)])
    rig.settle()
    rig.clock.advance(1)
    rig.coordinator.ask_refresh_all()
    rig.coordinator.tick()  # a wave in flight, the rest waiting for a slot: nothing to do for a while
    assert rig.coordinator.pause() == WAKE_CHECK_SECONDS
    rig.coordinator.wake.clear()
    loop = threading.Thread(target=rig.coordinator.loop, daemon=True)
    loop.start()
    time.sleep(0.2)
    started = time.monotonic()
    rig.coordinator.stop()
    loop.join(2.0)
    assert not loop.is_alive() and time.monotonic() - started < 1.0, "the scheduler slept through SIGTERM"
    assert len(rig.world.jobs) == REFRESH_CONCURRENCY
