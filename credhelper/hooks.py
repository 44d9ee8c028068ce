"""`on_refresh` hooks: argv, no shell, a timeout, and never a secret in their environment.

Each hook runs in a process group of its own, so that a timeout, or the daemon stopping, ends the
hook and everything it started (`sh -c '...; sleep 60'`), never leaving them orphaned.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping

from .credentials import Credentials
from .profile import Profile

HOOK_TIMEOUT_SECONDS = 60
KILL_GRACE_SECONDS = 0.5
log = logging.getLogger("credhelper.hooks")
SECRET_VARIABLES = ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN")

_running: set[subprocess.Popen[bytes]] = set()
_running_lock = threading.Lock()
_stopping = threading.Event()


def hook_environment(base: Mapping[str, str], profile: Profile, credentials: Credentials) -> dict[str, str]:
    env = {k: v for k, v in base.items() if k not in SECRET_VARIABLES}
    env["CREDHELPER_PROFILE"] = profile.name
    env["CREDHELPER_EXPIRATION"] = credentials.expiration_text
    return env


def _signal_group(process: subprocess.Popen[bytes], signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signum)


def _end(process: subprocess.Popen[bytes], grace: float) -> None:
    """SIGTERM to the hook's whole group, then SIGKILL if it is still there after `grace`."""
    _signal_group(process, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(grace)
    _signal_group(process, signal.SIGKILL)  # whatever the leader left behind goes too


def end_all_hooks(grace: float = KILL_GRACE_SECONDS) -> None:
    """End every hook in flight and refuse new ones: the process is stopping."""
    _stopping.set()
    with _running_lock:
        running = list(_running)
    for process in running:
        _signal_group(process, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for process in running:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(max(0.0, deadline - time.monotonic()))
        _signal_group(process, signal.SIGKILL)


def _run(argv: list[str], env: dict[str, str]) -> int | None:
    """The hook's exit status; None when it ran over its time and was ended."""
    with _running_lock:
        if _stopping.is_set():
            return None
        process = subprocess.Popen(
            argv,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=sys.stderr.fileno(),
            stderr=sys.stderr.fileno(),
            start_new_session=True,
        )
        _running.add(process)
    try:
        return process.wait(HOOK_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        _end(process, KILL_GRACE_SECONDS)
        process.wait()
        return None
    finally:
        with _running_lock:
            _running.discard(process)


def run_hooks(profile: Profile, credentials: Credentials, environ: Mapping[str, str]) -> bool:
    """Run the profile's on_refresh command; its output goes to stderr. False when it failed."""
    if not profile.on_refresh:
        return True
    argv = [os.path.expanduser(part) for part in profile.on_refresh]
    try:
        status = _run(argv, hook_environment(environ, profile, credentials))
    except FileNotFoundError:
        log.warning("profile %s: on_refresh command %r not found; fix on_refresh", profile.name, argv[0])
        return False
    except OSError as exc:
        log.warning("profile %s: on_refresh hook could not start: %s", profile.name, exc.strerror)
        return False
    if status is None:
        if not _stopping.is_set():
            log.warning(
                "profile %s: on_refresh hook ran over %d s and was stopped",
                profile.name,
                HOOK_TIMEOUT_SECONDS,
            )
        return False
    if status != 0:
        if not _stopping.is_set():
            log.warning("profile %s: on_refresh hook exited %d", profile.name, status)
        return False
    return True
