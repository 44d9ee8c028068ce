"""Targets as users break them: files that are not regular files, too large, shared between
profiles, unreadable to the guard, unwritable, owned by someone else."""

from __future__ import annotations

import json
import os
import shutil
import socket
import stat
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import AGENT0_ENV_DEFAULT, UserHome
from tests.daemonproc import DaemonProcess, wait_for
from tests.helpers import assert_no_secret, assert_one_line_failure, read_env, refreshed, roots_own_directory

CREDENTIALS_WITH_A_LONG_TERM_KEY = """\
[work]
aws_access_key_id = AKIAI44QH8DHBEXAMPLE
aws_secret_access_key = je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY
"""


def temp_files_beside(path: Path) -> list[Path]:
    return [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]


# -- targets that are not regular files ---------------------------------------------------------


@pytest.fixture
def sockets() -> Iterator[list[socket.socket]]:
    held: list[socket.socket] = []
    yield held
    for sock in held:
        sock.close()


def make_fifo(path: Path, sockets: list[socket.socket]) -> str:
    os.mkfifo(path)
    return "FIFO"


def make_socket(path: Path, sockets: list[socket.socket]) -> str:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(path))
    sock.listen(1)
    sockets.append(sock)
    return "socket"


def make_device_link(path: Path, sockets: list[socket.socket]) -> str:
    path.symlink_to("/dev/zero")
    return "device"


def make_directory(path: Path, sockets: list[socket.socket]) -> str:
    path.mkdir()
    return "directory"


NOT_REGULAR = [make_fifo, make_socket, make_device_link, make_directory]
MakeTarget = Callable[[Path, list[socket.socket]], str]


def replace_env(home: UserHome, make: MakeTarget, sockets: list[socket.socket]) -> str:
    home.app_env.unlink()
    return make(home.app_env, sockets)


@pytest.mark.parametrize("make", NOT_REGULAR, ids=lambda m: m.__name__[5:])
def test_refresh_refuses_a_target_that_is_not_a_regular_file_without_blocking(
    home: UserHome, make: MakeTarget, sockets: list[socket.socket]
) -> None:
    kind = replace_env(home, make, sockets)
    result = home.run("refresh", timeout=20)
    assert_one_line_failure(result, 78, str(home.app_env), kind, "not a regular file")
    assert home.proxy.count("AssumeRole") == 0, "a bad target must cost no STS call"


@pytest.mark.parametrize("make", NOT_REGULAR, ids=lambda m: m.__name__[5:])
def test_status_reports_a_target_that_is_not_a_regular_file_without_blocking(
    home: UserHome, make: MakeTarget, sockets: list[socket.socket]
) -> None:
    refreshed(home)
    replace_env(home, make, sockets)
    result = home.run("status", "--json", timeout=20)
    assert result.returncode == 0, result.stderr
    (target,) = json.loads(result.stdout)[0]["targets"]
    assert target["state"].startswith("refused") and "not a regular file" in target["state"], target


def test_a_target_that_is_not_a_regular_file_does_not_stall_another_profile_in_the_daemon(
    home: UserHome, sockets: list[socket.socket]
) -> None:
    """One daemon for every kind: profile bedrock's target a FIFO, and one more profile for each
    other kind; each is refused in the log while the healthy profile's .env is written."""
    (home.root / "other").mkdir()
    other_env = home.root / "other" / ".env"
    other_env.write_text(AGENT0_ENV_DEFAULT)
    broken = {home.app_env: replace_env(home, make_fifo, sockets)}
    tables = ""
    for make in NOT_REGULAR[1:]:
        name = make.__name__[5:]
        (home.root / name).mkdir()
        broken[home.root / name / ".env"] = make(home.root / name / ".env", sockets)
        tables += (
            f'[profiles.{name}]\nrole_arn = "{home.sts.role_arn}"\nsource_profile = "bedrock-developer"\n'
            f'sts_endpoint_url = "{home.proxy.url}"\nenv_files = ["~/{name}/.env"]\n\n'
        )
    assert sorted(broken.values()) == ["FIFO", "device", "directory", "socket"]
    home.write_config(
        extra=f"""
[profiles.other]
role_arn = "{home.sts.role_arn}"
source_profile = "bedrock-developer"
sts_endpoint_url = "{home.proxy.url}"
env_files = ["~/other/.env"]

{tables}"""
    )
    daemon = DaemonProcess(home)
    try:
        daemon.wait_running()
        key_id = wait_for(lambda: read_env(other_env).get("AWS_ACCESS_KEY_ID"), timeout=20)
        assert key_id.startswith("ASIA"), "the healthy profile's .env was never written"
        for path, kind in broken.items():
            wait_for(
                lambda p=path, k=kind: any(
                    str(p) in line and f"is a {k}, not a regular file" in line
                    for line in daemon.log.splitlines()
                ),
                timeout=10,
            )
    finally:
        assert daemon.stop() == 0
    assert_no_secret(home, daemon.log)


