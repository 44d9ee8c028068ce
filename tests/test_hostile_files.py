"""Files that are not what they should be (a FIFO, a device, a symlink, a huge file, a read-only
disk) where credhelper keeps its configuration, cache, locks and state: never a hang, never
unbounded memory, never a traceback; one line and the documented exit code, or the file ignored
and replaced."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import UserHome
from tests.daemonproc import DaemonProcess, wait_for
from tests.helpers import assert_no_secret, assert_one_line_failure, cached_record, refreshed

HANG = 20  # seconds: a command still running by then is hanging on a file


def run(home: UserHome, *args: str) -> subprocess.CompletedProcess[str]:
    return home.run(*args, timeout=HANG)


def make_fifo(path: Path) -> None:
    path.unlink(missing_ok=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(path)


def make_symlink(path: Path, to: str) -> None:
    path.unlink(missing_ok=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.symlink_to(to)


# -- the configuration file ---------------------------------------------------------------------


@pytest.mark.parametrize("command", [("status",), ("refresh",), ("credential-process", "bedrock"), ("run",)])
def test_a_fifo_as_the_configuration_is_a_config_error(home: UserHome, command: tuple[str, ...]) -> None:
    make_fifo(home.config_file)

    result = run(home, *command)

    assert_one_line_failure(result, 78, str(home.config_file), "FIFO")


def test_a_device_as_the_configuration_is_a_config_error(home: UserHome) -> None:
    make_symlink(home.config_file, "/dev/zero")

    result = run(home, "status")

    assert_one_line_failure(result, 78, str(home.config_file), "device")


def test_a_configuration_over_one_mebibyte_is_a_config_error(home: UserHome) -> None:
    with home.config_file.open("a") as handle:
        handle.write("#" * (1 << 20) + "\n")

    result = run(home, "status")

    assert_one_line_failure(result, 78, str(home.config_file), "larger than")


def test_a_daemon_whose_configuration_becomes_a_fifo_keeps_the_old_one_and_keeps_working(
    home: UserHome,
) -> None:
    daemon = DaemonProcess(home)
    try:
        key_id = daemon.wait_written()
        make_fifo(home.config_file)
        daemon.signal(signal.SIGHUP)
        wait_for(lambda: "configuration not reloaded" in daemon.log, HANG)

        home.app_env.write_text("COOKIE_SECRET=x\n")  # overwritten by someone: restored
        wait_for(lambda: daemon.env_key_id() == key_id, HANG)
        assert daemon.stop() == 0
    finally:
        daemon.stop()
    assert "FIFO" in daemon.log
    assert "Traceback" not in daemon.log


# -- the cache directory ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["fifo", "symlink to /dev/zero"])
def test_a_special_file_in_the_cache_is_replaced_by_credential_process(home: UserHome, kind: str) -> None:
    """Each of the profile's cache files in turn; each round's refresh leaves the warm cache the
    next one starts from."""
    refreshed(home)
    for name in ("bedrock.json", "bedrock.answer", "bedrock.lock", "bedrock.state.json"):
        path = home.cache_dir / name
        make_fifo(path) if kind == "fifo" else make_symlink(path, "/dev/zero")

        result = run(home, "credential-process", "bedrock")

        assert result.returncode == 0, (name, result.stderr)
        assert json.loads(result.stdout)["Version"] == 1, name
        assert "Traceback" not in result.stderr, name
        assert run(home, "status").returncode == 0, name
        assert run(home, "refresh").returncode == 0, name
        assert not path.is_symlink() and (not path.exists() or path.is_file()), name
        assert_no_secret(home, result.stderr)


def test_a_lock_file_symlink_never_creates_or_touches_its_target(home: UserHome, tmp_path: Path) -> None:
    elsewhere = tmp_path / "not-credhelpers"
    make_symlink(home.cache_dir / "bedrock.lock", str(elsewhere))

    result = run(home, "credential-process", "bedrock")

    assert result.returncode == 0, result.stderr
    assert not elsewhere.exists()
    assert not (home.cache_dir / "bedrock.lock").is_symlink()


def test_the_daemon_starts_over_a_fifo_lock_or_pid_file(home: UserHome) -> None:
    """Both at once, one daemon: it opens each of them on its way to running."""
    for name in ("daemon.lock", "daemon.pid"):
        make_fifo(home.cache_dir / name)
    daemon = DaemonProcess(home)
    try:
        assert daemon.wait_written().startswith("ASIA")
        assert run(home, "status").returncode == 0
    finally:
        assert daemon.stop() == 0
    assert "Traceback" not in daemon.log


def test_the_daemon_carries_on_when_the_shared_credentials_file_is_not_a_regular_file(
    home: UserHome,
) -> None:
    credentials = home.root / ".aws" / "credentials"
    credentials.unlink()
    credentials.mkdir()
    daemon = DaemonProcess(home)
    try:
        daemon.wait_running(HANG)
        wait_for(lambda: "attempt 1" in daemon.log, HANG)  # the refresh failed, and was scheduled again
    finally:
        assert daemon.stop() == 0
    assert str(credentials) in daemon.log
    assert "Traceback" not in daemon.log


@pytest.mark.parametrize("fifo", ["endpoint.json", "daemon.lock"])
def test_env_does_not_hang_on_a_fifo_where_it_looks_for_the_daemon(home: UserHome, fifo: str) -> None:
    runtime = home.root / "run" / "credhelper"
    home.env["XDG_RUNTIME_DIR"] = str(runtime.parent)
    runtime.mkdir(parents=True, mode=0o700)
    endpoint = {"url": "http://127.0.0.1:9/", "token_file": str(runtime / "token"), "pid": str(os.getpid())}
    (runtime / "endpoint.json").write_text(json.dumps(endpoint))
    (home.cache_dir / "daemon.lock").parent.mkdir(parents=True, exist_ok=True)
    (home.cache_dir / "daemon.lock").write_text("")
    make_fifo((runtime if fifo == "endpoint.json" else home.cache_dir) / fifo)

    result = run(home, "env", "bedrock")

    assert_one_line_failure(result, 1, "daemon")


# -- a file system that refuses writes ------------------------------------------------------------


def test_run_on_a_cache_path_that_cannot_be_created_says_so_in_one_line(home: UserHome) -> None:
    blocker = home.root / "not-a-directory"
    blocker.write_text("")
    home.env["CREDHELPER_CACHE_DIR"] = str(blocker / "credhelper")

    result = run(home, "run")

    line = assert_one_line_failure(result, 1, str(blocker), "fix the permissions")
    assert "internal error" not in line


@pytest.mark.skipif(not shutil.which("bwrap"), reason="needs bubblewrap")
def test_run_on_a_read_only_cache_says_so_in_one_line(home: UserHome) -> None:
    home.cache_dir.mkdir(parents=True, mode=0o700)
    argv = ["bwrap", "--die-with-parent", "--ro-bind", "/", "/", "--proc", "/proc", "--dev", "/dev"]
    result = subprocess.run(
        [*argv, sys.executable, "-m", "credhelper", "run"],
        env=home.env,
        capture_output=True,
        text=True,
        timeout=HANG,
        cwd=home.root,
    )

    line = assert_one_line_failure(result, 1, str(home.cache_dir), "Read-only file system")
    assert "internal error" not in line


# -- bad values --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("env_files", '["/tmp/x\\u0000y"]'),
        ("credentials_files", '[{path = "/tmp/x\\u0000y", profile = "bedrock"}]'),
        ("on_refresh", '["sh", "-c", "true\\u0000"]'),
        ("mfa_command", '["ykman\\u0000"]\nmfa_serial = "arn:aws:iam::123456789012:mfa/alice"'),
        ("env_files", f'["/tmp/{"n" * 256}"]'),
        ("env_files", f'["{"/abcdefgh" * 460}"]'),
    ],
    ids=["env-nul", "credentials-nul", "hook-nul", "mfa-nul", "name-too-long", "path-too-long"],
)
def test_a_value_the_os_cannot_take_is_a_config_error_at_load(home: UserHome, key: str, value: str) -> None:
    home.write_config(**{key: value})
    before = home.snapshot()

    result = run(home, "refresh")

    assert_one_line_failure(result, 78, str(home.config_file), "[profiles.bedrock]", key)
    assert home.snapshot() == before


def test_exec_of_an_empty_command_name_is_command_not_found(home: UserHome) -> None:
    result = run(home, "exec", "bedrock", "--", "")

    assert_one_line_failure(result, 127, "command not found")


def test_exec_of_an_empty_command_name_on_a_warm_cache_is_command_not_found(home: UserHome) -> None:
    refreshed(home)

    result = run(home, "exec", "bedrock", "--", "")

    assert_one_line_failure(result, 127, "command not found")


@pytest.mark.parametrize("grace", ["nan", "inf", "-1", "1e9"])
def test_exec_grace_must_be_a_finite_number_of_seconds(home: UserHome, grace: str) -> None:
    marker = home.root / "ran"
    result = run(
        home, "exec", "bedrock", "--restart-on-refresh", "--grace", grace, "--", "touch", str(marker)
    )

    assert result.returncode == 2, result.stderr
    assert "--grace" in result.stderr.strip().splitlines()[-1]
    assert "Traceback" not in result.stderr
    assert not marker.exists()


def test_a_refresh_after_the_cache_entry_was_a_fifo_holds_real_credentials(home: UserHome) -> None:
    make_fifo(home.cache_dir / "bedrock.json")

    assert run(home, "refresh").returncode == 0

    assert cached_record(home)["AccessKeyId"].startswith("ASIA")


def test_a_shared_credentials_file_that_is_a_fifo_is_named_as_one(home: UserHome) -> None:
    """botocore takes a FIFO at ~/.aws/credentials for no file: the source profile seems missing.
    The message names what is wrong instead, and nothing blocks on the FIFO."""
    credentials = home.root / ".aws" / "credentials"
    credentials.unlink()
    os.mkfifo(credentials)
    result = home.run("refresh", timeout=30)
    assert_one_line_failure(result, 78, str(credentials), "FIFO, not a regular file")
