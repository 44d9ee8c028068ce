"""The guardian of a supervised exec's command: ends the command's whole process group when exec
ends, however exec ends (SIGKILL and the OOM killer included).

A supervised command runs in a process group of its own, holding credentials in its environment;
so do its children (`sh -c 'sleep 77; echo'`: the `sleep`). The parent-death signal
(PR_SET_PDEATHSIG) reaches the direct child only, and a SIGKILLed exec can do nothing itself. So
exec starts this small process next to it, in a session of its own (no terminal's signals, no
`kill` of exec's group reaches it), with a socket whose other end only exec holds (close-on-exec:
the command never inherits it). Each command announces its process group on that socket from its
preexec, after fork and before anything of the command runs, so no start goes unguarded. When
exec's end closes, for whatever reason, the guardian reads end-of-file and ends the last group
announced: SIGTERM (and SIGCONT, for a group stopped by Ctrl-Z), the grace period, then SIGKILL
for whatever is left. A group exec stopped itself is empty by then, and a killpg to it does
nothing.

Why not the alternatives: PR_SET_CHILD_SUBREAPER only makes exec the reaper of orphans, which is
no help once exec itself is dead; a guardian as the group's leader would stand between exec and
the command (its pid, exit status, stops); a cgroup needs a delegated hierarchy.

The guardian runs as `python -I -S guardian.py GRACE` with an empty environment: standard library
only, no credhelper import, nothing secret in its environment.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sys
import time

POLL_SECONDS = 0.05


class GroupGuard:
    """exec's side: starts the guardian; `announce` (in the command's preexec) names the group to
    end; the guardian acts when exec's end closes, at `close` or when exec dies."""

    def __init__(self, grace_seconds: float) -> None:
        import subprocess

        from ..signals import nothing_blocked

        nothing: dict[str, str] = {}  # no variable of exec's, secret or not
        ours, theirs = socket.socketpair()  # both close-on-exec
        try:
            with nothing_blocked():
                self.process = subprocess.Popen(
                    [sys.executable, "-I", "-S", os.path.abspath(__file__), f"{grace_seconds:g}"],
                    stdin=theirs.fileno(),
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    env=nothing,
                    start_new_session=True,
                )
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        self._ours = ours

    def announce(self) -> None:
        """In the command's child process, between fork and exec: this process's group is the one
        to end (the command leads a group of its own, so its number is the pid). MSG_NOSIGNAL: a
        guardian that has gone costs no SIGPIPE."""
        with contextlib.suppress(OSError):
            self._ours.send(b"%d\n" % os.getpid(), socket.MSG_NOSIGNAL)

    def close(self) -> None:
        """exec is ending: the guardian ends the last group announced, and then itself."""
        self._ours.close()


def _signal_group(group: int, signum: int) -> bool:
    """Whether the group still had a process to signal."""
    try:
        os.killpg(group, signum)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def end_group(group: int, grace_seconds: float) -> None:
    if not _signal_group(group, signal.SIGTERM):
        return
    _signal_group(group, signal.SIGCONT)
    deadline = time.monotonic() + grace_seconds
    while time.monotonic() < deadline:
        time.sleep(POLL_SECONDS)
        if not _signal_group(group, 0):
            return
    _signal_group(group, signal.SIGKILL)


def guard(stream: int, grace_seconds: float) -> None:
    """Read group numbers, one a line, until end-of-file; then end the last one."""
    group = 0
    pending = b""
    while True:
        try:
            data = os.read(stream, 512)
        except OSError:
            data = b""
        if not data:
            break
        *lines, pending = (pending + data).split(b"\n")
        for line in lines:
            if line.strip().isdigit():
                group = int(line)
    if group > 1:
        end_group(group, grace_seconds)


if __name__ == "__main__":
    guard(0, float(sys.argv[1]))