# -- size --------------------------------------------------------------------------------------


def test_an_env_over_1_mib_is_refused_before_sts(home: UserHome) -> None:
    home.app_env.write_text(AGENT0_ENV_DEFAULT + "# padding\n" * 120_000)
    before = home.snapshot()
    result = home.run("refresh", timeout=30)
    assert_one_line_failure(result, 78, str(home.app_env), "1 MiB")
    assert home.snapshot() == before
    assert home.proxy.count("AssumeRole") == 0


# -- the configuration -------------------------------------------------------------------------


def second_profile(home: UserHome, targets: str) -> str:
    return f"""
[profiles.second]
role_arn = "{home.sts.role_arn}"
source_profile = "bedrock-developer"
sts_endpoint_url = "{home.proxy.url}"
{targets}
"""


def test_two_profiles_naming_one_env_through_a_symlink_are_refused(home: UserHome) -> None:
    (home.root / "link").symlink_to(home.root / "app")
    home.write_config(extra=second_profile(home, 'env_files = ["$HOME/link/.env"]'))
    before = home.snapshot()
    result = home.run("refresh")
    assert_one_line_failure(
        result, 78, str(home.config_file), "bedrock", "second", "env_files", "$HOME/link/.env"
    )
    assert home.snapshot() == before
    assert home.proxy.count("AssumeRole") == 0


def test_two_profiles_naming_one_credentials_section_are_refused(home: UserHome) -> None:
    both = 'credentials_files = [{path = "~/.aws/apps", profile = "shared"}]'
    home.write_config(credentials_files='[{path = "~/.aws/apps", profile = "shared"}]')
    home.write_config(
        credentials_files='[{path = "~/.aws/apps", profile = "shared"}]', extra=second_profile(home, both)
    )
    result = home.run("refresh")
    assert_one_line_failure(result, 78, "~/.aws/apps [shared]", "bedrock", "second", "credentials_files")


def test_two_profiles_may_share_a_credentials_file_with_different_sections(home: UserHome) -> None:
    home.write_config(
        credentials_files='[{path = "~/.aws/apps", profile = "one"}]',
        extra=second_profile(home, 'credentials_files = [{path = "~/.aws/apps", profile = "two"}]'),
    )
    result = home.run("refresh")
    assert result.returncode == 0, result.stderr
    text = (home.root / ".aws" / "apps").read_text()
    assert "[one]" in text and "[two]" in text


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("env_files", '["app/.env"]'),
        ("env_files", '["$CREDHELPER_UNSET_VARIABLE/.env"]'),
        ("credentials_files", '[{path = "aws/credentials", profile = "x"}]'),
    ],
)
def test_a_relative_target_path_is_refused(home: UserHome, setting: str, value: str) -> None:
    home.write_config(**{setting: value})
    result = home.run("refresh")
    assert_one_line_failure(result, 78, str(home.config_file), "[profiles.bedrock]", setting, "absolute")
    assert home.proxy.count("AssumeRole") == 0


