"""`credhelper run` as users leave it running: against the local STS, through the fault proxy."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import stat
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import AGENT0_ENV_DEFAULT, UserHome
from tests.daemonproc import DaemonProcess, wait_for
from tests.helpers import read_env
from tests.stsproxy import Fault

FAST = {"duration_seconds": "900", "refresh_before_seconds": "885"}  # a refresh about every 15 s


def start(
    daemons: list[DaemonProcess], home: UserHome, *args: str, **kwargs: dict[str, str]
) -> DaemonProcess:
    daemon = DaemonProcess(home, *args, **kwargs)  # type: ignore[arg-type]
    daemons.append(daemon)
    return daemon


@pytest.mark.slow(seconds=16)
def test_keys_rotate_and_every_snapshot_holds_one_issued_set(
    home: UserHome, daemons: list[DaemonProcess]
) -> None:
    """The one test that waits for real sessions to come due; the schedule itself is tested
    in milliseconds in test_policy.py, test_schedule.py and test_coordinator.py."""
    home.write_config(**FAST)
    daemon = start(daemons, home)
    issued: dict[str, tuple[str, str]] = {}
    snapshots: list[tuple[str, str, str]] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len({s[0] for s in snapshots}) < 2:
        try:
            record = json.loads((home.cache_dir / "bedrock.json").read_text())["credentials"]
            issued[record["AccessKeyId"]] = (record["SecretAccessKey"], record["SessionToken"])
        except (FileNotFoundError, ValueError):
            pass
        values = read_env(home.app_env)
        if values.get("AWS_ACCESS_KEY_ID"):
            snapshots.append(
                (
                    values["AWS_ACCESS_KEY_ID"],
                    values["AWS_SECRET_ACCESS_KEY"] or "",
                    values["AWS_SESSION_TOKEN"] or "",
                )
            )
        time.sleep(0.1)
    assert daemon.process.poll() is None
    key_ids = list(dict.fromkeys(s[0] for s in snapshots))
    assert len(key_ids) == 2, "the keys did not rotate before the session came due"
    for key_id, secret, token in snapshots:
        assert issued[key_id] == (secret, token), "a .env snapshot mixed two credential sets"
    assert len(snapshots) > 50
    assert home.proxy.count("AssumeRole") == len(issued)


@pytest.mark.parametrize("how", ["truncated-in-place", "created-anew"])
def test_a_person_writing_a_target_slowly_in_place_loses_nothing(
    home: UserHome, daemons: list[DaemonProcess], how: str
) -> None:
    """An editor or `cp` writing over a target in place truncates it (or creates it) and writes an
    instant later; on a busy machine that instant can last longer than the daemon lets a change
    settle. The daemon waits for the writer to close the file: a restore in between would rename
    a new file over the one being written, and the person's text would land in the replaced file."""
    daemon = start(daemons, home)
    key_id = daemon.wait_written()
    if how == "created-anew":
        home.app_env.unlink()  # and created at once, well within the daemon's settling time
    fd = os.open(home.app_env, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        time.sleep(1.0)  # twenty times the daemon's settling time
        os.write(fd, (AGENT0_ENV_DEFAULT + "ADDED_BY_A_PERSON=yes\n").encode())
    finally:
        os.close(fd)
    wait_for(lambda: daemon.env_key_id() == key_id, timeout=10, interval=0.02)
    values = read_env(home.app_env)
    assert values.get("ADDED_BY_A_PERSON") == "yes", "the person's text went into a replaced file"
    assert values["COOKIE_SECRET"] == "change-me-to-a-long-random-string"


def test_overwritten_edited_and_deleted_targets_come_back_within_a_second(
    home: UserHome, daemons: list[DaemonProcess]
) -> None:
    daemon = start(daemons, home)
    key_id = daemon.wait_written()
    default = home.root / "app" / ".env.default"
    default.write_text(AGENT0_ENV_DEFAULT + "ADDED_BY_A_PERSON=yes\n")

    started = time.monotonic()
    # `cp .env.default .env` itself: it truncates the file and writes it an instant later. (A copy
    # from this many-threaded process can stall between the two for longer than the daemon lets a
    # change settle on a busy machine; the daemon then restores the empty file it saw, and the
    # copy's text lands in the file it replaced.)
    subprocess.run(["cp", str(default), str(home.app_env)], check=True)
    wait_for(lambda: daemon.env_key_id() == key_id, timeout=1.0, interval=0.01)
    restored_in = time.monotonic() - started
    values = read_env(home.app_env)
    assert (
        values["ADDED_BY_A_PERSON"] == "yes"
        and values["COOKIE_SECRET"] == "change-me-to-a-long-random-string"
    )
    assert restored_in < 1.0

    home.app_env.unlink()
    wait_for(lambda: daemon.env_key_id() == key_id, timeout=1.0, interval=0.01)
    assert stat.S_IMODE(home.app_env.stat().st_mode) == 0o600
    assert set(read_env(home.app_env)) == {
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_CREDENTIAL_EXPIRATION",
        "AWS_REGION",
    }

    with home.app_env.open("a") as handle:  # an edit that blanks the key
        handle.write("AWS_ACCESS_KEY_ID=\n")
    wait_for(lambda: daemon.env_key_id() == key_id, timeout=1.0, interval=0.01)
    assert home.proxy.count("AssumeRole") == 1  # restoring never calls STS


@pytest.mark.slow(seconds=7)
def test_idle_daemon_does_not_write_or_call_sts(home: UserHome, daemons: list[DaemonProcess]) -> None:
    daemon = start(daemons, home)
    daemon.wait_written()
    time.sleep(0.5)
    written = home.app_env.stat().st_mtime_ns
    time.sleep(6)
    assert home.app_env.stat().st_mtime_ns == written  # its own write did not trigger another
    assert home.proxy.count("AssumeRole") == 1


@pytest.mark.slow(seconds=9)
def test_throttling_keeps_the_old_credentials_then_recovers(
    home: UserHome, daemons: list[DaemonProcess]
) -> None:
    daemon = start(daemons, home)
    first = daemon.wait_written()
    # Every HTTP attempt of one refresh (botocore tries 4 times) is throttled; the next one passes.
    home.proxy.add_fault(Fault("throttle", action="AssumeRole", remaining=4))
    daemon.signal(signal.SIGUSR1)

    def last_error() -> str:
        return str(json.loads(home.run("status", "--json").stdout)[0]["last_error"] or "")

    wait_for(lambda: "Throttling" in daemon.log, timeout=30)  # then `status`, not a `status` every 0.2 s
    wait_for(lambda: "Throttling" in last_error(), timeout=30, interval=0.2)
    assert daemon.env_key_id() == first, "the old credentials left the .env while STS throttled"
    assert daemon.process.poll() is None
    recovered = wait_for(lambda: (k := daemon.env_key_id()) != first and k, timeout=30, interval=0.2)
    assert recovered.startswith("ASIA")
    assert "Throttling" in daemon.log and "next try in" in daemon.log
    status = json.loads(home.run("status", "--json").stdout)[0]
    assert status["last_error"] is None and status["condition"] == "valid"


def test_sigterm_and_sigint_exit_0_within_2_s(home: UserHome, daemons: list[DaemonProcess]) -> None:
    for signum in (signal.SIGTERM, signal.SIGINT):
        daemon = start(daemons, home)
        daemon.wait_written()
        started = time.monotonic()
        daemon.signal(signum)
        assert daemon.process.wait(5) == 0
        assert time.monotonic() - started < 2.0
        assert not (home.cache_dir / "daemon.pid").exists()


def test_sigterm_right_after_sigusr1_stops_the_daemon_within_2_s(
    home: UserHome, daemons: list[DaemonProcess]
) -> None:
    """With SIGUSR1 still pending on the main thread, the kernel hands SIGTERM to another thread;
    only the main thread runs Python's handlers, and it must wake for it at once (not at the end
    of some timeout)."""
    for attempt in range(6):
        daemon = start(daemons, home)
        daemon.wait_running()
        daemon.signal(signal.SIGUSR1)
        daemon.signal(signal.SIGTERM)
        took = seconds_to_exit(daemon, 10)
        assert daemon.process.poll() == 0 and took < 3.0, (
            f"attempt {attempt + 1}: the daemon took {took:.1f} s to stop on SIGTERM after SIGUSR1"
        )


def seconds_to_exit(daemon: DaemonProcess, timeout: float) -> float:
    """How long the daemon took to exit, waiting at most `timeout` seconds."""
    started = time.monotonic()
    with contextlib.suppress(subprocess.TimeoutExpired):
        daemon.process.wait(timeout)
    return time.monotonic() - started


def test_a_burst_of_signals_never_wedges_the_daemon(home: UserHome, daemons: list[DaemonProcess]) -> None:
    """A handler runs between any two bytecodes of the main thread, inside another handler too:
    one that took a lock (an Event's) could wait on itself for ever. After any burst, SIGTERM
    still ends the daemon at once."""
    daemon = start(daemons, home)
    daemon.wait_written()
    for _ in range(300):
        daemon.signal(signal.SIGUSR1)
        daemon.signal(signal.SIGHUP)
    daemon.signal(signal.SIGTERM)
    daemon.signal(signal.SIGTERM)
    took = seconds_to_exit(daemon, 15)
    assert daemon.process.poll() == 0 and took < 5.0, f"the daemon took {took:.1f} s to stop after a burst"


def test_sighup_and_config_edits_reload_and_a_bad_edit_keeps_the_old_config(
    home: UserHome, daemons: list[DaemonProcess]
) -> None:
    daemon = start(daemons, home)
    key_id = daemon.wait_written()
    second = home.root / "app" / "second.env"
    good = home.config_file.read_text()

    home.config_file.write_text("[profiles.bedrock\nbroken")
    wait_for(lambda: "configuration not reloaded" in daemon.log, timeout=5)
    assert "malformed TOML" in daemon.log
    assert daemon.process.poll() is None

    home.write_config(env_files='["~/app/.env", "~/app/second.env"]')  # picked up by the file watch
    wait_for(lambda: daemon.env_key_id(second) == key_id, timeout=5)

    home.config_file.write_text(good)
    daemon.signal(signal.SIGHUP)
    wait_for(lambda: daemon.log.count("configuration reloaded") >= 2, timeout=5)
    home.app_env.unlink()
    wait_for(lambda: daemon.env_key_id() == key_id, timeout=2)
    assert home.proxy.count("AssumeRole") == 1  # same role settings: the cache served


def test_rotated_source_keys_trigger_a_refresh(home: UserHome, daemons: list[DaemonProcess]) -> None:
    daemon = start(daemons, home)
    first = daemon.wait_written()
    home.sts.set_auth(enforced=False)
    try:
        new_key = home.sts.iam().create_access_key(UserName="bedrock-developer")["AccessKey"]
    finally:
        home.sts.set_auth(enforced=True)
    credentials = home.root / ".aws" / "credentials"
    credentials.write_text(
        f"[bedrock-developer]\naws_access_key_id = {new_key['AccessKeyId']}\n"
        f"aws_secret_access_key = {new_key['SecretAccessKey']}\n"
    )
    wait_for(lambda: (k := daemon.env_key_id()) != first and k, timeout=10)
    assert "source credentials changed" in daemon.log
    assert home.proxy.count("AssumeRole") == 2


def test_a_second_daemon_is_refused_with_the_first_ones_pid(
    home: UserHome, daemons: list[DaemonProcess]
) -> None:
    first = start(daemons, home)
    first.wait_written()
    result = home.run("run", timeout=30)
    assert result.returncode == 1
    assert f"pid {first.process.pid}" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_hooks_run_once_per_refresh_after_the_targets_are_written(
    home: UserHome, daemons: list[DaemonProcess]
) -> None:
    record = home.root / "hook-log"
    hook = (
        f'["sh", "-c", "grep ^AWS_ACCESS_KEY_ID= {home.app_env} >> {record}; '
        f'echo \\"$CREDHELPER_PROFILE $CREDHELPER_EXPIRATION\\" >> {record}"]'
    )
    home.write_config(on_refresh=hook)
    daemon = start(daemons, home)
    key_id = daemon.wait_written()
    for _ in range(2):  # two more refreshes, asked for with SIGUSR1
        daemon.signal(signal.SIGUSR1)
        key_id = wait_for(lambda old=key_id: (k := daemon.env_key_id()) != old and k, timeout=30)
    wait_for(lambda: len(record.read_text().splitlines()) >= 6, timeout=10)
    time.sleep(0.5)
    daemon.stop()
    lines = record.read_text().splitlines()
    written_keys = [line.split("=", 1)[1] for line in lines[0::2]]
    assert len(written_keys) == home.proxy.count("AssumeRole")  # once per refresh
    assert len(set(written_keys)) == len(written_keys)
    assert all(line.startswith("bedrock 20") for line in lines[1::2])


def test_sd_notify_ready_status_and_watchdog(
    home: UserHome, daemons: list[DaemonProcess], tmp_path: Path
) -> None:
    address = str(tmp_path / "notify.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(address)
    listener.settimeout(10)
    env = dict(home.env, NOTIFY_SOCKET=address, WATCHDOG_USEC="1000000")
    daemon = start(daemons, home, env=env)
    messages: list[str] = []
    ready_key = None
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and (
        ready_key is None
        or messages.count("WATCHDOG=1") < 5
        or not any(m.startswith("STATUS=") for m in messages)
    ):
        try:
            message = listener.recv(4096).decode()
        except TimeoutError:
            break
        messages.append(message)
        if message == "READY=1" and ready_key is None:
            ready_key = daemon.env_key_id()
    listener.close()
    # READY only once the .env holds credentials
    assert ready_key is not None and ready_key.startswith("ASIA")
    assert any(m.startswith("STATUS=bedrock: next refresh 20") for m in messages)
    assert messages.count("WATCHDOG=1") >= 5  # every half second, as WATCHDOG_USEC asked
    daemon.stop()


def test_run_with_a_bad_config_exits_78_in_one_line(home: UserHome) -> None:
    home.write_config(duration_seconds="5")
    result = home.run("run", timeout=30)
    assert result.returncode == 78
    assert len(result.stderr.strip().splitlines()) == 1
    assert not os.path.exists(home.cache_dir / "daemon.pid")
