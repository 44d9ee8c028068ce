"""Commands credhelper runs for the user (`on_refresh` hooks, `mfa_command`), each in a process group
of its own, so that a timeout, or credhelper stopping, ends the command and everything it started
(`sh -c '...; sleep 60'`), never leaving them orphaned. They start with the signal state a shell
gives its children: nothing ignored that Python ignores for itself, nothing blocked (`signals`)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass

from .signals import defaults_in_the_child, nothing_blocked

KILL_GRACE_SECONDS = 0.5

_running: set[subprocess.Popen[bytes]] = set()
_running_lock = threading.Lock()
_stopping = threading.Event()


@dataclass(frozen=True)
class Finished:
    status: int | None  # None: ran over its time, or credhelper is stopping, and it was ended
    stdout: bytes = b""


def signal_group(group: int, signum: int) -> None:
    """Signal a process group; one that has gone already is not an error."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(group, signum)


def _end(processes: list[subprocess.Popen[bytes]], grace: float) -> None:
    """SIGTERM to each whole group, then SIGKILL to whatever is still there after `grace`."""
    for process in processes:
        signal_group(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for process in processes:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(max(0.0, deadline - time.monotonic()))
        signal_group(process.pid, signal.SIGKILL)  # what the leader left behind goes too


def stopping() -> bool:
    return _stopping.is_set()


def end_all(grace: float = KILL_GRACE_SECONDS) -> None:
    """End every command in flight and start no new one: the process is stopping."""
    _stopping.set()
    with _running_lock:
        running = list(_running)
    _end(running, grace)


def run(
    argv: list[str],
    timeout: float,
    env: Mapping[str, str] | None = None,
    capture: bool = False,
    stdout: int | None = None,
    stderr: int | None = None,
) -> Finished:
    """Run `argv` in a new session with stdin from /dev/null. Raises OSError when it cannot start."""
    with _running_lock:
        if _stopping.is_set():
            return Finished(None)
        with nothing_blocked():
            process = subprocess.Popen(
                argv,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE if capture else stdout,
                stderr=subprocess.DEVNULL if capture else stderr,
                start_new_session=True,
                restore_signals=True,  # SIGPIPE and SIGXFSZ, which Python ignores, at their defaults
                preexec_fn=defaults_in_the_child(),  # and what credhelper inherited ignored
            )
        _running.add(process)
    try:
        output, _ = process.communicate(timeout=timeout)
        return Finished(None if _stopping.is_set() else process.returncode, output or b"")
    except subprocess.TimeoutExpired:
        _end([process], KILL_GRACE_SECONDS)
        process.communicate()
        return Finished(None)
    finally:
        with _running_lock:
            _running.discard(process)