@pytest.mark.parametrize("seconds", ["0", "59"])
def test_refresh_before_seconds_under_a_minute_is_refused(home: UserHome, seconds: str) -> None:
    home.write_config(refresh_before_seconds=seconds)
    assert_one_line_failure(home.run("refresh"), 78, "refresh_before_seconds", "60")


# -- missing directory, OS-level write failures ------------------------------------------------


def test_a_target_in_a_missing_directory_costs_no_sts_call(home: UserHome) -> None:
    home.write_config(env_files='["~/nowhere/.env"]')
    assert_one_line_failure(home.run("refresh"), 78, "does not exist", "env_files")
    assert home.proxy.count("AssumeRole") == 0


def run_in_private_mount(home: UserHome, setup: str, *args: str) -> subprocess.CompletedProcess[str]:
    """credhelper in its own mount namespace, after `setup` (shell) has changed the app's filesystem."""
    command = f'{setup} && exec "$@"'
    return subprocess.run(
        ["unshare", "-m", "sh", "-c", command, "sh", sys.executable, "-m", "credhelper", *args],
        env=home.env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=home.root,
    )


needs_mounts = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("unshare") is None, reason="needs root and unshare -m"
)


@needs_mounts
def test_a_read_only_file_system_is_exit_1_in_one_line(home: UserHome) -> None:
    app = home.root / "app"
    result = run_in_private_mount(
        home, f"mount --bind {app} {app} && mount -o remount,bind,ro {app}", "refresh"
    )
    assert_one_line_failure(result, 1, str(home.app_env), "read-only")
    assert home.app_env.read_text() == AGENT0_ENV_DEFAULT
    assert home.proxy.count("AssumeRole") == 0


@needs_mounts
def test_a_full_disk_is_exit_1_and_leaves_no_temp_file(home: UserHome) -> None:
    app = home.root / "app"
    setup = (
        f"mount -t tmpfs -o size=8k tmpfs {app} && printf '%s' \"$ENV_TEXT\" > {app}/.env"
        f" && chmod 600 {app}/.env"
        f" && (dd if=/dev/zero of={app}/filler bs=1k count=64 2>/dev/null; true)"
        f' && "$@"; code=$?; ls -a {app} >&2; exit $code'
    )
    result = subprocess.run(
        ["unshare", "-m", "sh", "-c", setup, "sh", sys.executable, "-m", "credhelper", "refresh"],
        env=dict(home.env, ENV_TEXT=AGENT0_ENV_DEFAULT),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=home.root,
    )
    assert result.returncode == 1, result.stderr
    lines = result.stderr.splitlines()
    assert lines[0].startswith("credhelper: error: ") and "No space left" in lines[0], lines[0]
    assert "Traceback" not in result.stderr
    assert not [name for name in lines[1:] if name.endswith(".tmp")], (
        "a temp file holding the secret survived"
    )


# -- ownership and mode ------------------------------------------------------------------------


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can write another user's file")
def test_run_as_root_another_users_env_keeps_its_owner_and_group(home: UserHome) -> None:
    base = roots_own_directory("credhelper-app-")  # not under /tmp, which any user may write to
    try:
        app_env = base / ".env"
        shutil.copy(home.app_env, app_env)
        os.chown(app_env, 4321, 4322)
        home.write_config(env_files=f'["{app_env}"]')
        result = home.run("refresh")
        assert result.returncode == 0, result.stderr
        info = app_env.stat()
        assert (info.st_uid, info.st_gid) == (4321, 4322), "the app's user can no longer read its .env"
        assert read_env(app_env)["AWS_ACCESS_KEY_ID"].startswith("ASIA")
    finally:
        shutil.rmtree(base)


def test_every_restore_of_a_world_readable_env_warns(home: UserHome) -> None:
    daemon = DaemonProcess(home)
    try:
        key_id = daemon.wait_written()
        for round_number in (1, 2):
            fresh = home.app_env.with_name(".env.default")  # `cp .env.default .env` under umask 022,
            fresh.write_text(AGENT0_ENV_DEFAULT)  # in one step: the daemon never sees it half made
            os.chmod(fresh, 0o644)
            os.replace(fresh, home.app_env)
            wait_for(lambda: daemon.env_key_id() == key_id, timeout=15)
            wait_for(lambda n=round_number: daemon.log.count("readable by other users") >= n, timeout=15)
        assert stat.S_IMODE(home.app_env.stat().st_mode) == 0o644  # the file's mode is kept
    finally:
        daemon.stop()


