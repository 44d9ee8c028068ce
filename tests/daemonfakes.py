"""A daemon's coordinator in a world made up in memory, on a made-up clock: what tests/test_coordinator.py
drives, in milliseconds."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from pathlib import Path

from credhelper.config import Config, config_from_data
from credhelper.credentials import Credentials
from credhelper.daemon.coordinator import EVENT_SETTLE_SECONDS, Coordinator
from credhelper.daemon.interfaces import Attempt
from credhelper.errors import CredhelperError
from credhelper.policy import will_do
from credhelper.profile import Profile
from credhelper.supply import Supplied
from credhelper.targets.delivery import DeliveryReport
from credhelper.targets.keeper import TargetClaims
from tests.test_schedule import FakeClock

ROLE = "arn:aws:iam::123456789012:role/BedrockAccessRole"
OTHER_ROLE = "arn:aws:iam::123456789012:role/OtherRole"
NOW = 1_800_000_000.0


def make_config(root: Path, names: Iterable[str], **settings: object) -> Config:
    """Profiles of one role and source, each with its own app's `.env` under `root`."""
    tables = {}
    for name in names:
        table: dict[str, object] = {
            "role_arn": ROLE,
            "source_profile": "developer",
            "region": "us-east-1",
            "env_files": [str(root / name / ".env")],
        }
        table.update(settings)
        tables[name] = table
    return config_from_data({"profiles": tables}, str(root / "config.toml"), {})


class FakeWorld:
    """What a daemon acts on, in memory. STS issues numbered key ids (or raises the failures queued
    for a profile); the cache serves a set that will do, by the policy the refresher follows
    (`policy.will_do`); targets hold key ids, and one that holds the set already is left unchanged;
    refresh jobs wait in `jobs` until the test runs them."""

    def __init__(self, clock: FakeClock, config: Config, root: Path) -> None:
        self.clock = clock
        self.config: Config | CredhelperError = config
        self.credentials_file = str(root / ".aws" / "credentials")
        self.jobs: list[tuple[str, Callable[[], None]]] = []
        self.attempts: list[Attempt] = []
        self.failures: dict[str, list[CredhelperError]] = {}  # STS's next answers, per profile
        self.refused: dict[str, CredhelperError] = {}  # targets that cannot be written, by path
        self.sts_calls: list[str] = []
        self.cache: dict[tuple[str, str], Credentials] = {}
        self.targets: dict[str, str] = {}  # path: the key id it holds
        self.restores: list[tuple[str, str]] = []  # (profile, key id), in order
        self.states: dict[str, dict[str, object]] = {}
        self.digest = "source keys 1"
        self.sources_forgotten = 0
        self.watched: list[set[str]] = []
        self.issued = 0

    # -- coordinator.World ---------------------------------------------------------------------

    def load_config(self) -> Config:
        if isinstance(self.config, CredhelperError):
            raise self.config
        return self.config

    def start(self, name: str, job: Callable[[], None]) -> None:
        self.jobs.append((name, job))

    def refresh(self, attempt: Attempt) -> Supplied:
        self.attempts.append(attempt)
        key = (attempt.profile.name, attempt.profile.fingerprint)
        found = self.cache.get(key)
        if found is None or not will_do(found, attempt.wanted, self.clock.wall()):
            self.sts_calls.append(attempt.profile.name)
            failures = self.failures.get(attempt.profile.name)
            if failures:
                raise failures.pop(0)
            found = self.cache[key] = self._issue(attempt.profile)
        return Supplied(found, self._deliver(attempt.kept, found))

    def restore(self, profile: Profile, credentials: Credentials) -> DeliveryReport:
        self.restores.append((profile.name, credentials.access_key_id))
        return self._deliver(profile, credentials)

    def record_state(self, name: str, changes: dict[str, object]) -> None:
        self.states.setdefault(name, {}).update(changes)

    def source_digest(self, profiles: Iterable[Profile]) -> str:
        return self.digest

    def forget_sources(self) -> None:
        self.sources_forgotten += 1

    def watch(self, directories: set[str]) -> None:
        self.watched.append(set(directories))

    # -- for the tests ---------------------------------------------------------------------------

    def run_jobs(self) -> None:
        """The refreshes in flight end, in the order they started."""
        jobs, self.jobs = self.jobs, []
        for _, job in jobs:
            job()

    def run_job(self, name: str) -> None:
        """The refresh of `name` in flight ends."""
        job = next(job for started, job in self.jobs if started == name)
        self.jobs.remove((name, job))
        job()

    def _issue(self, profile: Profile) -> Credentials:
        self.issued += 1
        now = self.clock.wall()
        return Credentials(
            f"ASIAFAKE{self.issued:012d}", "secret", "token", now + profile.duration_seconds, now
        )

    def _deliver(self, profile: Profile, credentials: Credentials) -> DeliveryReport:
        report = DeliveryReport()
        for path in profile.env_files:
            if path in self.refused:
                report.errors.append(self.refused[path])
            elif self.targets.get(path) == credentials.access_key_id:
                report.unchanged.append(Path(path))
            else:
                self.targets[path] = credentials.access_key_id
                report.written.append(Path(path))
        return report


