"""Whose files, and which names (DESIGN section 11): what credhelper reads to decide what to hand
out must be the user's own and private, for every command, the fast paths included; profile
names never share a file with another profile or with credhelper's own files; a configuration
every full command refuses is refused by the fast paths too."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from credhelper.paths import PROFILE_FILE_KINDS, profile_file
from tests.conftest import UserHome
from tests.daemonproc import DaemonProcess, wait_for
from tests.helpers import assert_one_line_failure, cached_record, ready_answer_recorded, refreshed

FAKE_KEY_ID = "ASIAIOSFODNN7EXAMPLE"
AS_ROOT = pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to another user needs root")

# Every command that hands out credentials, or says whether they are valid.
COMMANDS = {
    "credential-process": ("credential-process", "bedrock"),
    "exec": ("exec", "bedrock", "--", "sh", "-c", "echo $AWS_ACCESS_KEY_ID"),
    "env": ("env", "bedrock"),
    "env-static": ("env", "bedrock", "--static"),
    "status": ("status", "bedrock"),
    "refresh": ("refresh", "bedrock"),
    "run": ("run",),
}


def plant_foreign_entry(home: UserHome) -> None:
    """A cache entry valid in every way but whose keys are not the role's: what another user
    would plant in a cache directory she can write to."""
    refreshed(home)
    entry = home.cache_dir / "bedrock.json"
    data = json.loads(entry.read_text())
    data["credentials"]["AccessKeyId"] = FAKE_KEY_ID
    entry.write_text(json.dumps(data))


def hand_to_another_user(path: Path) -> None:
    os.chown(path, 4321, 4321)


def open_to_everyone(path: Path) -> None:
    path.chmod(0o777)


def open_to_a_shared_group(path: Path) -> None:
    os.chown(path, -1, 4321)  # a group credhelper cannot show to be this user's alone
    path.chmod(0o770)


LOOSENINGS: dict[str, Callable[[Path], None]] = {
    "owned-by-another-user": hand_to_another_user,
    "writable-by-everyone": open_to_everyone,
    "writable-by-a-shared-group": open_to_a_shared_group,
}


@AS_ROOT
@pytest.mark.parametrize("loosening", sorted(LOOSENINGS))
def test_a_cache_directory_someone_else_controls_is_refused_by_every_command(
    home: UserHome, loosening: str
) -> None:
    """One planted entry for every command: each is refused before it reads or changes it."""
    plant_foreign_entry(home)
    entry = (home.cache_dir / "bedrock.json").read_bytes()
    LOOSENINGS[loosening](home.cache_dir)
    mode_before = stat.S_IMODE(home.cache_dir.stat().st_mode)

    for command in sorted(COMMANDS):
        result = home.run(*COMMANDS[command], timeout=60)

        assert_one_line_failure(result, 78, str(home.cache_dir), "CREDHELPER_CACHE_DIR")
        assert FAKE_KEY_ID not in result.stdout, (
            f"{command}: credentials from a directory someone else controls were handed out"
        )
        assert stat.S_IMODE(home.cache_dir.stat().st_mode) == mode_before, (
            f"{command}: a directory credhelper did not make was chmod-ed"
        )
        assert (home.cache_dir / "bedrock.json").read_bytes() == entry, command


@AS_ROOT
def test_a_cache_directory_under_a_shared_xdg_cache_home_is_refused(home: UserHome, tmp_path: Path) -> None:
    shared = tmp_path / "shared-cache"
    (shared / "credhelper").mkdir(parents=True)
    hand_to_another_user(shared / "credhelper")
    home.env["XDG_CACHE_HOME"] = str(shared)

    result = home.run("credential-process", "bedrock")

    assert_one_line_failure(result, 78, str(shared / "credhelper"))


def test_a_group_only_this_user_belongs_to_may_write_the_cache_directory(home: UserHome) -> None:
    """OpenSSH's rule: a user-private group is no one else."""
    import grp
    import pwd

    gid = os.getegid()
    me = pwd.getpwuid(os.geteuid()).pw_name
    alone = all(m == me for m in grp.getgrgid(gid).gr_mem) and all(
        p.pw_uid == os.geteuid() for p in pwd.getpwall() if p.pw_gid == gid
    )
    if not alone:
        pytest.skip("this user's primary group has other members here")
    refreshed(home)
    home.cache_dir.chmod(0o770)

    result = home.run("credential-process", "bedrock")

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["AccessKeyId"] == cached_record(home)["AccessKeyId"]


