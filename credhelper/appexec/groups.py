"""A supervised command's process group and the terminal.

The supervised command runs in a process group of its own, because a restart must stop the whole
group (`npm run dev` → sh → node) without stopping credhelper. When stdin, stdout and stderr are
all the controlling terminal and its foreground group is credhelper's, the command's group becomes
the terminal's foreground group: Ctrl-C, Ctrl-\\ and terminal reads reach the command directly
and once, while credhelper, now in a background group, never sees them. (The alternative, keeping
the command in credhelper's group and ignoring SIGINT in credhelper, would leave no way to stop
the command's children at a restart without stopping credhelper.)

In a pipeline (`credhelper exec ... | less`, `... | tee log`) the terminal stays with the job,
whose other members may read it. The command, in a group of its own, is then a background group
of the terminal, and the kernel stops it (SIGTTIN, SIGTTOU) when it reads the terminal or sets
its modes. credhelper watches for that stop: while its own group is the terminal's foreground
group it lends the command's group the terminal's foreground and continues it, so the command
reads the terminal as it would have in the job (what the user types goes to the command; a
member of the job that reads the terminal meanwhile, `less`, waits its turn). When the command
ends or is restarted, the foreground goes back to credhelper's group, and with it to the rest of
the job; a restarted command gets it again the same way, the first time it needs it. When exec's
own job is in the background (`credhelper exec ... &`), exec stops itself with the same signal,
so the shell shows the job stopped as it would show the command alone; at `fg` the command gets
the terminal and goes on. A Ctrl-Z that stops the command while it has the terminal stops exec's
job too, and `fg` gives the command the terminal back. The foreground is only ever taken back
from the command's group, never from a shell that has taken it meanwhile.

Every signal that asks the command to end (SIGTERM, SIGINT, SIGHUP, SIGQUIT, and the SIGTERM of a
restart) is followed by SIGCONT, as a shell does when it ends a stopped job: a stopped group would
otherwise keep it pending for ever.

However exec ends, the command's group ends with it: the kernel sends the command SIGTERM when
exec dies (PR_SET_PDEATHSIG), and the guardian (`guardian`) ends the rest of its group. A process
that leaves the group (`setsid`, or a job-control shell's own jobs) is out of its reach: see
docs/delivery.md.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Sequence

from ..children import signal_group
from ..interfaces import Clock
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


def reap(child: subprocess.Popen[bytes], terminal: Terminal) -> int | None:
    """The child's return code once it has ended, else None. A stop is the terminal's business
    (`Terminal.child_stopped`)."""
    if child.returncode is not None:
        return child.returncode
    try:
        pid, status = os.waitpid(child.pid, os.WNOHANG | os.WUNTRACED)
    except ChildProcessError:
        return child.poll()
    if pid == 0:
        terminal.poll(child)
        return None
    if os.WIFSTOPPED(status):
        terminal.child_stopped(child, os.WSTOPSIG(status))
        return None
    child.returncode = os.waitstatus_to_exitcode(status)
    return child.returncode


def end_signal(group: int, signum: int) -> None:
    """Ask the group to end, as a shell ends a job: the signal, then SIGCONT, so that a stopped
    group (Ctrl-Z, or stopped reading the terminal) acts on it instead of keeping it pending."""
    signal_group(group, signum)
    signal_group(group, signal.SIGCONT)


def stop_group(
    child: subprocess.Popen[bytes],
    grace_seconds: float,
    clock: Clock,
    wait: Callable[[float], None],
    terminal: Terminal,
) -> int:
    """Stop the child's whole group: SIGTERM (and SIGCONT), the grace period, then SIGKILL. Its
    return code. `wait(seconds)` sleeps at most that long, and less when a signal arrives."""
    group = child.pid
    end_signal(group, signal.SIGTERM)
    end = clock.mono() + grace_seconds
    while reap(child, terminal) is None and clock.mono() < end:
        wait(end - clock.mono())
    while reap(child, terminal) is not None and group_alive(group) and clock.mono() < end:
        wait(min(GROUP_POLL_SECONDS, end - clock.mono()))
    if reap(child, terminal) is None or group_alive(group):
        signal_group(group, signal.SIGKILL)
        child.wait()
        end = clock.mono() + KILLED_GROUP_WAIT_SECONDS
        while group_alive(group) and clock.mono() < end:
            wait(GROUP_POLL_SECONDS)
    returncode = reap(child, terminal)
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


class Terminal:
    """exec's controlling terminal and the command's group (the module's docstring says how)."""

    def __init__(self) -> None:
        # The whole foreground job: the command gets the terminal from the start.
        self.alone = terminal_is_ours()
        # The command was stopped for the terminal while exec's job was in the background: it
        # gets the terminal when exec's job is in the foreground again (`fg`).
        self.waiting = False

    def started(self, child: subprocess.Popen[bytes]) -> None:
        self.waiting = False
        if self.alone and foreground_group() == os.getpgrp():
            self._lend(child)

    def ended(self, child: subprocess.Popen[bytes]) -> None:
        """The command ended (or was stopped for a restart): the terminal goes back to exec's
        group if the command's group has it."""
        self.waiting = False
        if foreground_group() == child.pid:
            give_terminal_to(os.getpgrp())

    def poll(self, child: subprocess.Popen[bytes]) -> None:
        """After each wake (a SIGCONT from `fg` among them): a command waiting for the terminal
        gets it once exec's job is in the foreground."""
        if self.waiting and foreground_group() == os.getpgrp():
            self.waiting = False
            self._lend(child)

    def child_stopped(self, child: subprocess.Popen[bytes], stopsig: int) -> None:
        ours = os.getpgrp()
        foreground = foreground_group()
        if foreground == child.pid:
            # Ctrl-Z (or a stop signal) while the command has the terminal: exec's job stops too,
            # so that the shell sees it stopped; at `fg` the command gets the terminal again.
            give_terminal_to(ours)
            if self.alone:
                os.kill(os.getpid(), signal.SIGSTOP)
            else:  # as the terminal would have stopped the job: all of exec's group
                signal_group(ours, signal.SIGTSTP)
            if foreground_group() == ours:
                give_terminal_to(child.pid)
            signal_group(child.pid, signal.SIGCONT)
        elif stopsig in (signal.SIGTTIN, signal.SIGTTOU):
            if foreground == ours:  # exec's job has the terminal, and the command needs it
                self._lend(child)
                return
            # exec's job is in the background: it stops as the command did, so that the shell
            # shows it; at `fg` (the SIGCONT wakes the supervisor) the command gets the terminal.
            self.waiting = True
            os.kill(os.getpid(), stopsig)
            self.poll(child)
        # Any other stop (a `kill -STOP` of the command) is left as it is.

    def _lend(self, child: subprocess.Popen[bytes]) -> None:
        give_terminal_to(child.pid)
        # It may have tried the terminal before it was the foreground group, and been stopped.
        signal_group(child.pid, signal.SIGCONT)


def terminal_is_ours() -> bool:
    """Whether stdin, stdout and stderr are all the controlling terminal and its foreground group
    is credhelper's: only then does the command get the terminal's foreground from the start. In
    a pipeline (`credhelper exec ... | less`), the other members of the job read the terminal
    too: handing it to the command's group at once would stop them, and the shell would show the
    whole job stopped."""
    try:
        # tcgetpgrp fails (ENOTTY) on anything but the caller's controlling terminal.
        return all(os.tcgetpgrp(fd) == os.getpgrp() for fd in (0, 1, 2))
    except OSError:
        return False


def _open_terminal() -> int | None:
    """The controlling terminal, whatever stdin, stdout and stderr are; None without one."""
    try:
        return os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError:
        return None


def foreground_group() -> int | None:
    """The controlling terminal's foreground process group; None without a terminal."""
    fd = _open_terminal()
    if fd is None:
        return None
    try:
        return os.tcgetpgrp(fd)
    except OSError:
        return None
    finally:
        os.close(fd)


def give_terminal_to(group: int) -> None:
    # From a background group, tcsetpgrp raises SIGTTOU (which would stop credhelper) unless it
    # is blocked; blocked, the call just succeeds and no signal is left pending.
    fd = _open_terminal()
    if fd is None:
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTTOU})
    try:
        os.tcsetpgrp(fd, group)
    except OSError:
        pass  # the terminal went away, or the group did
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)
        os.close(fd)