# -- the shared credentials file guard ---------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "where"),
    [
        ("\n[other]\nthis line has no equals sign\n", "line 6"),
        ("\n[work]\nregion = us-east-1\n", "line 5"),
        ("\n[other]\nx = 1\nX = 2\n", "line 7"),
        ("", None),
    ],
    ids=["stray-line", "duplicate-section", "duplicate-key", "clean"],
)
def test_a_long_term_key_in_a_credentials_section_survives_anything_the_file_holds(
    home: UserHome, extra: str, where: str | None
) -> None:
    target = home.root / ".aws" / "apps"
    target.write_text(CREDENTIALS_WITH_A_LONG_TERM_KEY + extra)
    before = target.read_text()
    home.write_config(credentials_files='[{path = "~/.aws/apps", profile = "work"}]')
    result = home.run("refresh")
    line = assert_one_line_failure(result, 78, str(target))
    if where is not None:
        assert where in line
        assert "this line" not in line  # a line's text may be a secret: only its number is shown
    assert target.read_text() == before, "the long-term key was overwritten"
    assert home.proxy.count("AssumeRole") == 0


def test_a_credentials_file_that_does_not_parse_is_never_rewritten(home: UserHome) -> None:
    target = home.root / ".aws" / "apps"
    original = "[bedrock]\naws_access_key_id = ASIAOLDOLDOLDEXAMPLE\nnot a setting\n"
    target.write_text(original)
    home.write_config(credentials_files='[{path = "~/.aws/apps", profile = "bedrock"}]')
    assert_one_line_failure(home.run("refresh"), 78, str(target), "line 3")
    assert target.read_text() == original


def test_a_symlinked_credentials_file_target_is_written_through(home: UserHome) -> None:
    dotfiles = home.root / "dotfiles"
    dotfiles.mkdir()
    (dotfiles / "apps").write_text("[keep]\nx = 1\n")
    (home.root / ".aws" / "apps").symlink_to(dotfiles / "apps")
    home.write_config(credentials_files='[{path = "~/.aws/apps", profile = "bedrock"}]')
    refreshed(home)
    assert (home.root / ".aws" / "apps").is_symlink()
    assert "[bedrock]" in (dotfiles / "apps").read_text()


def run_without_root_privileges(home: UserHome, *args: str) -> subprocess.CompletedProcess[str]:
    """credhelper as root without the capabilities that let root ignore file modes."""
    caps = "-dac_override,-dac_read_search"
    setpriv = ["setpriv", f"--inh-caps={caps}", f"--bounding-set={caps}", "--"]
    return subprocess.run(
        [*setpriv, sys.executable, "-m", "credhelper", *args],
        env=home.env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=home.root,
    )


needs_setpriv = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("setpriv") is None, reason="needs root and setpriv"
)


@needs_setpriv
def test_an_unreadable_env_is_exit_1_with_the_fix_and_no_sts_call(home: UserHome) -> None:
    os.chmod(home.app_env, 0)
    result = run_without_root_privileges(home, "refresh")
    assert_one_line_failure(result, 1, str(home.app_env), "Permission denied", "chmod u+rw")
    assert home.proxy.count("AssumeRole") == 0


@needs_setpriv
def test_an_unwritable_directory_is_exit_1_with_the_fix_and_no_sts_call(home: UserHome) -> None:
    os.chmod(home.app_env.parent, 0o555)
    try:
        result = run_without_root_privileges(home, "refresh")
    finally:
        os.chmod(home.app_env.parent, 0o755)
    assert_one_line_failure(result, 1, str(home.app_env), "Permission denied")
    assert home.proxy.count("AssumeRole") == 0
    assert home.app_env.read_text() == AGENT0_ENV_DEFAULT
