"""`credhelper exec`: run a command on credentials that never go stale.

Plain mode replaces credhelper with the command (execve): signals, the terminal and the exit
status are the command's own, with nothing in between. With `--restart-on-refresh` or
`--endpoint`, credhelper stays the command's parent (a supervisor).

The supervised command runs in a process group of its own, because a restart must stop the whole
group (`npm run dev` → sh → node) without stopping credhelper. When stdin is a terminal whose
foreground group is credhelper's, the command's group becomes the terminal's foreground group:
Ctrl-C, Ctrl-\\ and terminal reads reach the command directly and once, while credhelper, now in
a background group, never sees them. (The alternative, keeping the command in credhelper's group
and ignoring SIGINT in credhelper, would leave no way to stop the command's children at a
restart without stopping credhelper.) Signals sent to credhelper itself are passed on to the
command's group, as a terminal would send them.
"""

from __future__ import annotations

import logging
import os
import random
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from types import FrameType
from typing import TYPE_CHECKING, NamedTuple

from .children import signal_group
from .credentials import Credentials
from .errors import CredhelperError
from .execplain import child_environment, not_runnable, replace_process, static_values
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


def endpoint_values(url: str, token: str, profile_name: str, region: str | None) -> dict[str, str]:
    values = {
        "AWS_CONTAINER_CREDENTIALS_FULL_URI": f"{url}/v1/credentials/{profile_name}",
        "AWS_CONTAINER_AUTHORIZATION_TOKEN": token,
    }
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
        # not be renewed and would outlive, unnoticed, the session it was made from.
        log.warning(
            "profile %s: exec --endpoint gives no Bedrock API key (AWS_BEARER_TOKEN_BEDROCK); "
            "use --restart-on-refresh for one that is renewed",
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
        self.wakeup_read, self.wakeup_write = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)

    def run(self, credentials: Credentials) -> int:
        previous = self._install_signals()
        try:
            return self._supervise(credentials)
        finally:
            self._restore_signals(previous)
            if self.owns_terminal:
                _give_terminal_to(os.getpgrp())
            os.close(self.wakeup_read)
            os.close(self.wakeup_write)

    def _supervise(self, credentials: Credentials) -> int:
        held, deadline = credentials, None
        if self.options.restart_on_refresh and self._past_refresh_point(credentials):
            # Renewed before the command starts rather than a moment after; if that fails, it
            # starts on the cached ones (they last the handout window) and the renewal backs off.
            try:
                held = self._renewed(credentials)
            except CredhelperError as error:
                deadline, _ = self.scheduler.failed(self.profile.name)
                log.info("%s; starting on the cached credentials", error)
        child = self._start(held)
        if self.options.restart_on_refresh and deadline is None:
            deadline = self._renewal_deadline(held)
        while True:
            returncode = self._reap(child)
            if returncode is not None:
                return exit_status(returncode)
            if deadline is None or not deadline.passed(self.clock):
                self._wait(deadline.seconds_left(self.clock) if deadline else None)
                continue
            try:
                renewed = self._renewed(held)
            except CredhelperError as error:
                deadline, attempts = self.scheduler.failed(self.profile.name)
                retry_in = deadline.seconds_left(self.clock)
                message = renewal_failure_message(self.profile, error, held, self.clock.wall(), retry_in)
                if message:
                    log.warning("%s", message)
                else:
                    log.info("%s (attempt %d; next try in %.0f s)", error, attempts, retry_in)
                continue
            if self._reap(child) is not None:  # it ended by itself while the renewal was under way
                continue
            returncode = self._stop(child)
            if self.ending:
                return exit_status(returncode)
            held = renewed
            child = self._start(held)
            deadline = self._renewal_deadline(held)

    def _past_refresh_point(self, credentials: Credentials) -> bool:
        at = refresh_time(
            credentials.expiration,
            self.profile.refresh_before_seconds,
            self.profile.duration_seconds,
            self.rng,
        )
        return at <= self.clock.wall()

    def _renewed(self, held: Credentials) -> Credentials:
        """Credentials newer than `held`: another process's renewal if there was one, else STS's."""
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
            return endpoint_values(self.server.url, self.server.token, self.profile.name, self.profile.region)
        values = static_values(credentials, self.profile, self.clock.wall())
        register_secret(values.get("AWS_BEARER_TOKEN_BEDROCK", ""))  # made here, unlike the others
        return values

    def _start(self, credentials: Credentials) -> subprocess.Popen[bytes]:
        env = child_environment(self.environ, self._child_values(credentials))
        try:
            child = subprocess.Popen(
                self.command, env=env, process_group=0, preexec_fn=ends_with_this_process()
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
        """Sleep until a signal arrives (the child's exit included) or `timeout` passes. Capped,
        so that a deadline passed while the machine slept is seen soon after it wakes."""
        readable, _, _ = select.select([self.wakeup_read], [], [], wait_limit(timeout))
        if readable:
            try:
                while os.read(self.wakeup_read, 512):
                    pass
            except BlockingIOError:
                pass

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
        previous[-1] = signal.set_wakeup_fd(self.wakeup_write, warn_on_full_buffer=False)
        return previous

    def _restore_signals(self, previous: dict[int, object]) -> None:
        signal.set_wakeup_fd(int(previous.pop(-1)))  # type: ignore[call-overload]
        for signum, handler in previous.items():
            signal.signal(signum, handler)  # type: ignore[arg-type]


PR_SET_PDEATHSIG = 1


def ends_with_this_process() -> Callable[[], None] | None:
    """For the command's preexec: a SIGTERM when this process dies, however it dies. A SIGKILLed
    exec (the OOM killer, kill -9) cannot stop the command itself; left running, it would be an
    orphan in a process group of its own, on credentials nobody renews. SIGTERM, not SIGKILL: what
    exec sends first anyway, and the command may still clean up. None where prctl is missing."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def preexec() -> None:  # in the child, between fork and exec: one foreign call, no import
        prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != parent:  # exec died before the request was made: do not start
            os._exit(128 + signal.SIGTERM)

    return preexec


def _group_alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def _terminal_is_ours() -> bool:
    """Whether stdin is a terminal whose foreground group is credhelper's (not in the background,
    not a pipe): only then does the command get the terminal's foreground."""
    try:
        return os.isatty(0) and os.tcgetpgrp(0) == os.getpgrp()
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
