"""`credhelper exec` with `--restart-on-refresh` or `--endpoint`: credhelper stays the command's
parent (a supervisor). Plain exec replaces credhelper with the command (`plain`).

The command runs in a process group of its own, with the terminal's foreground when exec's job has
it (`groups`). Signals sent to credhelper itself are passed on to the command's group, as a
terminal would send them. The supervisor's main thread never blocks on anything but its wakeup
(`Wakeup`): renewals run in a thread of their own (`renewal`), so a hanging STS delays neither a
signal for the command nor exec's exit when the command exits. However exec ends, the command's
group ends with it (`guardian`).
"""

from __future__ import annotations

import logging
import random
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from types import FrameType
from typing import TYPE_CHECKING

from ..children import signal_group
from ..credentials import Credentials
from ..interfaces import Clock, Lookup, UnknownProfile
from ..profile import Profile
from ..refresher import Refresher
from ..schedule import WAKE_CHECK_SECONDS, SystemClock
from ..signals import nothing_blocked_here
from ..wakeup import Wakeup
from .environment import child_environment, credential_values, served_command_values
from .groups import Terminal, end_signal, reap, start_guard, start_in_own_group, stop_group
from .guardian import GroupGuard
from .options import ExecOptions
from .plain import replace_process
from .renewal import Renewal, Renewals

if TYPE_CHECKING:
    from ..endpoint.server import CredentialServer

log = logging.getLogger("credhelper.exec")

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


def exit_status(returncode: int) -> int:
    """A shell's exit status for a child's return code: 128+N when signal N ended it."""
    return 128 - returncode if returncode < 0 else returncode


def wait_limit(seconds_to_deadline: float | None) -> float:
    """How long the supervisor may sleep: never past a deadline, and never long, because the
    monotonic clock stands still while a laptop sleeps and only the wall clock shows the time
    has come."""
    if seconds_to_deadline is None:
        return WAKE_CHECK_SECONDS
    return min(max(0.0, seconds_to_deadline), WAKE_CHECK_SECONDS)


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
        values = credential_values(credentials, profile, time.time())
        replace_process(command, child_environment(environ, values))
    server: CredentialServer | None = None
    if options.endpoint and profile.bedrock_api_key:
        # The endpoint renews credentials under a running command; a key in its environment could
        # not be renewed and would outlive, unnoticed, the session it was made from. It is set
        # empty (served_command_values), so that an app's dotenv cannot load the one in the .env.
        log.warning(
            "profile %s: exec --endpoint gives no Bedrock API key: AWS_BEARER_TOKEN_BEDROCK is set "
            "empty, so that the command cannot load the old session's key from its .env, and "
            "Bedrock refuses an empty key; use --restart-on-refresh for a key that is renewed",
            profile.name,
        )
    if options.endpoint:
        from ..endpoint.server import CredentialServer  # only when there is one to serve

        server = CredentialServer("127.0.0.1", 0, endpoint_lookup(profile, refresher))
    try:
        if server is not None:
            server.start()
        supervisor = Supervisor(profile, refresher, command, options, environ, server)
        if server is None:
            return supervisor.run(credentials)
        from .sharedfiles import served_config

        with served_config(environ, refresher.cache.directory) as supervisor.config_file:
            return supervisor.run(credentials)
    finally:
        if server is not None:
            server.stop()


def endpoint_lookup(profile: Profile, refresher: Refresher) -> Lookup:
    """Credentials for the exec's own endpoint: the cached ones while they last the handout
    window, else one refresh under the cache lock."""

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
        self.command = list(command)
        self.options = options
        self.environ = environ
        self.server = server
        self.clock = clock or SystemClock()
        self.renewals = Renewals(profile, refresher, self.clock, rng or random.Random())
        self.child: subprocess.Popen[bytes] | None = None
        self.pending: list[int] = []  # signals that arrived before the child existed
        self.ending = False
        self.terminal = Terminal()
        self.wakeup = Wakeup()
        self.guard: GroupGuard | None = None
        self.config_file: str | None = None  # under --endpoint, the config file the command reads

    def run(self, credentials: Credentials) -> int:
        nothing_blocked_here()
        with self.wakeup:
            previous = self._install_signals()
            try:
                self.guard = start_guard(self.options.grace_seconds)
                return self._supervise(credentials)
            finally:
                if self.guard is not None:
                    self.guard.close()  # the guardian ends what is left of the command's group
                self._restore_signals(previous)
                if self.child is not None:
                    self.terminal.ended(self.child)

    def _supervise(self, credentials: Credentials) -> int:
        held, deadline = credentials, None
        if self.options.restart_on_refresh and self.renewals.past_refresh_point(credentials):
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
                deadline, _ = self.renewals.backoff()
                log.info("%s; starting on the cached credentials", renewal.outcome)
        child = self._start(held)
        if self.options.restart_on_refresh and deadline is None:
            deadline = self.renewals.succeeded(held)
        in_flight: Renewal | None = None
        while True:
            returncode = reap(child, self.terminal)
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
                deadline = self.renewals.failed(outcome, held)
                continue
            returncode = self._stop(child)
            if self.ending:
                return exit_status(returncode)
            held = outcome
            child = self._start(held)
            deadline = self.renewals.succeeded(held)

    def _renew(self, held: Credentials) -> Renewal:
        return self.renewals.start(held, self.wakeup.wake)

    def _child_values(self, credentials: Credentials) -> dict[str, str]:
        if self.server is not None:
            return served_command_values(self.profile, self.server.url, self.server.token, self.config_file)
        return credential_values(credentials, self.profile, self.clock.wall())

    def _start(self, credentials: Credentials) -> subprocess.Popen[bytes]:
        env = child_environment(self.environ, self._child_values(credentials))
        child = start_in_own_group(self.command, env, self.guard)
        self.child = child
        self.terminal.started(child)
        for signum in self.pending:
            self._pass_on(child.pid, signum)
        self.pending.clear()
        log.info("started %s (pid %d)", self.command[0], child.pid)
        return child

    def _stop(self, child: subprocess.Popen[bytes]) -> int:
        """Stop the child's whole group for a restart; its return code."""
        log.info("restarting %s (pid %d) onto renewed credentials", self.command[0], child.pid)
        self.ending = False
        returncode = stop_group(child, self.options.grace_seconds, self.clock, self._wait, self.terminal)
        self.terminal.ended(child)
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
                self._pass_on(self.child.pid, signum)

        def child_changed(signum: int, frame: FrameType | None) -> None:
            pass  # the wakeup fd already woke the main loop

        previous: dict[int, object] = {}
        for signum in FORWARDED_SIGNALS:
            previous[signum] = signal.signal(signum, forward)
        # SIGCONT: exec's job continued (`fg`), when the command may be waiting for the terminal.
        for signum in (signal.SIGCHLD, signal.SIGCONT):
            previous[signum] = signal.signal(signum, child_changed)
        return previous

    @staticmethod
    def _pass_on(group: int, signum: int) -> None:
        """A signal for the command's group; one asking it to end is followed by SIGCONT, as a
        shell ends a stopped job. (Not the others: a SIGWINCH must not undo a `kill -STOP`.)"""
        if signum in ENDING_SIGNALS:
            end_signal(group, signum)
        else:
            signal_group(group, signum)

    def _restore_signals(self, previous: dict[int, object]) -> None:
        for signum, handler in previous.items():
            signal.signal(signum, handler)  # type: ignore[arg-type]
