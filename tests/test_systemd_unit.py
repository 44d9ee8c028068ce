"""The user unit: `systemd-analyze verify` passes on it, and the daemon works inside the filesystem
view the unit gives it (reproduced with bubblewrap: systemd itself cannot run here)."""

from __future__ import annotations

import configparser
import json
import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import UserHome
from tests.daemonproc import wait_for
from tests.helpers import assert_no_secret, read_env
from tests.test_endpoint import endpoint_of, get

UNIT = Path(__file__).resolve().parent.parent / "systemd" / "credhelper.service"


def unit() -> configparser.RawConfigParser:
    parser = configparser.RawConfigParser(strict=False)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(UNIT)
    return parser


def test_unit_declares_notify_reload_restart_watchdog_and_umask() -> None:
    service = unit()["Service"]
    assert service["Type"] == "notify"
    assert service["ExecStart"].endswith("credhelper run")
    assert "kill -HUP $MAINPID" in service["ExecReload"]
    assert service["Restart"] == "on-failure"
    assert int(service["WatchdogSec"]) > 0
    assert service["UMask"] == "0077"
    assert service["ProtectSystem"] == "strict"
    assert unit()["Install"]["WantedBy"] == "default.target"


def test_systemd_analyze_verify_passes(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze is required; `sh dev test` installs Debian's systemd package"
    home = tmp_path / "home"
    (home / ".local" / "bin").mkdir(parents=True)
    (home / ".local" / "bin" / "credhelper").symlink_to(Path(sys.executable).parent / "credhelper")
    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700)
    result = subprocess.run(
        [analyze, "--user", "verify", str(UNIT)],
        env=dict(os.environ, HOME=str(home), XDG_RUNTIME_DIR=str(runtime)),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "credhelper.service" not in result.stderr, result.stderr


def expand_specifiers(text: str, home: Path, runtime: Path) -> str:
    """The specifiers a user unit of ours uses: %h home, %t runtime directory, %% a percent sign."""
    out, chars = [], iter(text)
    for char in chars:
        if char != "%":
            out.append(char)
            continue
        spec = next(chars)
        known = {"h": str(home), "t": str(runtime), "%": "%"}
        assert spec in known, f"the unit uses %{spec}; teach expand_specifiers what systemd makes of it"
        out.append(known[spec])
    return "".join(out)


def writable_paths(service: configparser.SectionProxy, home: Path, runtime: Path) -> list[Path]:
    """What ProtectSystem=strict leaves writable: ReadWritePaths=, and each RuntimeDirectory=
    (created under %t by systemd before the service starts)."""
    granted = [
        Path(expand_specifiers(word.lstrip("-+"), home, runtime))
        for word in service.get("ReadWritePaths", "").split()
    ]
    mode = int(service.get("RuntimeDirectoryMode", "0755"), 8)
    for name in service.get("RuntimeDirectory", "").split():
        directory = runtime / expand_specifiers(name, home, runtime)
        directory.mkdir(parents=True, exist_ok=True)
        directory.chmod(mode)
        granted.append(directory)
    return granted


def sandbox_argv(service: configparser.SectionProxy, home: Path, runtime: Path) -> list[str]:
    """bubblewrap arguments giving a process the unit's view of the file system."""
    assert service["ProtectSystem"] == "strict", "this reproduction models ProtectSystem=strict"
    argv = ["bwrap", "--die-with-parent", "--ro-bind", "/", "/", "--proc", "/proc"]
    if service.getboolean("PrivateDevices", fallback=False):
        argv += ["--dev", "/dev"]
    if service.getboolean("PrivateTmp", fallback=False):
        argv += ["--tmpfs", "/tmp", "--tmpfs", "/var/tmp"]
    # On a real system home and /run/user/UID are not under /tmp: put them back, read-only as
    # ProtectSystem=strict shows them, before granting what the unit makes writable.
    argv += ["--ro-bind", str(home), str(home), "--ro-bind", str(runtime), str(runtime)]
    for path in writable_paths(service, home, runtime):
        argv += ["--bind", str(path), str(path)]
    return argv


@pytest.fixture
def unit_sandbox(home: UserHome, tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], Path]]:
    """`credhelper run --serve` started as the unit's ExecStart, inside the unit's file-system view,
    with the environment a user manager gives a service (HOME, XDG_RUNTIME_DIR) and its UMask."""
    assert shutil.which("bwrap"), "bubblewrap is required; `sh dev test` installs it"
    service = unit()["Service"]
    runtime = tmp_path / "run-user"
    runtime.mkdir(mode=0o700)
    bin_dir = home.root / ".local" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "credhelper").symlink_to(Path(sys.executable).parent / "credhelper")
    exec_start = shlex.split(expand_specifiers(service["ExecStart"], home.root, runtime))
    umask = int(service.get("UMask", "0022"), 8)
    home.env["XDG_RUNTIME_DIR"] = str(runtime)
    log_path = tmp_path / "journal.log"
    with log_path.open("w") as journal:
        process = subprocess.Popen(
            [
                *sandbox_argv(service, home.root, runtime),
                exec_start[0],
                "--log-level",
                "info",
                *exec_start[1:],
                "--serve",
                "127.0.0.1:0",
            ],
            env=home.env,
            stdout=journal,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=home.root,
            start_new_session=True,
            preexec_fn=lambda: os.umask(umask),
        )
    try:
        yield process, log_path
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_daemon_writes_env_serves_endpoint_and_keeps_cache_inside_the_units_sandbox(
    home: UserHome, unit_sandbox: tuple[subprocess.Popen[str], Path]
) -> None:
    process, log_path = unit_sandbox

    def started() -> bool:
        assert process.poll() is None, f"the daemon exited in the unit's sandbox:\n{log_path.read_text()}"
        return "running:" in log_path.read_text()

    try:
        wait_for(started, 30)
    except AssertionError as error:
        raise AssertionError(f"{error}; the daemon's log:\n{log_path.read_text()}") from None
    key_id = wait_for(lambda: read_env(home.app_env).get("AWS_ACCESS_KEY_ID"), 30)
    assert str(key_id).startswith("ASIA"), "the .env did not get temporary credentials"
    assert (home.cache_dir / "bedrock.json").is_file(), "the cache was not written"

    result = home.run("env", "bedrock", "--format", "json")
    assert result.returncode == 0, result.stderr
    variables = json.loads(result.stdout)
    token_file = Path(variables["AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"])
    assert token_file.parent == Path(home.env["XDG_RUNTIME_DIR"]) / "credhelper"
    url, token = endpoint_of(variables)
    status, body = get(url, {"Authorization": token})
    assert status == 200, body
    assert body["AccessKeyId"] == key_id, "the endpoint and the .env disagree"
    assert_no_secret(home, log_path.read_text())
