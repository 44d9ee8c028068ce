"""The daemon's decisions as pure functions of (state, event, now): which refresh to make, whether
cached credentials will do, what a configuration change means, what to tell systemd. No I/O; the
daemon's threads only carry these out, and tests drive them with a made-up clock."""

from __future__ import annotations

import enum
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field

from .credentials import Credentials, format_utc
from .profile import Profile
from .schedule import Entry
from .windows import MIN_RENEW_SECONDS, arrived_short, half_life

STATUS_PROFILES_SHOWN = 5
# Refreshes in flight at once: a wave of 100 profiles takes about 100 / 16 = 7 STS round trips (with
# 8, 13 round trips missed READY in 3 s at 150 ms each), and STS sees no burst large enough to throttle.
REFRESH_CONCURRENCY = 16


class Mode(enum.Enum):
    FORCE = "force"  # new credentials from STS now (SIGUSR1, rotated source keys)
    ENSURE = "ensure"  # cached ones will do if they last the handout window (start, config change,
    # a request at the endpoint finding none, credentials obtained but not yet delivered)
    RENEW = "renew"  # the scheduled renewal: newer than the ones held, or someone else's newer set


@dataclass(frozen=True)
class Want:
    """What `Refresher.obtain` must return for a refresh of a given mode."""

    min_seconds_left: float
    issued_after: float | None = None


def want(mode: Mode, profile: Profile, held: Credentials | None, now: float) -> Want:
    if mode is Mode.FORCE:
        return Want(MIN_RENEW_SECONDS, issued_after=now)
    if mode is Mode.ENSURE or held is None:
        return Want(profile.handout_seconds)
    # Another process (credential-process, refresh) may have renewed meanwhile: that set will do.
    return Want(profile.refresh_before_seconds, issued_after=held.issued_at + 1e-3)


def will_do(credentials: Credentials, wanted: Want, now: float) -> bool:
    """Whether cached credentials satisfy `wanted`.

    Credentials that arrived with less life than asked (a clock ahead of AWS's, a role whose maximum
    session is shorter than duration_seconds) do until half their life has passed: a new set
    would be just as short, so asking sooner only multiplies STS calls.
    """
    if wanted.issued_after is not None and credentials.issued_at < wanted.issued_after:
        return False
    left = credentials.seconds_left(now)
    if left >= wanted.min_seconds_left:
        return True
    if left <= 0:
        return False
    expiration, issued_at = credentials.expiration, credentials.issued_at
    short = expiration > issued_at and arrived_short(expiration, issued_at, wanted.min_seconds_left)
    return short and now < half_life(issued_at, expiration)


def short_session_warning(profile: Profile, credentials: Credentials) -> str | None:
    """The warning for credentials that arrived short, naming the likely causes; None otherwise."""
    if not arrived_short(credentials.expiration, credentials.issued_at, profile.refresh_before_seconds):
        return None
    life = credentials.expiration - credentials.issued_at
    return (
        f"profile {profile.name}: STS issued credentials with {life:.0f} s to live, less than "
        f"refresh_before_seconds ({profile.refresh_before_seconds}): this machine's clock "
        "is probably ahead of AWS's (sync it with NTP; `credhelper doctor` measures the skew), or "
        f"the role's maximum session duration is shorter than duration_seconds "
        f"({profile.duration_seconds}); renewing at half their remaining life instead"
    )


@dataclass
class Pending:
    """Per profile, what the next attempt must achieve: the daemon's memory between attempts."""

    force: set[str] = field(default_factory=set)
    ensure: set[str] = field(default_factory=set)
    undelivered: set[str] = field(default_factory=set)

    def mode(self, name: str, held: Credentials | None) -> Mode:
        if name in self.force:
            return Mode.FORCE
        if name in self.ensure or held is None:
            return Mode.ENSURE
        return Mode.RENEW

    def request(self, name: str, mode: Mode) -> None:
        if mode is Mode.FORCE:
            self.force.add(name)
        elif mode is Mode.ENSURE:
            self.ensure.add(name)

    def delivered(self, name: str) -> None:
        self.force.discard(name)
        self.ensure.discard(name)
        self.undelivered.discard(name)

    def delivery_failed(self, name: str) -> bool:
        """Whether the last attempt obtained credentials that a target or the cache refused."""
        return name in self.undelivered

    def not_delivered(self, name: str) -> None:
        """Credentials were obtained but a target or the cache could not take them: the retry
        hands out the same set again rather than asking STS for another."""
        self.force.discard(name)
        self.ensure.add(name)
        self.undelivered.add(name)

    def forget(self, name: str) -> None:
        self.delivered(name)


