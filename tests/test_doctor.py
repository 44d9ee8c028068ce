"""`credhelper doctor`: each way a setup still fails, produced for real, gives its line and status;
doctor itself changes no file and shows no secret."""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterable, Iterator

import pytest

from credhelper.doctor.findings import FAIL, OK, WARN, skew_status
from tests.conftest import UserHome
from tests.daemonproc import DaemonProcess
from tests.helpers import assert_no_secret, in_process
from tests.stsproxy import Fault
from tests.test_init import INIT_FLAGS, fake_systemctl, guide_end_state


@pytest.fixture
def set_up(home: UserHome) -> UserHome:
    """The guide's end state after `credhelper init` (run in this process: init's own tests run it
    as users do): a working setup, daemon not yet started."""
    guide_end_state(home)
    result = in_process(home, *INIT_FLAGS, "--no-systemd")
    assert result.returncode == 0, result.stderr
    return home


@pytest.fixture
def running(set_up: UserHome) -> Iterator[UserHome]:
    daemon = DaemonProcess(set_up)
    daemon.wait_running()
    yield set_up
    daemon.stop()
    assert_no_secret(set_up, daemon.log)


def doctor(
    home: UserHome, *args: str, both_forms: bool = False
) -> tuple[subprocess.CompletedProcess[str], dict[str, str]]:
    """Runs doctor: no file changed, no secret shown. Returns the run and each check's worst status.
    With `both_forms`, doctor --json runs too and must give the same verdicts (checked on a few
    setups, healthy and failing: each doctor run costs a second of CPU)."""
    before = home.snapshot()
    result = home.run("doctor", *args)
    lines = [LINE.fullmatch(line) for line in result.stdout.splitlines()]
    assert all(lines), result.stdout
    statuses = worst_statuses((m["label"].rpartition(": ")[2], m["status"]) for m in lines if m)
    outputs = [result.stdout, result.stderr]
    if both_forms:
        as_json = home.run("doctor", "--json", *args)
        outputs += [as_json.stdout, as_json.stderr]
        assert result.returncode == as_json.returncode, (result.stdout, as_json.stdout)
        records = json.loads(as_json.stdout)
        assert set(records[0]) == {"profile", "check", "status", "detail"}
        assert worst_statuses((r["check"], r["status"]) for r in records) == statuses, as_json.stdout
    assert home.snapshot() == before, "doctor changed a file"
    assert_no_secret(home, *outputs)
    return result, statuses


LINE = re.compile(rf"(?P<status>{OK}|{WARN}|{FAIL}) +(?P<label>.+?)(  .*)?")


def worst_statuses(verdicts: Iterable[tuple[str, str]]) -> dict[str, str]:
    order = [OK, WARN, FAIL]
    statuses: dict[str, str] = {}
    for check, status in verdicts:
        statuses[check] = max(statuses.get(check, OK), status, key=order.index)
    return statuses


def line_of(result: subprocess.CompletedProcess[str], status: str, check: str) -> str:
    for line in result.stdout.splitlines():
        if line.startswith(f"{status:<4}  ") and f" {check}  " in line:
            return line
    raise AssertionError(f"no `{status} ... {check}` line in:\n{result.stdout}")


def test_a_healthy_setup_is_all_ok(running: UserHome) -> None:
    result, statuses = doctor(running, both_forms=True)
    print(result.stdout)
    assert result.returncode == 0, result.stdout
    assert set(statuses.values()) == {OK}, result.stdout
    for check in (
        "configuration",
        "environment",
        "cache",
        "daemon",
        "source credentials",
        "role",
        "clock",
        "session",
        "credential_process",
        "target",
        "target mode",
        "long-term key",
        "credentials",
        "git",
    ):
        assert check in statuses, (check, result.stdout)


def test_no_daemon_fails(set_up: UserHome) -> None:
    result, statuses = doctor(set_up, both_forms=True)
    assert result.returncode == 1
    assert "no `credhelper run` holds the lock" in line_of(result, FAIL, "daemon")
    assert [c for c, s in statuses.items() if s != OK] == ["daemon"], result.stdout


