"""`credhelper run` with many profiles: the first refresh of all of them runs several at a time,
and every rule of the daemon still holds."""

from __future__ import annotations

import signal
import socket
import time
from pathlib import Path

from credhelper.policy import REFRESH_CONCURRENCY
from tests.conftest import UserHome
from tests.daemonproc import DaemonProcess, wait_for
from tests.helpers import read_env
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


def key_id(path: Path) -> str | None:
    try:
        return read_env(path).get("AWS_ACCESS_KEY_ID") or None
    except FileNotFoundError:
        return None


def test_profiles_refresh_a_bounded_number_at_a_time_and_ready_waits_for_all(
    home: UserHome, daemons: list[DaemonProcess], tmp_path: Path
) -> None:
    env_files = many_profiles(home, PROFILES)
    home.proxy.add_fault(Fault("delay", action="AssumeRole", seconds=0.5))
    address = str(tmp_path / "notify.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(address)
    listener.settimeout(60)
    daemon = DaemonProcess(home, env=dict(home.env, NOTIFY_SOCKET=address))
    daemons.append(daemon)
    try:
        while listener.recv(4096) != b"READY=1":
            pass
        written_at_ready = [key_id(path) for path in env_files]
    finally:
        listener.close()
    assert all(k and k.startswith("ASIA") for k in written_at_ready), "READY=1 before every .env was written"
    assert home.proxy.count("AssumeRole") == PROFILES  # one STS call per profile
    assert 1 < home.proxy.most_in_flight <= REFRESH_CONCURRENCY  # several at once, never more than the bound
    assert daemon.log.count("wrote ") == PROFILES


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


def test_sigusr1_while_a_refresh_is_in_flight_is_not_lost(
    home: UserHome, daemons: list[DaemonProcess]
) -> None:
    home.proxy.add_fault(Fault("delay", action="AssumeRole", seconds=2, remaining=1))
    daemon = DaemonProcess(home)
    daemons.append(daemon)
    wait_for(lambda: home.proxy.in_flight == 1, timeout=30)
    daemon.signal(signal.SIGUSR1)  # asked after the first refresh began: that one does not serve it
    first = daemon.wait_written()
    wait_for(lambda: (k := daemon.env_key_id()) != first and k, timeout=15)
    assert home.proxy.count("AssumeRole") == 2
    assert home.proxy.most_in_flight == 1  # the forced refresh waited for the one in flight
