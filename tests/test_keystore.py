"""The keyring looked at from a process of its own, as `status`, `doctor` and `init` look at it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO
from tests.secretservice import SecretService


def test_looking_at_the_keyring_runs_no_compiler(tmp_path: Path) -> None:
    """keyring's macOS backend, imported on every platform, runs gcc to find a macOS framework."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "calls"
    for name in ("gcc", "cc", "ld"):
        fake = bin_dir / name
        fake.write_text(f'#!/bin/sh\necho "{name} $*" >> {calls}\nexit 1\n')
        fake.chmod(0o755)
    env = {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "HOME": str(tmp_path),
        "PYTHONPATH": str(REPO),
        "DBUS_SESSION_BUS_ADDRESS": f"unix:path={tmp_path / 'no-bus'}",
    }
    script = "from credhelper.keystore import keyring_condition; print(keyring_condition().state)"
    looked = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60
    )
    assert looked.stdout.strip() == "absent", looked.stderr
    assert not calls.exists(), calls.read_text()


def test_a_secret_service_that_comes_up_later_is_found_by_a_process_that_looked_before(
    tmp_path: Path,
) -> None:
    """A daemon started before the desktop's keyring (a user unit starting first) finds it once it
    is up, and does not keep "no keyring" for the rest of its life."""
    home = tmp_path / "home"
    home.mkdir()
    service = SecretService(home, tmp_path / "runtime", started=False)
    script = (
        "import sys\nfrom credhelper.keystore import keyring_condition\n"
        "print(keyring_condition().state, flush=True)\nsys.stdin.readline()\n"
        "print(keyring_condition().state, flush=True)\n"
    )
    looking = subprocess.Popen(
        [sys.executable, "-c", script],
        env={**service.env, "PYTHONPATH": str(REPO)},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert looking.stdout is not None and looking.stdin is not None
        assert looking.stdout.readline().strip() == "absent"
        service.start_keyring_daemon()
        looking.stdin.write("\n")
        looking.stdin.flush()
        assert looking.stdout.readline().strip() == "unlocked"
    finally:
        looking.kill()
        looking.wait()
        service.stop()