class FakeNotifier:
    def __init__(self) -> None:
        self.messages: list[str] = []
        self.watchdog_interval: float | None = None

    def send(self, *fields: str) -> None:
        self.messages.append("\n".join(fields))

    def watchdog(self) -> None:
        pass

    @property
    def statuses(self) -> list[str]:
        return [m for m in self.messages if m.startswith("STATUS=")]


class Rig:
    """A coordinator started as `credhelper run` starts it (configuration loaded, watches set),
    its first tick made: the first refresh of every profile in flight."""

    def __init__(self, root: Path, names: Iterable[str] = ("bedrock",), **settings: object) -> None:
        self.root = root
        self.clock = FakeClock(NOW)
        self.world = FakeWorld(self.clock, make_config(root, names, **settings), root)
        self.notifier = FakeNotifier()
        self.claims = TargetClaims()
        self.coordinator = Coordinator(
            self.clock, self.world, self.notifier, claims=self.claims, rng=random.Random(7)
        )
        self.coordinator.start()
        self.coordinator.rewatch()
        self.let_paths_settle()  # the first tick, and the look at every target the watches asked for

    def let_paths_settle(self) -> None:
        """A tick, and one more once changed paths have settled (they wait EVENT_SETTLE_SECONDS
        from the tick that first took them)."""
        self.coordinator.tick()
        self.clock.advance(EVENT_SETTLE_SECONDS)
        self.coordinator.tick()

    def settle(self) -> None:
        """Tick, letting every refresh started end and changed paths settle, until nothing more is
        to be done now."""
        for _ in range(50):
            self.coordinator.tick()
            if self.world.jobs:
                self.world.run_jobs()
            elif self.coordinator.outcomes.empty() and self.coordinator.settle_until is None:
                return
            elif self.coordinator.settle_until is not None:
                self.clock.advance(EVENT_SETTLE_SECONDS)
        raise AssertionError("the coordinator kept starting refreshes")

    def key(self, name: str = "bedrock") -> str | None:
        """The key id the profile's `.env` holds."""
        return self.world.targets.get(self.env(name))

    def env(self, name: str = "bedrock") -> str:
        return str(self.root / name / ".env")

    def state(self, name: str = "bedrock") -> dict[str, object]:
        return self.world.states.get(name, {})

    def planned(self, what: str, name: str = "bedrock") -> float:
        """The time the state file gives for `what` (next_refresh, next_try)."""
        when = self.state(name)[what]
        assert isinstance(when, float), f"{name}: no {what} recorded"
        return when

    def run_until(self, wall: float, step: float = 1.0) -> None:
        """Time passes until `wall`, the daemon ticking every `step` seconds and every refresh it
        starts ending at once."""
        while self.clock.wall() < wall:
            self.clock.advance(min(step, wall - self.clock.wall()))
            self.settle()