def test_an_existing_cache_directory_of_this_user_is_never_chmod_ed(home: UserHome) -> None:
    home.cache_dir.mkdir(parents=True, mode=0o755)
    home.cache_dir.chmod(0o755)

    assert home.run("refresh", "bedrock").returncode == 0

    assert stat.S_IMODE(home.cache_dir.stat().st_mode) == 0o755
    assert stat.S_IMODE((home.cache_dir / "bedrock.json").stat().st_mode) == 0o600


@pytest.mark.parametrize("loosening", ["writable-by-everyone", "owned-by-another-user"])
def test_a_configuration_someone_else_could_write_is_refused(home: UserHome, loosening: str) -> None:
    if loosening == "owned-by-another-user" and os.geteuid() != 0:
        pytest.skip("giving a file to another user needs root")
    refreshed(home)
    LOOSENINGS[loosening](home.config_file)

    for command in ("credential-process", "status", "exec"):  # one warm cache for each
        result = home.run(*COMMANDS[command])

        assert_one_line_failure(result, 78, str(home.config_file))
        assert "ASIA" not in result.stdout, command


@AS_ROOT
def test_env_refuses_an_endpoint_record_in_a_runtime_directory_another_user_owns(
    home: UserHome, tmp_path: Path
) -> None:
    runtime = tmp_path / "runtime"
    (runtime / "credhelper").mkdir(parents=True)
    record = {"url": "http://127.0.0.1:9/v1/credentials/bedrock", "token_file": "/dev/null", "pid": "1"}
    (runtime / "credhelper" / "endpoint.json").write_text(json.dumps(record))
    hand_to_another_user(runtime / "credhelper")
    home.env["XDG_RUNTIME_DIR"] = str(runtime)

    result = home.run("env", "bedrock")

    assert_one_line_failure(result, 78, str(runtime / "credhelper"))
    assert "127.0.0.1:9" not in result.stdout


@AS_ROOT
@pytest.mark.parametrize("command", ["credential-process", "status", "refresh"])
def test_a_cache_directory_reached_through_another_users_symlink_is_refused(
    home: UserHome, tmp_path: Path, command: str
) -> None:
    link = tmp_path / "alice-cache"
    link.symlink_to(home.app_env.parent)  # another user aims the victim's cache at her app
    os.lchown(link, 4321, 4321)
    home.env["CREDHELPER_CACHE_DIR"] = str(link)

    result = home.run(*COMMANDS[command])

    assert_one_line_failure(result, 78, str(link), "symlink owned by another user")
    assert not (home.app_env.parent / "bedrock.json").exists(), "credentials were cached in the app"


@AS_ROOT
def test_a_cache_directory_under_another_users_directory_is_refused(home: UserHome, tmp_path: Path) -> None:
    """Whoever owns a directory above the cache can rename the cache away and put another there."""
    theirs = tmp_path / "theirs"
    (theirs / "credhelper").mkdir(parents=True, mode=0o700)
    os.chown(theirs, 4321, 4321)
    home.env["CREDHELPER_CACHE_DIR"] = str(theirs / "credhelper")

    result = home.run("credential-process", "bedrock")

    assert_one_line_failure(result, 78, str(theirs))


def test_directories_credhelper_makes_for_its_cache_are_private_whatever_the_umask(home: UserHome) -> None:
    deep = home.root / "a" / "b" / "c"
    home.env["XDG_CACHE_HOME"] = str(deep)
    result = subprocess.run(
        ["sh", "-c", f'umask 000; exec "{sys.executable}" -m credhelper refresh bedrock'],
        env=home.env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=home.root,
    )
    assert result.returncode == 0, result.stderr
    for directory in (home.root / "a", home.root / "a" / "b", deep, deep / "credhelper"):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700, f"{directory} was made open to others"