def to_start(due: Sequence[str], in_flight: Collection[str], bound: int = REFRESH_CONCURRENCY) -> list[str]:
    """Which due profiles start refreshing now: none already in flight (a profile is never refreshed
    twice at once), and no more than `bound` in flight in all, the longest due first."""
    free = max(0, bound - len(in_flight))
    return [name for name in due if name not in in_flight][:free]


def waiting(due: Collection[str], in_flight: Collection[str], bound: int = REFRESH_CONCURRENCY) -> set[str]:
    """The profiles the daemon need not wake for: those in flight, and while every slot is taken,
    the due ones waiting for a slot (the end of a refresh wakes it)."""
    return set(in_flight) | (set(due) if len(in_flight) >= bound else set())


@dataclass
class Requests:
    """What signals, file events and the endpoint ask of the scheduler, waiting to be carried out."""

    reload: bool = False
    force: set[str] = field(default_factory=set)  # new credentials now (SIGUSR1, rotated source keys)
    ensure: set[str] = field(default_factory=set)  # credentials lasting the handout window
    paths: set[str] = field(default_factory=set)  # changed paths, for the targets among them

    def held_back(self, busy: Collection[str], busy_paths: Collection[str]) -> Requests:
        """Removes and returns what concerns a profile whose refresh is in flight: that waits for its
        end, so a restore never writes back the set the refresh is replacing, and a request made
        after the refresh began is not taken as served by it."""
        later = Requests(
            force=self.force & set(busy),
            ensure=self.ensure & set(busy),
            paths=self.paths & set(busy_paths),
        )
        self.force -= later.force
        self.ensure -= later.ensure
        self.paths -= later.paths
        return later

    def merge(self, other: Requests) -> None:
        self.reload |= other.reload
        self.force |= other.force
        self.ensure |= other.ensure
        self.paths |= other.paths


def retrying(entry: Entry | None) -> bool:
    """Whether a profile is waiting out a backoff: a request for credentials then waits for the
    backoff's next try instead of making one of its own, so requests never multiply STS calls."""
    return entry is not None and entry.attempts > 0


@dataclass(frozen=True)
class ConfigChange:
    added: frozenset[str]
    removed: frozenset[str]
    changed: frozenset[str]  # settings differ; credentials already held still belong to the profile
    rekeyed: frozenset[str]  # role, source or session settings differ: held credentials are not its

    @property
    def to_ensure(self) -> frozenset[str]:
        return self.added | self.changed | self.rekeyed


def config_change(old: Mapping[str, Profile], new: Mapping[str, Profile]) -> ConfigChange:
    both = set(old) & set(new)
    rekeyed = {name for name in both if old[name].fingerprint != new[name].fingerprint}
    changed = {name for name in both if old[name] != new[name]} - rekeyed
    return ConfigChange(
        added=frozenset(set(new) - set(old)),
        removed=frozenset(set(old) - set(new)),
        changed=frozenset(changed),
        rekeyed=frozenset(rekeyed),
    )


def is_ready(names: Sequence[str], delivered: Collection[str]) -> bool:
    """systemd's READY=1: every profile's targets have taken credentials at least once."""
    return bool(names) and all(name in delivered for name in names)


def status_line(names: Sequence[str], entries: Mapping[str, Entry]) -> str:
    """systemd's STATUS=: each profile's next refresh, or its next retry while failing."""
    parts = []
    for name in names:
        entry = entries.get(name)
        if entry is not None:
            what = "retry" if entry.attempts else "next refresh"
            parts.append(f"{name}: {what} {format_utc(entry.deadline.wall)}")
    shown = "; ".join(parts[:STATUS_PROFILES_SHOWN])
    return "STATUS=" + shown + ("; ..." if len(parts) > STATUS_PROFILES_SHOWN else "")