@pytest.mark.slow(seconds=5)
def test_env_committed_to_git_fails_and_not_ignored_warns(running: UserHome) -> None:
    app = running.app_env.parent
    git = ["git", "-C", str(app), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q"], check=True)
    result, statuses = doctor(running)
    assert result.returncode == 0
    assert "add .env to .gitignore" in line_of(result, WARN, "git")
    subprocess.run([*git, "add", ".env"], check=True)
    subprocess.run([*git, "commit", "-qm", "oops"], check=True)
    result, statuses = doctor(running)
    assert result.returncode == 1
    assert "is tracked by git: `git rm --cached .env`" in line_of(result, FAIL, "git")
    assert [c for c, s in statuses.items() if s != OK] == ["git"], result.stdout


def test_exported_key_in_the_shell_warns(running: UserHome) -> None:
    running.env["AWS_ACCESS_KEY_ID"] = "AKIAIOSFODNN7EXAMPLE"
    running.env["AWS_SECRET_ACCESS_KEY"] = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    result, statuses = doctor(running)
    assert result.returncode == 0, result.stdout
    line = line_of(result, WARN, "environment")
    assert "AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY exported" in line and "dotenv does not override" in line
    assert "wJalrXUtnFEMI" not in result.stdout
    assert [c for c, s in statuses.items() if s != OK] == ["environment"], result.stdout


def test_skewed_clock_fails_with_the_offset(running: UserHome) -> None:
    running.proxy.add_fault(
        Fault("code", action="GetCallerIdentity", code="SignatureDoesNotMatch", date_offset=900)
    )
    result, _statuses = doctor(running)
    assert result.returncode == 1
    assert "s behind STS's" in line_of(result, FAIL, "clock")
    assert "sync the clock" in line_of(result, FAIL, "source credentials")


def test_the_clock_is_read_from_the_sts_that_aws_endpoint_url_names(home: UserHome) -> None:
    home.write_config(sts_endpoint_url="")
    home.env["AWS_ENDPOINT_URL"] = home.proxy.url
    skewed = Fault("code", action="GetCallerIdentity", code="SignatureDoesNotMatch", date_offset=900)
    home.proxy.add_fault(skewed)
    result, _statuses = doctor(home, "--timeout", "5")
    assert "s behind STS's" in line_of(result, FAIL, "clock")


def test_small_skew_warns() -> None:
    assert [skew_status(s) for s in (0, 59, -61, 299, 301, -400)] == [OK, OK, WARN, WARN, FAIL, FAIL]


def test_wrong_secret_fails_source_and_role(running: UserHome) -> None:
    credentials = running.root / ".aws" / "credentials"
    wrong = "A" * 40
    credentials.write_text(credentials.read_text().replace(running.sts.secret_access_key, wrong))
    result, statuses = doctor(running, both_forms=True)
    assert result.returncode == 1
    assert "does not match its access key id" in line_of(result, FAIL, "source credentials")
    assert statuses["role"] == FAIL
    assert wrong not in result.stdout


def test_access_denied_on_the_role_fails(running: UserHome) -> None:
    running.proxy.add_fault(Fault("code", action="AssumeRole", code="AccessDenied"))
    result, statuses = doctor(running)
    assert result.returncode == 1
    assert "AWS denied AssumeRole" in line_of(result, FAIL, "role")
    assert [c for c, s in statuses.items() if s != OK] == ["role"], result.stdout


def test_env_readable_by_others_warns(running: UserHome) -> None:
    os.chmod(running.app_env, 0o644)
    result, statuses = doctor(running)
    assert result.returncode == 0
    assert "chmod 600" in line_of(result, WARN, "target mode")
    assert [c for c, s in statuses.items() if s != OK] == ["target mode"], result.stdout


def test_an_aws_config_that_is_a_fifo_is_reported_as_one(home: UserHome) -> None:
    config = home.root / ".aws" / "config"
    config.unlink(missing_ok=True)
    os.mkfifo(config)
    result, _statuses = doctor(home, "--timeout", "5")
    assert result.returncode == 1
    for check in ("source credentials", "role", "credential_process"):
        assert f"{config} is a FIFO, not a regular file" in line_of(result, FAIL, check)
    assert "no answer within" not in result.stdout, result.stdout


def test_a_fifo_target_fails_without_blocking(set_up: UserHome) -> None:
    set_up.app_env.unlink()
    os.mkfifo(set_up.app_env)
    result, _ = doctor(set_up, both_forms=True)
    assert result.returncode == 1
    assert "not a regular file" in line_of(result, FAIL, "target")


def test_a_credentials_file_target_it_cannot_parse_fails_with_its_line(running: UserHome) -> None:
    shared = running.root / ".aws" / "shared-by-apps"
    shared.write_text("[bedrock]\nthis line is neither\n")
    running.config_file.write_text(
        running.config_file.read_text()
        + 'credentials_files = [{path = "~/.aws/shared-by-apps", profile = "bedrock"}]\n'
    )
    result, _ = doctor(running)
    assert result.returncode == 1
    line = line_of(result, FAIL, "target")
    assert "shared-by-apps: line 2: neither a [section], a comment nor key = value" in line, line


def test_long_term_key_in_the_env_fails(set_up: UserHome) -> None:
    text = set_up.app_env.read_text()
    key_id = next(line for line in text.splitlines() if line.startswith("AWS_ACCESS_KEY_ID="))
    set_up.app_env.write_text(text.replace(key_id, "AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE"))
    result, statuses = doctor(set_up)
    assert "credhelper adopt-keys --env-file" in line_of(result, FAIL, "long-term key")
    assert statuses["credentials"] == FAIL


@pytest.mark.slow(seconds=6)
def test_unreachable_sts_fails_its_checks_and_the_others_still_run(running: UserHome) -> None:
    running.proxy.add_fault(Fault("delay", seconds=30))
    result, statuses = doctor(running, "--timeout", "2", both_forms=True)
    assert result.returncode == 1
    for check in ("source credentials", "role", "clock"):
        assert statuses[check] == FAIL, result.stdout
    assert "no answer within 2 s" in line_of(result, FAIL, "role")
    assert statuses["daemon"] == OK and statuses["target mode"] == OK, result.stdout


def test_credential_process_pointing_at_a_missing_program_fails(running: UserHome) -> None:
    config = running.root / ".aws" / "config"
    config.write_text(config.read_text().replace("credential_process = ", "credential_process = /gone/"))
    result, _statuses = doctor(running)
    assert result.returncode == 1
    assert "is not an executable file" in line_of(result, FAIL, "credential_process")


def test_short_sessions_warn(set_up: UserHome) -> None:
    set_up.config_file.write_text(
        set_up.config_file.read_text() + "duration_seconds = 900\nrefresh_before_seconds = 600\n"
    )
    result, _statuses = doctor(set_up)
    assert "under 30 min" in line_of(result, WARN, "session")


@pytest.mark.slow(seconds=6)
def test_endpoint_is_checked_when_served(set_up: UserHome) -> None:
    set_up.config_file.write_text(set_up.config_file.read_text() + '\n[daemon]\nserve = "127.0.0.1:0"\n')
    result, _ = doctor(set_up)
    assert "is configured but no endpoint is running" in line_of(result, FAIL, "endpoint")
    daemon = DaemonProcess(set_up)
    try:
        daemon.wait_running()
        result, _statuses = doctor(set_up)
        assert "answers for profile bedrock" in line_of(result, OK, "endpoint")
        assert "mode 600" in line_of(result, OK, "endpoint token")
        assert result.returncode == 0, result.stdout
        token = next(p for p in set_up.root.rglob("token") if p.is_file())
        token.chmod(0o644)
        result, _statuses = doctor(set_up)
        assert "lets other users read the token" in line_of(result, FAIL, "endpoint token")
        token.chmod(0o600)
    finally:
        daemon.stop()


def test_unit_state_is_reported_when_a_user_manager_answers(running: UserHome) -> None:
    fake_systemctl(running, "running")
    result, _statuses = doctor(running)
    assert "systemctl --user enable --now credhelper.service" in line_of(result, WARN, "unit")
    assert result.returncode == 0


def test_a_binding_only_node_reads_fails_as_the_write_would(home: UserHome) -> None:
    text = home.app_env.read_text() + "AWS_ACCESS_KEY_ID: ASIAEXAMPLEEXAMPLE01\n"  # Node reads it last
    home.app_env.write_text(text)
    result = home.run("doctor")
    assert result.returncode == 1, result.stdout
    lines = result.stdout.splitlines()
    failing = [line for line in lines if line.startswith("fail") and "bedrock: target " in line]
    assert failing, result.stdout
    assert home.app_env.read_text() == text


def test_a_relative_cache_dir_is_reported_as_the_cache_setting_to_fix(set_up: UserHome) -> None:
    """Not "the runtime directory must be an absolute path" (the endpoint record lives in the cache
    directory without XDG_RUNTIME_DIR), nor one line instead of the findings: the cache check
    names CREDHELPER_CACHE_DIR and the fix, and every other check still runs."""
    set_up.env["CREDHELPER_CACHE_DIR"] = "rel/cache"

    result, statuses = doctor(set_up)

    assert result.returncode == 1, (result.stdout, result.stderr)
    cache = line_of(result, FAIL, "cache")
    assert "rel/cache" in cache and "CREDHELPER_CACHE_DIR" in cache and "absolute path" in cache
    assert "runtime directory" not in result.stdout + result.stderr
    assert "not checked" in line_of(result, FAIL, "daemon")
    assert statuses["source credentials"] == statuses["role"] == OK, result.stdout


def test_a_relative_xdg_cache_home_is_reported_as_ignored(set_up: UserHome) -> None:
    """credhelper ignores a relative XDG_CACHE_HOME, as the XDG specification says: doctor says
    so, and which directory it uses instead."""
    set_up.env["XDG_CACHE_HOME"] = "rel"

    result, statuses = doctor(set_up)

    warning = line_of(result, WARN, "cache")
    assert "XDG_CACHE_HOME=rel" in warning and "ignores it" in warning, result.stdout
    assert str(set_up.cache_dir) in warning
    assert statuses["daemon"] == FAIL and "no `credhelper run` holds the lock" in result.stdout


def test_a_pair_in_the_credentials_files_section_of_the_profile_fails_credential_process(
    set_up: UserHome,
) -> None:
    credentials = set_up.root / ".aws" / "credentials"
    credentials.write_text(
        credentials.read_text()
        + "\n[bedrock]\naws_access_key_id = AKIAIOSFODNN7EXAMPLE\naws_secret_access_key = not-a-secret\n"
    )
    result, _ = doctor(set_up)
    assert result.returncode == 1
    line = line_of(result, FAIL, "credential_process")
    assert "credentials: [bedrock] holds a key pair (AKIA…MPLE)" in line and "move the pair" in line, line
    assert "not-a-secret" not in result.stdout