@pytest.mark.skipif(shutil.which("setfacl") is None, reason="needs setfacl (Debian's acl)")
@pytest.mark.parametrize("what", ["configuration", "cache-directory"])
def test_an_acl_that_lets_another_user_write_is_not_trusted(home: UserHome, what: str) -> None:
    refreshed(home)
    path = home.config_file if what == "configuration" else home.cache_dir
    acl = subprocess.run(["setfacl", "-m", "u:4321:rwx", str(path)], capture_output=True, text=True)
    if acl.returncode != 0:
        pytest.skip(f"this file system takes no ACL: {acl.stderr.strip()}")

    result = home.run("credential-process", "bedrock")

    assert_one_line_failure(result, 78, str(path), "access control list")


@AS_ROOT
def test_a_configuration_reached_through_another_users_symlink_is_refused(home: UserHome) -> None:
    real = home.root / "real.toml"
    real.write_bytes(home.config_file.read_bytes())
    home.config_file.unlink()
    home.config_file.symlink_to(real)
    os.lchown(home.config_file, 4321, 4321)

    result = home.run("credential-process", "bedrock")

    assert_one_line_failure(result, 78, "symlink owned by another user")


@pytest.mark.parametrize("variable", ["XDG_CACHE_HOME", "CREDHELPER_CACHE_DIR"])
def test_a_relative_cache_location_never_puts_credentials_in_the_working_directory(
    home: UserHome, variable: str
) -> None:
    result = home.run("credential-process", "bedrock", **{variable: "relative"})

    if variable == "XDG_CACHE_HOME":  # ignored, as the XDG specification says: the default is used
        assert result.returncode == 0, result.stderr
        assert (home.root / ".cache" / "credhelper" / "bedrock.json").exists()
    else:
        assert_one_line_failure(result, 78, "CREDHELPER_CACHE_DIR", "absolute")
    assert not (home.root / "relative").exists()


@pytest.mark.parametrize(
    ("where", "code", "words"),
    [("the-file", 78, "is a regular file, not a directory"), ("below-the-file", 1, "Not a directory")],
)
@pytest.mark.parametrize("command", ["credential-process", "refresh", "status"])
def test_a_cache_path_a_file_stands_in_is_one_clear_line(
    home: UserHome, where: str, code: int, words: str, command: str
) -> None:
    path = home.app_env if where == "the-file" else home.app_env / "sub"

    result = home.run(*COMMANDS[command], CREDHELPER_CACHE_DIR=str(path))

    line = assert_one_line_failure(result, code, str(path), words)
    assert "internal error" not in line


# -- one loader for the fast paths and the full commands ------------------------------------------


# Each a configuration `status` refuses; the ids name them in a failure.
FLAWS = {
    "serve-not-loopback": '[daemon]\nserve = "0.0.0.0:9911"\n',
    "daemon-unknown-key": '[daemon]\nserve = "127.0.0.1:9911"\nport = 1\n',
    "unknown-top-level-table": "[extras]\nx = 1\n",
    "another-profile-invalid": '[profiles.other]\nrole_arn = "not an arn"\n',
    "target-of-two-profiles": '[profiles.other]\nrole_arn = "arn:aws:iam::123456789012:role/R"\n'
    'env_files = ["~/app/.env"]\n',
    "names-alike": '[profiles.BEDROCK]\nrole_arn = "arn:aws:iam::123456789012:role/R"\n',
}


@pytest.mark.parametrize("command", ["credential-process", "exec"])
def test_the_fast_paths_refuse_a_configuration_status_refuses(home: UserHome, command: str) -> None:
    """One warm cache for every flaw: a refusal leaves the cache as it was (no flaw reaches it)."""
    past = 1_000_000_000
    os.utime(home.config_file, (past, past))  # settled: the long way records a ready answer
    refreshed(home)
    assert home.run(*COMMANDS[command]).returncode == 0  # answered on the warm cache
    if command == "credential-process":
        assert (home.cache_dir / "bedrock.answer").exists()
    entry = (home.cache_dir / "bedrock.json").read_bytes()
    for name, flaw in FLAWS.items():
        home.write_config(extra=flaw)
        os.utime(home.config_file, (past, past))  # settled: nothing but validation stops an answer

        status = home.run("status", "bedrock")
        result = home.run(*COMMANDS[command])

        assert status.returncode == 78, (name, status.stderr)
        assert_one_line_failure(result, 78)
        assert "ASIA" not in result.stdout, (
            f"the fast path answered for a configuration status refuses: {name}"
        )
        assert (home.cache_dir / "bedrock.json").read_bytes() == entry, name  # still warm for the next


