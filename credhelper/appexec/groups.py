"""A supervised command's process group and the terminal.

The supervised command runs in a process group of its own, because a restart must stop the whole
group (`npm run dev` → sh → node) without stopping credhelper. When stdin, stdout and stderr are
all the controlling terminal and its foreground group is credhelper's, the command's group becomes
the terminal's foreground group: Ctrl-C, Ctrl-\\ and terminal reads reach the command directly
and once, while credhelper, now in a background group, never sees them. (The alternative, keeping
the command in credhelper's group and ignoring SIGINT in credhelper, would leave no way to stop
the command's children at a restart without stopping credhelper.) In a pipeline
(`credhelper exec ... | less`) the terminal stays with the job, whose other members read it.

However exec ends, the command's group ends with it: the kernel sends the command SIGTERM when
exec dies (PR_SET_PDEATHSIG), and the guardian (`guardian`) ends the rest of its group.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Sequence

from ..children import signal_group
from ..schedule import Clock
from ..signals import defaults_in_the_child, nothing_blocked
from .guardian import GroupGuard
from .plain import not_runnable

log = logging.getLogger("credhelper.exec")

# After the command's leader exits at a restart, how often to look whether the rest of its group
# has gone too.
GROUP_POLL_SECONDS = 0.02
# How long to wait for the killed group's last members to disappear before starting anyway
# (zombies nobody reaps, as under a container's init that does not wait, never disappear).
KILLED_GROUP_WAIT_SECONDS = 1.0
PR_SET_PDEATHSIG = 1


def start_guard(grace_seconds: float) -> GroupGuard | None:
    try:
        return GroupGuard(grace_seconds)
    except OSError as error:
        log.warning(
            "cannot start the guardian of the command's process group (%s): if exec is killed, "
            "what the command started may outlive it",
            error.strerror,
        )
        return None


def start_in_own_group(
    command: Sequence[str], env: dict[str, str], guard: GroupGuard | None
) -> subprocess.Popen[bytes]:
    """Start `command` leading a process group of its own, its life tied to this process's."""
    try:
        with nothing_blocked():
            return subprocess.Popen(
                command,
                env=env,
                process_group=0,
                restore_signals=True,  # SIGPIPE and SIGXFSZ, which Python ignores, at their defaults
                preexec_fn=ends_with_this_process(guard),
            )
    except (OSError, ValueError) as error:
        raise not_runnable(command[0], error) from None


def hand_terminal_to(child: subprocess.Popen[bytes]) -> None:
    give_terminal_to(child.pid)
    # It may have tried the terminal before it was the foreground group, and been stopped.
    signal_group(child.pid, signal.SIGCONT)


def reap(child: subprocess.Popen[bytes], owns_terminal: bool) -> int | None:
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
        if owns_terminal:
            suspend_with(child)
        return None
    child.returncode = os.waitstatus_to_exitcode(status)
    return child.returncode


def suspend_with(child: subprocess.Popen[bytes]) -> None:
    give_terminal_to(os.getpgrp())
    os.kill(os.getpid(), signal.SIGSTOP)
    # Continued: by `fg` (the terminal is credhelper's again: hand it on) or by `bg`.
    if terminal_is_ours():
        give_terminal_to(child.pid)
    signal_group(child.pid, signal.SIGCONT)


def stop_group(
    child: subprocess.Popen[bytes],
    grace_seconds: float,
    clock: Clock,
    wait: Callable[[float], None],
    owns_terminal: bool,
) -> int:
    """Stop the child's whole group: SIGTERM, the grace period, then SIGKILL. Its return code.
    `wait(seconds)` sleeps at most that long, and less when a signal arrives."""
    group = child.pid
    signal_group(group, signal.SIGTERM)
    end = clock.mono() + grace_seconds
    while reap(child, owns_terminal) is None and clock.mono() < end:
        wait(end - clock.mono())
    while reap(child, owns_terminal) is not None and group_alive(group) and clock.mono() < end:
        wait(min(GROUP_POLL_SECONDS, end - clock.mono()))
    if reap(child, owns_terminal) is None or group_alive(group):
        signal_group(group, signal.SIGKILL)
        child.wait()
        end = clock.mono() + KILLED_GROUP_WAIT_SECONDS
        while group_alive(group) and clock.mono() < end:
            wait(GROUP_POLL_SECONDS)
    returncode = reap(child, owns_terminal)
    assert returncode is not None
    return returncode


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


def group_alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def terminal_is_ours() -> bool:
    """Whether stdin, stdout and stderr are all the controlling terminal and its foreground group
    is credhelper's: only then does the command get the terminal's foreground. In a pipeline
    (`credhelper exec ... | less`), the other members of the job read the terminal too: handing
    it to the command's group would stop them, and the shell would show the whole job stopped."""
    try:
        # tcgetpgrp fails (ENOTTY) on anything but the caller's controlling terminal.
        return all(os.tcgetpgrp(fd) == os.getpgrp() for fd in (0, 1, 2))
    except OSError:
        return False


def give_terminal_to(group: int) -> None:
    # From a background group, tcsetpgrp raises SIGTTOU (which would stop credhelper) unless it
    # is blocked; blocked, the call just succeeds and no signal is left pending.
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTTOU})
    try:
        os.tcsetpgrp(0, group)
    except OSError:
        pass  # the terminal went away, or the group did
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)
