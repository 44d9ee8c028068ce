"""`credhelper run` with many profiles, end to end: a whole wave of refreshes hangs on STS, and
SIGTERM still ends the daemon. How a wave is started, bounded and reported (READY only once every
profile is written) is tested on a made-up clock in test_coordinator.py."""

from __future__ import annotations

import signal
import time
from pathlib import Path

from credhelper.policy import REFRESH_CONCURRENCY
from tests.conftest import UserHome
from tests.daemonproc import DaemonProcess, wait_for
from tests.stsproxy import Fault

PROFILES = REFRESH_CONCURRENCY + 8  # more than one wave


def many_profiles(home: UserHome, count: int) -> list[Path]:
    """`count` profiles of the same role and source, each with its own app's `.env`."""
    home.write_config()
    base = home.config_file.read_text().split("\n", 1)[1].replace('env_files = ["~/app/.env"]\n', "")
    tables = []
    env_files = []
    for number in range(count):
        (home.root / f"app{number}").mkdir()
        env_files.append(home.root / f"app{number}" / ".env")
        tables.append(f'[profiles.p{number}]\n{base}env_files = ["~/app{number}/.env"]\n')
    home.config_file.write_text("\n".join(tables))
    return env_files


def test_sigterm_during_a_wave_of_refreshes_exits_0_within_2_s(
    home: UserHome, daemons: list[DaemonProcess]
) -> None:
    many_profiles(home, PROFILES)
    home.proxy.add_fault(Fault("delay", action="AssumeRole", seconds=30))
    daemon = DaemonProcess(home)
    daemons.append(daemon)
    wait_for(lambda: home.proxy.in_flight == REFRESH_CONCURRENCY, timeout=30)
    started = time.monotonic()
    daemon.signal(signal.SIGTERM)
    assert daemon.process.wait(5) == 0
    assert time.monotonic() - started < 2.0
    assert not (home.cache_dir / "daemon.pid").exists()