def test_a_ready_answer_is_not_served_once_a_variable_the_configuration_names_changes(home: UserHome) -> None:
    home.write_config(env_files='["$APPDIR/.env"]')
    ready_answer_recorded(home, APPDIR=str(home.app_env.parent))

    status = home.run("status", "bedrock")  # APPDIR unset: the path is not absolute
    result = home.run("credential-process", "bedrock")

    assert status.returncode == 78, status.stderr
    assert_one_line_failure(result, 78, "$APPDIR")
    assert "ASIA" not in result.stdout


def test_a_ready_answer_is_not_served_once_a_symlink_makes_two_profiles_share_a_target(
    home: UserHome,
) -> None:
    other = f'[profiles.other]\nrole_arn = "{home.sts.role_arn}"\nenv_files = ["~/app2/.env"]\n'
    home.write_config(extra=other)
    ready_answer_recorded(home)
    (home.root / "app2").symlink_to(home.root / "app")

    status = home.run("status", "bedrock")
    result = home.run("credential-process", "bedrock")

    assert status.returncode == 78, status.stderr
    assert_one_line_failure(result, 78, "same target")
    assert "ASIA" not in result.stdout


# -- profile names and credhelper's own files ---------------------------------------------------------


def profiles_named(home: UserHome, *names: str) -> None:
    tables = "".join(
        f'[profiles."{name}"]\nrole_arn = "{home.sts.role_arn}"\nsource_profile = "bedrock-developer"\n'
        f'region = "us-east-1"\nsts_endpoint_url = "{home.proxy.url}"\n'
        f'role_session_name = "s-{len(name)}"\n\n'
        for name in names
    )
    home.config_file.write_text(tables)


def key_id(home: UserHome, profile: str) -> str:
    result = home.run("credential-process", profile, timeout=30)
    assert result.returncode == 0, result.stderr
    value: str = json.loads(result.stdout)["AccessKeyId"]
    return value


def test_profiles_named_like_credhelpers_own_files_work_beside_a_running_daemon(home: UserHome) -> None:
    profiles_named(home, "bedrock", "daemon", "endpoint", "token")
    home.env.pop("XDG_RUNTIME_DIR", None)  # the endpoint's record then lives in the cache directory
    daemon = DaemonProcess(home, "--serve", "127.0.0.1:0")
    try:
        daemon.wait_running(60)
        for name in ("daemon", "endpoint", "token"):
            first = key_id(home, name)  # the old daemon.lock made this wait 2 minutes and fail
            assert key_id(home, name) == first
        env = home.run("env", "bedrock")
        assert env.returncode == 0, env.stderr
        assert "AWS_CONTAINER_CREDENTIALS_FULL_URI=http://127.0.0.1:" in env.stdout
        assert daemon.process.poll() is None
    finally:
        daemon.stop()
    assert "Traceback" not in daemon.log


@pytest.mark.parametrize("pair", [("app", "app.state"), ("app", "app.mfa"), ("app", "app.answer")])
def test_a_profile_named_like_another_profiles_file_keeps_its_own_cache(
    home: UserHome, pair: tuple[str, str]
) -> None:
    profiles_named(home, *pair)
    past = 1_000_000_000
    os.utime(home.config_file, (past, past))  # settled: each cache hit leaves its ready answer
    first, second = pair
    refreshed(home, second)
    entry = json.loads(Path(profile_file(str(home.cache_dir), second, "json")).read_text())
    kept = entry["credentials"]["AccessKeyId"]
    assert key_id(home, second) == kept  # its state and answer written
    key_id(home, first)  # writes the first profile's state and answer
    assert key_id(home, second) == kept, f"profile {second} lost its cache to profile {first}'s files"
    assert key_id(home, first) != kept


