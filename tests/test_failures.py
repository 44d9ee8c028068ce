"""Failures that are not AWS's answers (a full disk, a held lock, a hook that hangs, damaged state,
sessions shorter than asked) go through the same backoff and the same one-line errors."""

from __future__ import annotations

import json
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from credhelper.errors import CredhelperError
from credhelper.fileio import LockTimeout, file_lock
from tests.conftest import UserHome
from tests.daemonproc import DaemonProcess, wait_for
from tests.helpers import assert_one_line_failure
from tests.stsproxy import Fault


def tmpfs_cache(home: UserHome, size: str, fill: bool = False) -> list[str]:
    """A wrapper that runs a command with the cache directory on a tmpfs of its own (a private
    mount namespace), full from the start when `fill`."""
    cache = shlex.quote(str(home.cache_dir))
    home.cache_dir.mkdir(parents=True, exist_ok=True)
    script = f"mount -t tmpfs -o size={size},mode=0700 tmpfs {cache}"
    if fill:
        script += f" && {{ cat /dev/zero > {cache}/filler 2>/dev/null; true; }}"
    return ["unshare", "-m", "sh", "-c", script + ' && exec "$@"', "sh"]


def fill_up(directory: Path) -> None:
    with open(directory / "filler", "wb", buffering=0) as handle:
        try:
            while True:
                handle.write(b"\0" * 65536)
        except OSError:
            pass


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state != "Z"


def test_refresh_on_a_full_cache_disk_is_one_line_exit_1_after_one_sts_call(home: UserHome) -> None:
    before = home.app_env.read_bytes()
    result = subprocess.run(
        [*tmpfs_cache(home, "64k", fill=True), sys.executable, "-m", "credhelper", "refresh"],
        env=home.env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=home.root,
        start_new_session=True,
    )
    line = assert_one_line_failure(result, 1, "No space left on device")
    assert "internal error" not in line, "a full disk reported as a bug"
    assert home.proxy.count("AssumeRole") == 1
    assert home.app_env.read_bytes() == before


@pytest.mark.slow(seconds=10)
def test_a_full_cache_disk_in_the_daemon_backs_off_instead_of_calling_sts_every_second(
    home: UserHome, daemons: list[DaemonProcess]
) -> None:
    daemon = DaemonProcess(home, wrapper=tmpfs_cache(home, "1m"))
    daemons.append(daemon)
    daemon.wait_written()
    fill_up(Path(f"/proc/{daemon.process.pid}/root") / home.cache_dir.relative_to("/"))
    before = home.proxy.count("AssumeRole")
    daemon.signal(signal.SIGUSR1)  # a refresh that cannot be cached
    time.sleep(10)
    calls = home.proxy.count("AssumeRole") - before
    assert daemon.process.poll() is None
    assert 1 <= calls <= 5, f"{calls} STS calls in 10 s with a full disk: no backoff"
    assert "No space left on device" in daemon.log and "next try in" in daemon.log
    assert "Traceback" not in daemon.log


def test_a_lock_held_by_another_process_names_the_process_and_the_file(tmp_path: Path) -> None:
    lock = tmp_path / "bedrock.lock"
    holder = subprocess.Popen(["flock", str(lock), "sleep", "30"])
    try:
        wait_for(lambda: subprocess.run(["flock", "-n", str(lock), "true"]).returncode != 0, timeout=10)
        with pytest.raises(LockTimeout) as caught, file_lock(lock, timeout=0.2):
            pass
    finally:
        holder.kill()
        holder.wait()
    assert isinstance(caught.value, CredhelperError) and caught.value.exit_code == 1
    assert f"process {holder.pid}" in str(caught.value) and str(lock) in str(caught.value)


@pytest.mark.slow(seconds=10)
def test_refresh_with_a_held_state_lock_says_who_holds_it_and_exits_1(home: UserHome) -> None:
    home.cache_dir.mkdir(parents=True, exist_ok=True)
    lock = home.cache_dir / "bedrock.state.lock"
    holder = subprocess.Popen(["flock", str(lock), "sleep", "60"])
    try:
        wait_for(lambda: subprocess.run(["flock", "-n", str(lock), "true"]).returncode != 0, timeout=10)
        result = home.run("refresh")
    finally:
        holder.kill()
        holder.wait()
    line = assert_one_line_failure(result, 1, f"process {holder.pid}", str(lock))
    assert "internal error" not in line


def test_sigterm_during_a_long_hook_ends_the_daemon_and_the_hook_s_process_group(
    home: UserHome, daemons: list[DaemonProcess]
) -> None:
    pids = home.root / "hook-pids"
    hook = f'["sh", "-c", "echo $$ >> {pids}; sleep 60 & echo $! >> {pids}; wait"]'
    home.write_config(on_refresh=hook)
    daemon = DaemonProcess(home)
    daemons.append(daemon)
    wait_for(lambda: pids.exists() and len(pids.read_text().split()) == 2, timeout=30)
    hook_pids = [int(pid) for pid in pids.read_text().split()]
    started = time.monotonic()
    daemon.signal(signal.SIGTERM)
    assert daemon.process.wait(10) == 0
    took = time.monotonic() - started
    assert took < 5, f"the daemon took {took:.1f} s to stop while a hook ran"  # liveness, not speed
    wait_for(lambda: not any(alive(pid) for pid in hook_pids), timeout=2)


