"""`credhelper exec`: run a command on credentials that never go stale.

Plain mode replaces credhelper with the command (execve): signals, the terminal and the exit
status are the command's own, with nothing in between. With `--restart-on-refresh` or
`--endpoint`, credhelper stays the command's parent (a supervisor).

The supervised command runs in a process group of its own, because a restart must stop the whole
group (`npm run dev` → sh → node) without stopping credhelper. When stdin, stdout and stderr are
all the controlling terminal and its foreground group is credhelper's, the command's group becomes
the terminal's foreground group: Ctrl-C, Ctrl-\\ and terminal reads reach the command directly
and once, while credhelper, now in a background group, never sees them. (The alternative, keeping
the command in credhelper's group and ignoring SIGINT in credhelper, would leave no way to stop
the command's children at a restart without stopping credhelper.) In a pipeline
(`credhelper exec ... | less`) the terminal stays with the job, whose other members read it.
Signals sent to credhelper itself are passed on to the command's group, as a terminal would send
them.

The supervisor's main thread never blocks on anything but its wakeup (`Wakeup`): renewals run in
a thread of their own (`Renewal`), so a hanging STS delays neither a signal for the command nor
exec's exit when the command exits. However exec ends, the command's group ends with it
(`guardian`).
"""

from __future__ import annotations

import logging
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from types import FrameType
from typing import TYPE_CHECKING, NamedTuple

from .children import signal_group
from .credentials import Credentials
from .errors import CredhelperError, as_credhelper_error
from .execplain import child_environment, not_runnable, replace_process, static_values
from .guardian import GroupGuard
from .logsetup import register_secret
from .profile import Profile
from .refresher import Refresher
from .schedule import (
    MIN_RENEW_SECONDS,
    WAKE_CHECK_SECONDS,
    Clock,
    Deadline,
    Scheduler,
    SystemClock,
    refresh_time,
)
from .signals import defaults_in_the_child, nothing_blocked
from .wakeup import Wakeup

if TYPE_CHECKING:
    from .server import CredentialServer, Lookup

log = logging.getLogger("credhelper.exec")

DEFAULT_GRACE_SECONDS = 10.0
# After the command's leader exits at a restart, how often to look whether the rest of its group
# has gone too.
GROUP_POLL_SECONDS = 0.02
# How long to wait for the killed group's last members to disappear before starting anyway
# (zombies nobody reaps, as under a container's init that does not wait, never disappear).
KILLED_GROUP_WAIT_SECONDS = 1.0

FORWARDED_SIGNALS = (
    signal.SIGINT,
    signal.SIGTERM,
    signal.SIGHUP,
    signal.SIGQUIT,
    signal.SIGUSR1,
    signal.SIGUSR2,
    signal.SIGWINCH,
)
# A signal that asks the command to end: one arriving while a restart is stopping the command
# means the user wants out, and the command is not started again. (Before a restart, the command
# had it passed on and chose whether to end: many apps take SIGHUP as "reload".)
ENDING_SIGNALS = frozenset({signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT})


class ExecOptions(NamedTuple):
    restart_on_refresh: bool = False
    grace_seconds: float = DEFAULT_GRACE_SECONDS
    endpoint: bool = False


# -- decisions (pure) ----------------------------------------------------------------------


# Under --endpoint, what an app's own dotenv would otherwise load over the endpoint from the .env
# the same profile writes (dotenv readers do not override a variable that is set): set, empty.
# SDKs take an empty key id, secret, token or expiration as unset.
HIDDEN_FROM_DOTENV = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_CREDENTIAL_EXPIRATION",
)


def endpoint_values(
    url: str, token: str, profile_name: str, region: str | None, bedrock_api_key: bool = False
) -> dict[str, str]:
    """What the command gets under --endpoint. The Bedrock key is hidden only for a profile that
    writes one (`bedrock_api_key`): botocore and the JS SDK take an AWS_BEARER_TOKEN_BEDROCK that
    is set, even empty, as a key to use instead of the credentials, so for every other profile it
    stays unset and Bedrock calls are signed with the endpoint's credentials."""
    values = dict.fromkeys(HIDDEN_FROM_DOTENV, "")
    if bedrock_api_key:
        from .formats.bedrockkey import TOKEN_VARIABLE

        values[TOKEN_VARIABLE] = ""
    values["AWS_CONTAINER_CREDENTIALS_FULL_URI"] = f"{url}/v1/credentials/{profile_name}"
    values["AWS_CONTAINER_AUTHORIZATION_TOKEN"] = token
    if region:
        values["AWS_REGION"] = region
        values["AWS_DEFAULT_REGION"] = region
    return values


def exit_status(returncode: int) -> int:
    """A shell's exit status for a child's return code: 128+N when signal N ended it."""
    return 128 - returncode if returncode < 0 else returncode