def test_no_profile_file_meets_credhelpers_own_or_another_profiles_even_ignoring_case() -> None:
    names = ["daemon", "Daemon", "ENDPOINT", "token", "Token", "target-x", "Target-X", "app", "app.state"]
    names += ["app.mfa", "app.answer", "..", ".", "~x", "app%2Estate"]
    own = {"daemon.lock", "daemon.pid", "endpoint.json", "token"}
    seen: dict[str, tuple[str, str]] = {}
    for name in names:
        for kind in sorted(PROFILE_FILE_KINDS):
            file = os.path.basename(profile_file("/cache", name, kind)).casefold()
            assert file not in own and not file.startswith("target-"), (name, kind, file)
            other = seen.setdefault(file, (name.casefold(), kind))
            assert other == (name.casefold(), kind), f"{name} {kind} shares {file} with {other}"


def test_two_profile_names_that_differ_only_in_case_are_refused(home: UserHome) -> None:
    profiles_named(home, "app", "App")

    result = home.run("credential-process", "app")

    assert_one_line_failure(result, 78, "'app'", "'App'", "differ only in case")


# -- credentials are cached for where they came from ------------------------------------------------


def test_credentials_from_another_sts_endpoint_are_never_handed_out(home: UserHome) -> None:
    """A shell whose AWS_ENDPOINT_URL_STS points at another STS fills the cache; a consumer
    without it must not get those credentials, nor the reverse."""
    home.write_config(sts_endpoint_url="")
    real, other = home.proxy.url, home.sts.url

    def ask(endpoint: str) -> str:
        result = home.run("credential-process", "bedrock", AWS_ENDPOINT_URL_STS=endpoint)
        assert result.returncode == 0, result.stderr
        value: str = json.loads(result.stdout)["AccessKeyId"]
        return value

    from_real = ask(real)
    calls = home.proxy.calls["AssumeRole"]
    from_other = ask(other)
    assert from_other != from_real, "credentials of one STS endpoint were handed out for another"
    assert ask(other) == from_other
    again = ask(real)
    assert again != from_other
    assert home.proxy.calls["AssumeRole"] >= calls + 1


def test_status_does_not_call_credentials_of_another_endpoint_valid(home: UserHome) -> None:
    home.write_config(sts_endpoint_url="")
    refreshed(home, AWS_ENDPOINT_URL_STS=home.sts.url)

    status = home.run("status", "bedrock")  # no endpoint variable: the regional default

    assert status.returncode != 0, "status called credentials of another STS endpoint valid"


def test_the_daemon_rewrites_a_target_holding_credentials_of_another_endpoint(home: UserHome) -> None:
    home.write_config(sts_endpoint_url="")
    refreshed(home, AWS_ENDPOINT_URL_STS=home.sts.url)
    daemon = DaemonProcess(home, env=dict(home.env, AWS_ENDPOINT_URL_STS=home.proxy.url))
    try:
        from_other = daemon.env_key_id()
        daemon.wait_running(60)
        wait_for(lambda: daemon.env_key_id() != from_other, 30)
        assert daemon.env_key_id() == daemon.cached_key_id()
    finally:
        daemon.stop()


# -- the second review's edges ------------------------------------------------------------------


def test_a_ready_answer_is_not_served_once_a_variable_before_a_non_ascii_letter_is_unset(
    home: UserHome,
) -> None:
    """posixpath.expandvars reads `$XDIRé` as $XDIR followed by é: the answer must record XDIR."""
    (home.root / "xé").mkdir()
    home.write_config(env_files='["$XDIRé/.env"]')
    ready_answer_recorded(home, XDIR=str(home.root / "x"))

    result = home.run("credential-process", "bedrock")

    assert_one_line_failure(result, 78, "$XDIR")


def test_a_relative_cache_directory_is_refused_even_where_a_ready_answer_waits(home: UserHome) -> None:
    ready_answer_recorded(home)

    result = home.run("credential-process", "bedrock", CREDHELPER_CACHE_DIR=".cache/credhelper")

    assert_one_line_failure(result, 78, "absolute")