@pytest.mark.slow(seconds=7)
def test_sessions_that_arrive_short_are_renewed_at_half_life_not_in_a_loop(
    home: UserHome, daemons: list[DaemonProcess]
) -> None:
    home.write_config(duration_seconds="900", refresh_before_seconds="800")
    # What a clock 110 s ahead of AWS's sees: sessions of 900 s arrive with 790 s left.
    home.proxy.add_fault(Fault("expires", action="AssumeRole", seconds=790))
    daemon = DaemonProcess(home)
    daemons.append(daemon)
    daemon.wait_written()
    time.sleep(5)
    for _ in range(3):  # an SDK asking meanwhile is served from the cache too
        assert home.run("credential-process", "bedrock").returncode == 0
    assert home.proxy.count("AssumeRole") == 1, "short sessions renewed again and again"
    assert "maximum session duration" in daemon.log and "clock" in daemon.log
    status = json.loads(home.run("status", "--json").stdout)[0]
    assert status["next_refresh"] is not None


def test_a_failing_mfa_command_makes_status_say_a_code_is_needed(home: UserHome) -> None:
    home.write_config(mfa_serial='"arn:aws:iam::123456789012:mfa/bedrock-developer"', mfa_command='["false"]')
    assert_one_line_failure(home.run("refresh"), 77, "mfa_command")
    status = json.loads(home.run("status", "--json").stdout)[0]
    assert status["mfa_code_needed"] is True


def test_a_failed_refresh_over_damaged_state_reports_the_sts_error(home: UserHome) -> None:
    home.cache_dir.mkdir(parents=True, exist_ok=True)
    (home.cache_dir / "bedrock.state.json").write_text(
        json.dumps({"format": "credhelper-state/1", "attempts": "yesterday", "last_refresh": "yesterday"})
    )
    home.proxy.add_fault(Fault("code", action="AssumeRole", code="AccessDenied", status=403))
    assert_one_line_failure(home.run("refresh"), 77, "denied")


@pytest.mark.parametrize(
    "state", ["starting", "sts-call-in-flight", "failing-with-backoff", "mfa-command-running"]
)
def test_sigterm_ends_the_daemon_in_every_state(
    home: UserHome, daemons: list[DaemonProcess], state: str
) -> None:
    pid_file = home.root / "mfa-command-pid"
    if state == "sts-call-in-flight":
        home.proxy.add_fault(Fault("delay", action="AssumeRole", seconds=20))
    elif state == "failing-with-backoff":
        home.proxy.add_fault(Fault("throttle", action="AssumeRole"))
    elif state == "mfa-command-running":
        command = f'["sh", "-c", "echo $$ > {pid_file}; exec sleep 60"]'
        home.write_config(mfa_serial='"arn:aws:iam::123456789012:mfa/bedrock-developer"', mfa_command=command)
    daemon = DaemonProcess(home)
    daemons.append(daemon)
    if state == "sts-call-in-flight":
        wait_for(lambda: home.proxy.count("AssumeRole") >= 1, timeout=30)
    elif state == "failing-with-backoff":
        wait_for(lambda: "next try in" in daemon.log, timeout=60)
    elif state == "mfa-command-running":
        wait_for(lambda: pid_file.exists() and pid_file.read_text().strip(), timeout=30)
    started = time.monotonic()
    daemon.signal(signal.SIGTERM)
    daemon.process.wait(10)
    took = time.monotonic() - started
    assert took < 5, f"the daemon took {took:.1f} s to stop ({state})"  # liveness, not speed
    if state == "mfa-command-running":
        mfa_pid = int(pid_file.read_text())
        wait_for(lambda: not alive(mfa_pid), timeout=2)


@pytest.mark.slow(seconds=5)
def test_endpoint_requests_while_sts_fails_add_no_sts_calls_to_the_backoff(
    home: UserHome, tmp_path: Path
) -> None:
    from tests.test_endpoint import endpoint_of, get, serving

    home.proxy.add_fault(Fault("throttle", action="AssumeRole"))
    with serving(home, tmp_path) as (daemon, variables):
        wait_for(lambda: "next try in" in daemon.log, timeout=60)
        url, token = endpoint_of(variables)
        before = home.proxy.count("AssumeRole")
        statuses = [get(url, {"Authorization": token})[0] for _ in range(5)]
        calls = home.proxy.count("AssumeRole") - before
    assert statuses == [503] * 5
    # botocore tries 4 times per refresh: at most two of the backoff's own refreshes, none per request
    assert calls <= 8, f"{calls} AssumeRole calls for 5 requests while STS throttled"


def test_a_target_that_cannot_be_written_is_retried_with_backoff_from_the_cache(
    home: UserHome, daemons: list[DaemonProcess]
) -> None:
    app = shlex.quote(str(home.app_env.parent))
    read_only_app = [
        "unshare",
        "-m",
        "sh",
        "-c",
        f'mount --bind {app} {app} && mount -o remount,bind,ro {app} && exec "$@"',
        "sh",
    ]
    daemon = DaemonProcess(home, wrapper=read_only_app)
    daemons.append(daemon)
    wait_for(lambda: daemon.log.count("next try in") >= 2, timeout=30)
    assert "Read-only file system" in daemon.log
    assert home.proxy.count("AssumeRole") == 1, "a target that cannot be written made new STS calls"
    status = json.loads(home.run("status", "--json").stdout)[0]
    assert "Read-only file system" in (status["last_error"] or "")