def renewal_time(credentials: Credentials, profile: Profile, now: float, rng: random.Random) -> float:
    """When to renew (and restart onto) `credentials`: the profile's refresh point, or for
    credentials that arrive already past it, half their remaining life but not sooner than 60 s."""
    at = refresh_time(credentials.expiration, profile.refresh_before_seconds, profile.duration_seconds, rng)
    if at > now:
        return at
    return now + max(MIN_RENEW_SECONDS, credentials.seconds_left(now) / 2)


def wait_limit(seconds_to_deadline: float | None) -> float:
    """How long the supervisor may sleep: never past a deadline, and never long, because the
    monotonic clock stands still while a laptop sleeps and only the wall clock shows the time
    has come."""
    if seconds_to_deadline is None:
        return WAKE_CHECK_SECONDS
    return min(max(0.0, seconds_to_deadline), WAKE_CHECK_SECONDS)


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


# -- the shells ----------------------------------------------------------------------------


def run_exec(
    profile: Profile,
    refresher: Refresher,
    command: Sequence[str],
    options: ExecOptions,
    environ: Mapping[str, str],
) -> int:
    """Run `command` for `profile`; its exit status (or credhelper's own error before it starts)."""
    credentials = refresher.obtain(profile, profile.handout_seconds)
    if not options.restart_on_refresh and not options.endpoint:
        values = static_values(credentials, profile, time.time())
        replace_process(command, child_environment(environ, values))
    server: CredentialServer | None = None
    if options.endpoint and profile.bedrock_api_key:
        # The endpoint renews credentials under a running command; a key in its environment could
        # not be renewed and would outlive, unnoticed, the session it was made from. It is set
        # empty (endpoint_values), so that an app's dotenv cannot load the one in the .env either.
        log.warning(
            "profile %s: exec --endpoint gives no Bedrock API key: AWS_BEARER_TOKEN_BEDROCK is set "
            "empty, so that the command cannot load the old session's key from its .env, and "
            "Bedrock refuses an empty key; use --restart-on-refresh for a key that is renewed",
            profile.name,
        )
    if options.endpoint:
        from .server import CredentialServer  # http.server: only when there is one to serve

        server = CredentialServer("127.0.0.1", 0, endpoint_lookup(profile, refresher))
    try:
        if server is not None:
            server.start()
        supervisor = Supervisor(profile, refresher, command, options, environ, server)
        return supervisor.run(credentials)
    finally:
        if server is not None:
            server.stop()


def endpoint_lookup(profile: Profile, refresher: Refresher) -> Lookup:
    """Credentials for the exec's own endpoint: the cached ones while they last the handout
    window, else one refresh under the cache lock."""

    from .server import UnknownProfile

    def lookup(name: str) -> Credentials:
        if name != profile.name:
            raise UnknownProfile(name)
        return refresher.obtain(profile, profile.handout_seconds)

    return lookup


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