@pytest.mark.parametrize("key", ["name", "role_arn", "region", "role_session_name"])
def test_a_trailing_newline_never_passes_for_a_valid_value(key: str) -> None:
    from credhelper.errors import ConfigError
    from credhelper.profile import parse_profiles

    raw = {"role_arn": "arn:aws:iam::123456789012:role/R", "region": "us-east-1", "role_session_name": "s-1"}
    name = "daemon\n" if key == "name" else "daemon"
    if key != "name":
        raw[key] += "\n"
    with pytest.raises(ConfigError):
        parse_profiles({"profiles": {name: raw}}, "cfg.toml", "user@host")


def test_a_group_nobody_belongs_to_is_not_private() -> None:
    """OpenSSH's rule: a group with no member at all is typically a setgid program's."""
    import grp
    import pwd

    from credhelper.paths import _group_is_private

    primaries = {entry.pw_gid for entry in pwd.getpwall()}
    empty = [group.gr_gid for group in grp.getgrall() if not group.gr_mem and group.gr_gid not in primaries]
    assert empty, "this machine has no group without members to test with"
    assert not _group_is_private(empty[0], os.geteuid())


def test_a_malformed_sts_endpoint_variable_is_a_configuration_error(home: UserHome) -> None:
    home.write_config(sts_endpoint_url="")

    result = home.run("credential-process", "bedrock", AWS_ENDPOINT_URL_STS="not a url")

    assert_one_line_failure(result, 78, "AWS_ENDPOINT_URL_STS")


@AS_ROOT
def test_a_symlink_followed_by_dotdot_is_checked_as_the_kernel_walks_it(home: UserHome) -> None:
    (home.root / "sub" / "inner").mkdir(parents=True)
    (home.root / "sub" / "real.toml").write_bytes(home.config_file.read_bytes())
    link = home.root / "lnk"
    link.symlink_to(home.root / "sub" / "inner")
    os.lchown(link, 4321, 4321)

    result = home.run("--config", f"{link}/../real.toml", "status", "bedrock")

    assert_one_line_failure(result, 78, "symlink owned by another user")


@pytest.mark.skipif(shutil.which("setfacl") is None, reason="needs setfacl (Debian's acl)")
def test_an_acl_on_a_directory_above_the_configuration_is_checked_too(home: UserHome) -> None:
    refreshed(home)
    acl = subprocess.run(["setfacl", "-m", "u:4321:rwx", str(home.config_file.parent)], capture_output=True)
    assert acl.returncode == 0, acl.stderr

    result = home.run("credential-process", "bedrock")

    assert_one_line_failure(result, 78, str(home.config_file.parent), "access control list")


@pytest.mark.skipif(shutil.which("setfacl") is None, reason="needs setfacl (Debian's acl)")
def test_a_default_acl_above_the_cache_does_not_make_credhelpers_own_directory_untrusted(
    home: UserHome,
) -> None:
    """The directory credhelper makes is 0700: the ACL's mask leaves the inherited entry no right."""
    (home.root / ".cache").mkdir(mode=0o700)
    acl = subprocess.run(
        ["setfacl", "-d", "-m", "u:4321:rwx", str(home.root / ".cache")], capture_output=True
    )
    assert acl.returncode == 0, acl.stderr

    result = home.run("credential-process", "bedrock")

    assert result.returncode == 0, result.stderr


@AS_ROOT
def test_a_cache_file_another_user_owns_is_refused_not_replaced(home: UserHome) -> None:
    refreshed(home)
    entry = home.cache_dir / "bedrock.json"
    os.chown(entry, 4321, 4321)
    calls = home.proxy.count("AssumeRole")

    result = home.run("credential-process", "bedrock")

    assert_one_line_failure(result, 78, str(entry), "remove it")
    assert home.proxy.count("AssumeRole") == calls


@pytest.mark.parametrize(
    "argv", [("run",), ("exec", "bedrock", "--restart-on-refresh", "--", "sleep", "60")], ids=["run", "exec"]
)
def test_sigterm_ends_it_though_its_launcher_blocked_sigterm(home: UserHome, argv: tuple[str, ...]) -> None:
    import signal
    import time

    mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "credhelper", *argv],
            env=home.env,
            cwd=home.root,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
    try:
        time.sleep(3)  # started, its handlers in place
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            raise AssertionError("SIGTERM stayed blocked: the process never ended") from None
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
