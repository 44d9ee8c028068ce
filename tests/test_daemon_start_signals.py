"""SIGHUP and SIGUSR1 right at the daemon's start (a `systemctl reload`, a `kill -USR1` from a
script an instant after it started it): their default action would end it before its handlers are
in place, so the entry point ignores them at its first line, before importing anything."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO, UserHome

HELD = (1 << (signal.SIGHUP - 1)) | (1 << (signal.SIGUSR1 - 1))


def _masks(pid: int) -> tuple[int, int] | None:
    """(ignored, caught) of a running process, from /proc; None once it has gone."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
    return int(fields["SigIgn"], 16), int(fields["SigCgt"], 16)


@pytest.mark.parametrize(
    "options",
    [pytest.param(["--log-level", "info"], id="run"), pytest.param(["--log-level=debug"], id="debug-run")],
)
def test_sighup_and_sigusr1_from_the_first_line_on_never_end_a_starting_daemon(
    home: UserHome, options: list[str]
) -> None:
    log = home.root.parent / "daemon.log"
    with log.open("w") as out:
        daemon = subprocess.Popen(
            [sys.executable, "-m", "credhelper", *options, "run"],
            env=home.env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=home.root,
            start_new_session=True,
        )
    try:
        # Until its first line has run, the interpreter is still starting: no Python code can
        # ignore a signal earlier. From then on, a burst of both, through the whole start.
        while (masks := _masks(daemon.pid)) is not None and (masks[0] & HELD) != HELD:
            assert not masks[1] & HELD, (
                "SIGHUP and SIGUSR1 stayed at their default (ending the daemon) until its handlers "
                "were in place"
            )
        sent = 0
        until = time.monotonic() + 30
        while "running:" not in log.read_text() and daemon.poll() is None and time.monotonic() < until:
            daemon.send_signal(signal.SIGUSR1)
            daemon.send_signal(signal.SIGHUP)
            sent += 1
            time.sleep(0.001)
        for _ in range(20):  # and once it runs
            daemon.send_signal(signal.SIGUSR1)
            daemon.send_signal(signal.SIGHUP)
        assert daemon.poll() is None, f"the daemon ended ({daemon.returncode}) after {sent} pairs of signals"
        assert sent > 10, "the burst must cover the daemon's start"
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(20) == 0, log.read_text()
        assert "stopped" in log.read_text()
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait()


ENTRY_POINT = """
import json, signal, sys
# As a login shell starts a command: whatever the test run itself inherited (nohup ignores SIGHUP).
signal.signal(signal.SIGHUP, signal.SIG_DFL)
signal.signal(signal.SIGUSR1, signal.SIG_DFL)
sys.argv = ["credhelper", *sys.argv[1:]]
before = set(sys.modules)
import credhelper.main
print(json.dumps({
    "ignored": [s.name for s in (signal.SIGHUP, signal.SIGUSR1) if signal.getsignal(s) == signal.SIG_IGN],
    "imported": sorted(m for m in set(sys.modules) - before if m.startswith("credhelper")),
}))
"""


@pytest.mark.parametrize(
    "argv",
    [
        ["run"],
        ["--log-level", "debug", "run"],
        ["--log-level=debug", "run", "bedrock"],
        ["--config", "/x.toml", "--log-level", "info", "run"],
        ["status"],
        ["exec", "run", "--", "run"],
    ],
)
def test_the_entry_point_holds_the_daemon_s_signals_as_it_is_imported(argv: list[str]) -> None:
    result = subprocess.run(
        [sys.executable, "-c", ENTRY_POINT, *argv],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    seen = json.loads(result.stdout)
    daemon = "run" in argv[:5] and argv[0] != "exec" and argv[0] != "status"
    assert seen["ignored"] == (["SIGHUP", "SIGUSR1"] if daemon else []), (
        "the daemon's SIGHUP and SIGUSR1 must be ignored at the entry module's import (only for run)"
    )
    assert seen["imported"] == ["credhelper", "credhelper.main"], "nothing else imported before it"