class Supervisor:
    """Keeps one child running: restarts it onto renewed credentials at each refresh point,
    passes signals on, and ends with the child's own exit status."""

    def __init__(
        self,
        profile: Profile,
        refresher: Refresher,
        command: Sequence[str],
        options: ExecOptions,
        environ: Mapping[str, str],
        server: CredentialServer | None,
        clock: Clock | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.profile = profile
        self.refresher = refresher
        self.command = list(command)
        self.options = options
        self.environ = environ
        self.server = server
        self.clock = clock or SystemClock()
        self.rng = rng or random.Random()
        self.scheduler = Scheduler(self.clock, self.rng)
        self.child: subprocess.Popen[bytes] | None = None
        self.pending: list[int] = []  # signals that arrived before the child existed
        self.ending = False
        self.owns_terminal = _terminal_is_ours()
        self.wakeup = Wakeup()
        self.guard: GroupGuard | None = None

    def run(self, credentials: Credentials) -> int:
        with self.wakeup:
            previous = self._install_signals()
            try:
                self.guard = _start_guard(self.options.grace_seconds)
                return self._supervise(credentials)
            finally:
                if self.guard is not None:
                    self.guard.close()  # the guardian ends what is left of the command's group
                self._restore_signals(previous)
                if self.owns_terminal:
                    _give_terminal_to(os.getpgrp())

    def _supervise(self, credentials: Credentials) -> int:
        held, deadline = credentials, None
        if self.options.restart_on_refresh and self._past_refresh_point(credentials):
            # Renewed before the command starts rather than a moment after; if that fails, it
            # starts on the cached ones (they last the handout window) and the renewal backs off.
            renewal = self._renew(credentials)
            while not renewal.finished:
                ended_by = next((s for s in self.pending if s in ENDING_SIGNALS), None)
                if ended_by is not None:  # asked to end before the command started: it never does
                    return exit_status(-ended_by)
                self._wait(None)
            if isinstance(renewal.outcome, Credentials):
                held = renewal.outcome
            else:
                deadline, _ = self.scheduler.failed(self.profile.name)
                log.info("%s; starting on the cached credentials", renewal.outcome)
        child = self._start(held)
        if self.options.restart_on_refresh and deadline is None:
            deadline = self._renewal_deadline(held)
        in_flight: Renewal | None = None
        while True:
            returncode = self._reap(child)
            if returncode is not None:
                return exit_status(returncode)  # at once, a renewal in flight or not
            if in_flight is None:
                if deadline is None or not deadline.passed(self.clock):
                    self._wait(deadline.seconds_left(self.clock) if deadline else None)
                    continue
                in_flight = self._renew(held)
                continue
            if not in_flight.finished:
                self._wait(None)
                continue
            outcome, in_flight = in_flight.outcome, None
            if not isinstance(outcome, Credentials):
                assert outcome is not None
                deadline = self._renewal_failed(outcome, held)
                continue
            returncode = self._stop(child)
            if self.ending:
                return exit_status(returncode)
            held = outcome
            child = self._start(held)
            deadline = self._renewal_deadline(held)

    def _renew(self, held: Credentials) -> Renewal:
        return Renewal(lambda: self._renewed(held), self.wakeup.wake)

    def _renewal_failed(self, error: CredhelperError, held: Credentials) -> Deadline:
        """The command runs on; the next try is due after the backoff."""
        deadline, attempts = self.scheduler.failed(self.profile.name)
        retry_in = deadline.seconds_left(self.clock)
        message = renewal_failure_message(self.profile, error, held, self.clock.wall(), retry_in)
        if message:
            log.warning("%s", message)
        else:
            log.info("%s (attempt %d; next try in %.0f s)", error, attempts, retry_in)
        return deadline

    def _past_refresh_point(self, credentials: Credentials) -> bool:
        at = refresh_time(
            credentials.expiration,
            self.profile.refresh_before_seconds,
            self.profile.duration_seconds,
            self.rng,
        )
        return at <= self.clock.wall()

    def _renewed(self, held: Credentials) -> Credentials:
        """Credentials newer than `held`: another process's renewal if there was one, else STS's.
        Runs in a Renewal's thread."""
        return self.refresher.obtain(
            self.profile,
            min_seconds_left=self.profile.refresh_before_seconds,
            issued_after=held.issued_at + 1e-3,
        )

    def _renewal_deadline(self, credentials: Credentials) -> Deadline:
        at = renewal_time(credentials, self.profile, self.clock.wall(), self.rng)
        deadline = Deadline.after(self.clock, at)
        self.scheduler.forget(self.profile.name)  # a success resets the backoff
        return deadline

    def _child_values(self, credentials: Credentials) -> dict[str, str]:
        if self.server is not None:
            return endpoint_values(
                self.server.url,
                self.server.token,
                self.profile.name,
                self.profile.region,
                self.profile.bedrock_api_key,
            )
        values = static_values(credentials, self.profile, self.clock.wall())
        register_secret(values.get("AWS_BEARER_TOKEN_BEDROCK", ""))  # made here, unlike the others
        return values

    def _start(self, credentials: Credentials) -> subprocess.Popen[bytes]:
        env = child_environment(self.environ, self._child_values(credentials))
        try:
            with nothing_blocked():
                child = subprocess.Popen(
                    self.command,
                    env=env,
                    process_group=0,
                    restore_signals=True,  # SIGPIPE and SIGXFSZ, which Python ignores, at their defaults
                    preexec_fn=ends_with_this_process(self.guard),
                )
        except (OSError, ValueError) as error:
            raise not_runnable(self.command[0], error) from None
        self.child = child
        if self.owns_terminal:
            _give_terminal_to(child.pid)
            # It may have tried the terminal before it was the foreground group, and been stopped.
            signal_group(child.pid, signal.SIGCONT)
        for signum in self.pending:
            signal_group(child.pid, signum)
        self.pending.clear()
        log.info("started %s (pid %d)", self.command[0], child.pid)
        return child

    def _reap(self, child: subprocess.Popen[bytes]) -> int | None:
        """The child's return code once it has ended, else None. When it was stopped from the
        terminal (Ctrl-Z), credhelper stops too, so that the shell sees its job stopped."""
        if child.returncode is not None:
            return child.returncode
        try:
            pid, status = os.waitpid(child.pid, os.WNOHANG | os.WUNTRACED)
        except ChildProcessError:
            return child.poll()
        if pid == 0:
            return None
        if os.WIFSTOPPED(status):
            if self.owns_terminal:
                self._suspend_with(child)
            return None
        child.returncode = os.waitstatus_to_exitcode(status)
        return child.returncode

    def _suspend_with(self, child: subprocess.Popen[bytes]) -> None:
        _give_terminal_to(os.getpgrp())
        os.kill(os.getpid(), signal.SIGSTOP)
        # Continued: by `fg` (the terminal is credhelper's again: hand it on) or by `bg`.
        if _terminal_is_ours():
            _give_terminal_to(child.pid)
        signal_group(child.pid, signal.SIGCONT)

    def _stop(self, child: subprocess.Popen[bytes]) -> int:
        """Stop the child's whole group: SIGTERM, the grace period, then SIGKILL. Its return code."""
        log.info("restarting %s (pid %d) onto renewed credentials", self.command[0], child.pid)
        group = child.pid
        self.ending = False
        signal_group(group, signal.SIGTERM)
        end = self.clock.mono() + self.options.grace_seconds
        while self._reap(child) is None and self.clock.mono() < end:
            self._wait(end - self.clock.mono())
        while self._reap(child) is not None and _group_alive(group) and self.clock.mono() < end:
            self._wait(min(GROUP_POLL_SECONDS, end - self.clock.mono()))
        if self._reap(child) is None or _group_alive(group):
            signal_group(group, signal.SIGKILL)
            child.wait()
            end = self.clock.mono() + KILLED_GROUP_WAIT_SECONDS
            while _group_alive(group) and self.clock.mono() < end:
                self._wait(GROUP_POLL_SECONDS)
        returncode = self._reap(child)
        assert returncode is not None
        return returncode

    def _wait(self, timeout: float | None) -> None:
        """Sleep until a signal arrives (the child's exit included), a renewal ends, or `timeout`
        passes. Capped, so that a deadline passed while the machine slept is seen soon after it
        wakes."""
        self.wakeup.wait(wait_limit(timeout))

    def _install_signals(self) -> dict[int, object]:
        def forward(signum: int, frame: FrameType | None) -> None:
            if signum in ENDING_SIGNALS:
                self.ending = True
            if self.child is None:
                self.pending.append(signum)
            else:
                signal_group(self.child.pid, signum)

        def child_changed(signum: int, frame: FrameType | None) -> None:
            pass  # the wakeup fd already woke the main loop

        previous: dict[int, object] = {}
        for signum in (*FORWARDED_SIGNALS, signal.SIGCHLD):
            previous[signum] = signal.signal(signum, child_changed if signum == signal.SIGCHLD else forward)
        return previous

    def _restore_signals(self, previous: dict[int, object]) -> None:
        for signum, handler in previous.items():
            signal.signal(signum, handler)  # type: ignore[arg-type]


def _start_guard(grace_seconds: float) -> GroupGuard | None:
    try:
        return GroupGuard(grace_seconds)
    except OSError as error:
        log.warning(
            "cannot start the guardian of the command's process group (%s): if exec is killed, "
            "what the command started may outlive it",
            error.strerror,
        )
        return None


PR_SET_PDEATHSIG = 1


def ends_with_this_process(guard: GroupGuard | None) -> Callable[[], None]:
    """For the command's preexec (in the child, between fork and exec: a few calls, no import):
    the command's life tied to this process's, however this process dies. The guardian learns
    the command's group before anything of the command runs. The command itself gets SIGTERM
    from the kernel the moment this process dies (PR_SET_PDEATHSIG, where prctl is there):
    SIGTERM, not SIGKILL, what exec sends first anyway, so the command may still clean up."""
    prctl = _prctl()
    parent = os.getpid()
    restore_defaults = defaults_in_the_child()

    def preexec() -> None:
        restore_defaults()
        if guard is not None:
            guard.announce()
        if prctl is not None:
            prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != parent:  # exec died before the request was made: do not start
            os._exit(128 + signal.SIGTERM)

    return preexec


def _prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        prctl: Callable[..., int] = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    return prctl


def _group_alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def _terminal_is_ours() -> bool:
    """Whether stdin, stdout and stderr are all the controlling terminal and its foreground group
    is credhelper's: only then does the command get the terminal's foreground. In a pipeline
    (`credhelper exec ... | less`), the other members of the job read the terminal too: handing
    it to the command's group would stop them, and the shell would show the whole job stopped."""
    try:
        # tcgetpgrp fails (ENOTTY) on anything but the caller's controlling terminal.
        return all(os.tcgetpgrp(fd) == os.getpgrp() for fd in (0, 1, 2))
    except OSError:
        return False


def _give_terminal_to(group: int) -> None:
    # From a background group, tcsetpgrp raises SIGTTOU (which would stop credhelper) unless it
    # is blocked; blocked, the call just succeeds and no signal is left pending.
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTTOU})
    try:
        os.tcsetpgrp(0, group)
    except OSError:
        pass  # the terminal went away, or the group did
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)
