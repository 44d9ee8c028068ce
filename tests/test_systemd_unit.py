"""The user unit: `systemd-analyze verify` passes on it, and the daemon works inside the filesystem
view the unit gives it (reproduced with bubblewrap: systemd itself cannot run here)."""

from __future__ import annotations

import configparser
import contextlib
import json
import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator, Sequence
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


def directive_values(unit_texts: Sequence[str], name: str) -> list[str]:
    """Every word of a list directive across the unit and its drop-ins, in order, as systemd adds
    them up (an empty assignment clears the list)."""
    words: list[str] = []
    for text in unit_texts:
        for line in text.splitlines():
            key, equals, value = line.partition("=")
            if equals and key.strip() == name:
                words = words + value.split() if value.strip() else []
    return words


def writable_paths(unit_texts: Sequence[str], home: Path, runtime: Path) -> list[Path]:
    """What ProtectSystem=strict leaves writable: ReadWritePaths=, and each RuntimeDirectory=
    (created under %t by systemd before the service starts)."""
    granted = [
        Path(expand_specifiers(word.lstrip("-+"), home, runtime))
        for word in directive_values(unit_texts, "ReadWritePaths")
    ]
    mode = int(unit()["Service"].get("RuntimeDirectoryMode", "0755"), 8)
    for name in directive_values(unit_texts, "RuntimeDirectory"):
        directory = runtime / expand_specifiers(name, home, runtime)
        directory.mkdir(parents=True, exist_ok=True)
        directory.chmod(mode)
        granted.append(directory)
    return granted


def installation() -> list[Path]:
    """Where this credhelper and its interpreter live: under ~/.local on a real system, but a
    checkout (CI clones into a temporary directory) may sit under /tmp, which PrivateTmp hides."""
    places = {Path(sys.prefix).resolve(), Path(__file__).resolve().parent.parent}
    return sorted(p for p in places if p.is_relative_to("/tmp") or p.is_relative_to("/var/tmp"))


def sandbox_argv(
    unit_texts: Sequence[str], home: Path, runtime: Path, elsewhere: Sequence[Path]
) -> list[str]:
    """bubblewrap arguments giving a process the unit's view of the file system. `elsewhere`: host
    directories that stand for places outside /tmp on a real system (home, /run/user/UID, /srv)."""
    service = unit()["Service"]
    assert service["ProtectSystem"] == "strict", "this reproduction models ProtectSystem=strict"
    argv = ["bwrap", "--die-with-parent", "--ro-bind", "/", "/", "--proc", "/proc"]
    if service.getboolean("PrivateDevices", fallback=False):
        argv += ["--dev", "/dev"]
    if service.getboolean("PrivateTmp", fallback=False):
        argv += ["--tmpfs", "/tmp", "--tmpfs", "/var/tmp"]
    # The test's directories live under /tmp, real ones do not: put them back, read-only as
    # ProtectSystem=strict shows them, before granting what the unit makes writable.
    for path in (home, runtime, *elsewhere, *installation()):
        argv += ["--ro-bind", str(path), str(path)]
    for path in writable_paths(unit_texts, home, runtime):
        argv += ["--bind", str(path), str(path)]
    return argv


@contextlib.contextmanager
def daemon_in_unit_sandbox(
    home: UserHome, tmp_path: Path, drop_in: str = "", elsewhere: Sequence[Path] = ()
) -> Iterator[tuple[subprocess.Popen[str], Path]]:
    """`credhelper run --serve` started as the unit's ExecStart (plus an optional drop-in), inside
    the unit's file-system view, with the environment a user manager gives a service (HOME,
    XDG_RUNTIME_DIR) and its UMask."""
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
                *sandbox_argv([UNIT.read_text(), drop_in], home.root, runtime, elsewhere),
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


@pytest.fixture
def unit_sandbox(home: UserHome, tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], Path]]:
    with daemon_in_unit_sandbox(home, tmp_path) as running:
        yield running


def wait_started(process: subprocess.Popen[str], log_path: Path) -> None:
    def started() -> bool:
        assert process.poll() is None, f"the daemon exited in the unit's sandbox:\n{log_path.read_text()}"
        return "running:" in log_path.read_text()

    try:
        wait_for(started, 30)
    except AssertionError as error:
        raise AssertionError(f"{error}; the daemon's log:\n{log_path.read_text()}") from None


def test_daemon_writes_env_serves_endpoint_and_keeps_cache_inside_the_units_sandbox(
    home: UserHome, unit_sandbox: tuple[subprocess.Popen[str], Path]
) -> None:
    process, log_path = unit_sandbox
    wait_started(process, log_path)
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


@pytest.mark.parametrize("granted", [False, True], ids=["unit-as-shipped", "with-drop-in"])
def test_a_target_outside_home_needs_a_read_write_paths_drop_in(
    home: UserHome, tmp_path: Path, granted: bool
) -> None:
    srv = tmp_path / "srv" / "agent0"
    srv.mkdir(parents=True)
    outside = srv / ".env"
    outside.write_text("APP=1\n")
    home.write_config(env_files=f'["~/app/.env", "{outside}"]')
    drop_in = f"[Service]\nReadWritePaths={srv}\n" if granted else ""
    with daemon_in_unit_sandbox(home, tmp_path, drop_in, elsewhere=[srv]) as (process, log_path):
        wait_started(process, log_path)
        wait_for(lambda: str(read_env(home.app_env).get("AWS_ACCESS_KEY_ID")).startswith("ASIA"), 30)
        if granted:
            wait_for(lambda: "AWS_ACCESS_KEY_ID=ASIA" in outside.read_text(), 30)
        else:
            wait_for(lambda: "Read-only file system" in log_path.read_text(), 30)
            assert outside.read_text() == "APP=1\n"
