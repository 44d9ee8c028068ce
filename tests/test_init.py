"""`credhelper init`: from the setup guide's end state (the IAM user's pair pasted into agent0's
`.env`) to a working setup, every file checked byte for byte."""

from __future__ import annotations

import configparser
import io
import itertools
import os
import pty
import re
import shutil
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from dotenv import dotenv_values
from hypothesis import given, settings
from hypothesis import strategies as st

from credhelper.credentials import format_utc
from credhelper.errors import ConfigError
from credhelper.formats.awsconfig import add_process_profile
from credhelper.init.plan import FileChange, add_profile_to_config, diff_text
from credhelper.unit import UNIT_TEMPLATE, render_unit, user_manager_answers
from tests.conftest import AGENT0_ENV_DEFAULT, UserHome
from tests.helpers import (
    as_the_user,
    assert_no_secret,
    assert_one_line_failure,
    cached_record,
    in_process,
    read_env,
    refreshed,
)
from tests.nodecheck import node_dotenv_parse
from tests.stsproxy import Fault

REPO = Path(__file__).resolve().parent.parent
AWS_CONFIG = textwrap.dedent("""\
    # my AWS CLI settings; keep this comment
    [default]
    region = eu-west-1
    output = json

    ; work account
    [profile work]
    region = eu-central-1
    """)
THIS_CREDHELPER = f"{sys.executable} -P -m credhelper"


def guide_end_state(home: UserHome) -> str:
    """What the guide leaves: the pair in the .env, no credhelper configuration, no source profile."""
    text = AGENT0_ENV_DEFAULT.replace(
        "AWS_ACCESS_KEY_ID=\n", f"AWS_ACCESS_KEY_ID={home.sts.access_key_id}\n"
    ).replace("AWS_SECRET_ACCESS_KEY=\n", f"AWS_SECRET_ACCESS_KEY={home.sts.secret_access_key}\n")
    home.app_env.write_text(text)
    home.config_file.unlink()
    (home.root / ".aws" / "credentials").unlink()
    (home.root / ".aws" / "config").write_text(AWS_CONFIG)
    home.env["AWS_ENDPOINT_URL_STS"] = home.proxy.url
    return text


INIT_FLAGS = (
    "init",
    "--role-arn",
    "arn:aws:iam::123456789012:role/BedrockAccessRole",
    "--source-profile",
    "bedrock-developer",
    "--region",
    "us-east-1",
    "--env-file",
    "~/app/.env",
)


def init(home: UserHome, *extra: str) -> subprocess.CompletedProcess[str]:
    result = home.run(*INIT_FLAGS, *extra)
    assert_no_secret(home, result.stdout, result.stderr)
    return result


def expected_env(home: UserHome, original: str) -> str:
    record = cached_record(home)
    return (
        original.replace(home.sts.access_key_id, record["AccessKeyId"]).replace(
            home.sts.secret_access_key, record["SecretAccessKey"]
        )
        + f"AWS_SESSION_TOKEN={record['SessionToken']}\n"
        + f"AWS_CREDENTIAL_EXPIRATION={format_utc(record['Expiration'])}\n"
    )


def caller_through_aws_config(home: UserHome) -> str:
    """What botocore gets from the new [profile bedrock], as any AWS SDK would."""
    script = (
        "import botocore.session; s = botocore.session.Session(profile='bedrock'); "
        "print(s.create_client('sts').get_caller_identity()['Arn'])"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        env=dict(home.env, AWS_CONFIG_FILE=str(home.root / ".aws" / "config")),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=home.root,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def caller_through_aws_config_here(home: UserHome) -> str:
    """caller_through_aws_config with botocore in this process (imported once per test process: a
    botocore process costs half a second of CPU, most of it the import), in HOME's environment;
    credential_process is still run as the SDK runs it, a process. The byte-for-byte test below
    asks from a botocore process of its own."""
    import botocore.session

    with as_the_user(home, AWS_CONFIG_FILE=str(home.root / ".aws" / "config")):
        client = botocore.session.Session(profile="bedrock").create_client("sts")
        arn: str = client.get_caller_identity()["Arn"]
    return arn


def test_init_moves_the_pair_and_writes_every_file_byte_for_byte(home: UserHome) -> None:
    original = guide_end_state(home)
    result = init(home, "--no-systemd")
    assert result.returncode == 0, result.stderr
    print(result.stdout)

    assert home.config_file.read_text() == textwrap.dedent(f"""\
        [profiles.bedrock]
        role_arn = "{home.sts.role_arn}"
        source_profile = "bedrock-developer"
        region = "us-east-1"
        env_files = ["~/app/.env"]
        """)
    assert (home.root / ".aws" / "credentials").read_text() == (
        f"[bedrock-developer]\naws_access_key_id = {home.sts.access_key_id}\n"
        f"aws_secret_access_key = {home.sts.secret_access_key}\n"
    )
    assert (home.root / ".aws" / "config").read_text() == AWS_CONFIG + (
        f"\n[profile bedrock]\ncredential_process = {THIS_CREDHELPER} credential-process bedrock\n"
        "region = us-east-1\n"
    )
    assert home.app_env.read_text() == expected_env(home, original)
    assert read_env(home.app_env)["AWS_ACCESS_KEY_ID"].startswith("ASIA")  # type: ignore[union-attr]
    for path in (home.config_file, home.root / ".aws" / "credentials"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert stat.S_IMODE((home.root / ".aws" / "config").stat().st_mode) == 0o644  # its mode is kept
    assert not (home.root / ".config" / "systemd").exists()
    assert "moved to [bedrock-developer]" in result.stdout
    assert "bedrock: valid" in result.stdout and "(current)" in result.stdout

    # The SDK runs credential_process in the app's directory: modules there named like
    # credhelper's own or its dependencies are not what it imports.
    planted = home.root / "planted-ran"
    (home.root / "click.py").write_text(f"open({str(planted)!r}, 'w')\n")
    (home.root / "credhelper").mkdir()
    (home.root / "credhelper" / "__init__.py").write_text(f"open({str(planted)!r}, 'w')\n")
    assert caller_through_aws_config(home).startswith(
        "arn:aws:sts::123456789012:assumed-role/BedrockAccessRole/"
    )
    assert not planted.exists()


def test_a_line_without_p_from_an_earlier_init_is_warned_of_by_doctor_and_replaced_by_init(
    home: UserHome,
) -> None:
    guide_end_state(home)
    first = in_process(home, *INIT_FLAGS, "--no-systemd")  # the set-up
    assert first.returncode == 0, first.stderr
    config = home.root / ".aws" / "config"
    line = f"credential_process = {THIS_CREDHELPER} credential-process bedrock\n"
    earlier = f"credential_process = {sys.executable} -m credhelper credential-process bedrock\n"
    config.write_text(config.read_text().replace(line, earlier))
    doctor = home.run("doctor", "bedrock")
    assert "without -P" in doctor.stdout and "run `credhelper init` again" in doctor.stdout, doctor.stdout
    again = init(home, "--no-systemd")
    assert again.returncode == 0, again.stderr
    assert f"updated {config}" in again.stdout, again.stdout
    assert line in config.read_text() and earlier not in config.read_text()
    assert "without -P" not in home.run("doctor", "bedrock").stdout
    # a line of someone else's is still refused
    someones = "credential_process = /opt/other credential-process bedrock\n"
    config.write_text(config.read_text().replace(line, someones))
    refused = init(home, "--no-systemd")
    assert refused.returncode == 78 and "already holds other settings" in refused.stderr


def test_second_identical_run_changes_no_byte_and_says_already_set_up(home: UserHome) -> None:
    guide_end_state(home)
    # The set-up, in this process: init's first run is tested as users run it above.
    first = in_process(home, *INIT_FLAGS, "--no-systemd")
    assert first.returncode == 0, first.stderr
    before = home.snapshot()
    again = init(home, "--no-systemd")
    assert again.returncode == 0, again.stderr
    assert "already set up" in again.stdout
    assert home.snapshot() == before


def test_dry_run_prints_diffs_without_secrets_and_writes_nothing(home: UserHome) -> None:
    guide_end_state(home)
    before = home.snapshot()
    result = init(home, "--no-systemd", "--dry-run")
    assert result.returncode == 0, result.stderr
    assert home.snapshot() == before
    assert not home.cache_dir.exists()
    assert home.proxy.count("AssumeRole") == 0
    assert f"+++ {home.config_file}" in result.stdout
    assert f"+++ {home.root / '.aws' / 'config'}" in result.stdout
    assert "+credential_process = " in result.stdout
    assert "+aws_secret_access_key = <secret from the .env>" in result.stdout
    assert "nothing was written" in result.stdout


def test_existing_profile_with_other_values_is_refused_with_nothing_changed(home: UserHome) -> None:
    guide_end_state(home)
    home.config_file.write_text(
        '# mine\n[profiles.bedrock]\nrole_arn = "arn:aws:iam::123456789012:role/Other"\n'
    )
    before = home.snapshot()
    result = init(home, "--no-systemd")
    assert_one_line_failure(result, 78, "[profiles.bedrock] already sets role_arn", "--profile")
    assert home.snapshot() == before


def test_existing_aws_config_section_with_other_content_is_refused(home: UserHome) -> None:
    guide_end_state(home)
    (home.root / ".aws" / "config").write_text(AWS_CONFIG + "\n[profile bedrock]\nsso_session = corp\n")
    before = home.snapshot()
    result = init(home, "--no-systemd")
    assert_one_line_failure(result, 78, "[profile bedrock] already holds other settings", "--no-aws-config")
    assert home.snapshot() == before


def test_a_credentials_file_it_cannot_read_with_certainty_is_refused_with_nothing_changed(
    home: UserHome,
) -> None:
    guide_end_state(home)
    credentials = home.root / ".aws" / "credentials"
    credentials.write_text("[work]\naws_access_key_id = AKIAIOSFODNN7EXAMPLE\n[work]\nregion = x\n")
    before = home.snapshot()
    result = init(home, "--no-systemd")
    assert_one_line_failure(result, 78, "line 3: section [work] appears twice", "fix that line")
    assert home.snapshot() == before


def test_init_appends_to_an_existing_configuration_keeping_every_byte(home: UserHome) -> None:
    guide_end_state(home)
    existing = '# my profiles\n[profiles.other]\nrole_arn = "arn:aws:iam::123456789012:role/X" # note'
    home.config_file.write_text(existing)
    result = init(home, "--no-systemd", "--no-aws-config")
    assert result.returncode == 0, result.stderr
    text = home.config_file.read_text()
    assert text.startswith(existing + "\n\n[profiles.bedrock]\n"), text
    assert (home.root / ".aws" / "config").read_text() == AWS_CONFIG


def test_a_refusal_by_aws_puts_every_file_back(home: UserHome) -> None:
    guide_end_state(home)
    home.proxy.add_fault(Fault("code", action="AssumeRole", code="AccessDenied"))
    before = home.snapshot()
    result = init(home, "--no-systemd")
    assert_one_line_failure(result, 77, "AWS denied AssumeRole", "every file was put back as it was")
    assert home.snapshot() == before
    assert home.proxy.count("GetCallerIdentity") == 1  # the pair was verified before the role was tried


@pytest.mark.parametrize(
    "spelling", ["profile  bedrock", 'profile "bedrock"', "profile\tbedrock", "profile 'bedrock'"]
)
def test_the_same_profile_spelt_otherwise_in_the_aws_config_is_refused(home: UserHome, spelling: str) -> None:
    """botocore reads each spelling as profile bedrock: an added [profile bedrock] would shadow
    the user's own settings (an SSO profile, say) without a word."""
    guide_end_state(home)
    (home.root / ".aws" / "config").write_text(AWS_CONFIG + f"\n[{spelling}]\nsso_session = corp\n")
    before = home.snapshot()

    result = init(home, "--no-systemd")

    assert_one_line_failure(result, 78, f"[{spelling}] is already profile bedrock", "--no-aws-config")
    assert home.snapshot() == before


# botocore reads the shared credentials file's [bedrock] before [profile bedrock]'s credential_process.
FAKE_PAIR = "aws_access_key_id = AKIAIOSFODNN7EXAMPLE\naws_secret_access_key = not-a-secret\n"
SHADOWING_CREDENTIALS = {
    "long-term pair": f"[bedrock]\n{FAKE_PAIR}",
    "[DEFAULT]'s pair": f"[DEFAULT]\n{FAKE_PAIR}[bedrock]\nregion = us-east-1\n",
    "temporary pair of no target": "[bedrock]\naws_access_key_id = ASIAIOSFODNN7EXAMPLE\n"
    "aws_secret_access_key = not-a-secret\naws_session_token = not-a-token\n",
}


@pytest.mark.parametrize("variant", sorted(SHADOWING_CREDENTIALS))
def test_a_pair_in_the_credentials_files_section_of_the_profile_is_refused(
    home: UserHome, variant: str
) -> None:
    guide_end_state(home)
    (home.root / ".aws" / "credentials").write_text(SHADOWING_CREDENTIALS[variant])
    before = home.snapshot()
    result = init(home, "--no-systemd")
    line = assert_one_line_failure(result, 78, "credentials: [bedrock] holds a key pair", "move the pair")
    assert "not-a-secret" not in line
    assert home.snapshot() == before


def test_the_profiles_own_credentials_section_with_temporary_credentials_is_fine(home: UserHome) -> None:
    guide_end_state(home)
    home.config_file.write_text(
        '[profiles.bedrock]\nrole_arn = "arn:aws:iam::123456789012:role/BedrockAccessRole"\n'
        'source_profile = "bedrock-developer"\nregion = "us-east-1"\nenv_files = ["~/app/.env"]\n'
        'credentials_files = [{path = "~/.aws/credentials", profile = "bedrock"}]\n'
    )
    (home.root / ".aws" / "credentials").write_text(SHADOWING_CREDENTIALS["temporary pair of no target"])
    result = init(home, "--no-systemd")
    assert result.returncode == 0, result.stderr
    assert "assumed-role/BedrockAccessRole" in caller_through_aws_config_here(home)
    credentials = (home.root / ".aws" / "credentials").read_text()
    assert "ASIAIOSFODNN7EXAMPLE" not in credentials, "the target got new ones"


@pytest.mark.parametrize(
    "section",
    [
        "default",
        "profile x",
        "profile  x",
        'profile "x y"',
        "profile 'x'",
        "profilex",
        "profile x y",
        "profile",
        "services x",
        "sso-session x",
        'profile "x',
        "profilefoo x",
        "x",
    ],
)
def test_profile_sections_are_read_as_botocore_reads_them(section: str) -> None:
    from botocore.configloader import build_profile_map

    from credhelper.formats.awsconfig import profile_named_by

    expected = list(build_profile_map({section: {"region": "us-east-1"}})["profiles"])
    assert [name for name in [profile_named_by(section)] if name is not None] == expected


def test_without_a_pair_and_a_working_source_the_error_names_source_profile(home: UserHome) -> None:
    guide_end_state(home)
    home.app_env.write_text(AGENT0_ENV_DEFAULT)
    before = home.snapshot()
    result = init(home, "--no-systemd")
    assert_one_line_failure(result, 78, "--source-profile bedrock-developer")
    assert home.snapshot() == before


def test_without_a_terminal_a_missing_role_is_a_usage_error_naming_the_flag(home: UserHome) -> None:
    guide_end_state(home)
    before = home.snapshot()
    result = home.run("init", "--env-file", "~/app/.env", "--no-systemd")
    assert_one_line_failure(result, 2, "--role-arn is required")
    assert home.snapshot() == before


def fake_systemctl(home: UserHome, state: str) -> Path:
    """A systemctl on PATH that answers is-system-running and logs every call."""
    bin_dir = home.root.parent / "bin"
    bin_dir.mkdir(exist_ok=True)
    log = home.root.parent / "systemctl.log"
    script = bin_dir / "systemctl"
    script.write_text(
        f'#!/bin/sh\necho "$*" >> {log}\n'
        f'if [ "$2" = is-system-running ]; then echo {state}; [ {state} = running ]; exit $?; fi\nexit 0\n'
    )
    script.chmod(0o755)
    home.env["PATH"] = f"{bin_dir}{os.pathsep}{home.env['PATH']}"
    return log


def test_systemd_unit_is_installed_enabled_and_passes_verify(home: UserHome, tmp_path: Path) -> None:
    guide_end_state(home)
    log = fake_systemctl(home, "running")
    result = init(home, "--systemd")
    assert result.returncode == 0, result.stderr
    unit = home.root / ".config" / "systemd" / "user" / "credhelper.service"
    assert unit.read_text() == render_unit([sys.executable, "-P", "-m", "credhelper"])
    assert f"ExecStart={sys.executable} -P -m credhelper run\n" in unit.read_text()
    assert log.read_text().splitlines() == [
        "--user is-system-running",
        "--user daemon-reload",
        "--user enable --now credhelper.service",
    ]
    assert "enabled and started" in result.stdout
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze is required; `sh dev test` installs Debian's systemd package"
    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700)
    verify = subprocess.run(
        [analyze, "--user", "verify", str(unit)],
        env=dict(os.environ, HOME=str(home.root), XDG_RUNTIME_DIR=str(runtime)),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert verify.returncode == 0, verify.stderr
    assert "credhelper.service" not in verify.stderr, verify.stderr


def test_without_a_user_manager_the_commands_are_printed(home: UserHome) -> None:
    guide_end_state(home)
    log = fake_systemctl(home, "offline")
    result = init(home, "--systemd")
    assert result.returncode == 0, result.stderr
    assert (
        "systemctl --user daemon-reload && systemctl --user enable --now credhelper.service" in result.stdout
    )
    assert log.read_text().splitlines() == ["--user is-system-running"]


def test_rendered_unit_and_the_shipped_unit_differ_only_in_exec_start() -> None:
    shipped = (REPO / "systemd" / "credhelper.service").read_text().splitlines()
    rendered = UNIT_TEMPLATE.format(exec_start="%h/.local/bin/credhelper run").splitlines()
    assert rendered == shipped


def test_exec_start_quotes_paths_with_spaces_and_percent_signs() -> None:
    text = render_unit(["/opt/my tools/100%/credhelper"])
    assert 'ExecStart="/opt/my tools/100%%/credhelper" run\n' in text


@pytest.mark.parametrize(
    ("output", "answers"),
    [("running\n", True), ("degraded\n", True), ("offline\n", False), ("", False), ("unknown", False)],
)
def test_user_manager_answers(output: str, answers: bool) -> None:
    assert user_manager_answers(output) is answers


def test_profile_with_the_same_values_leaves_the_configuration_as_it_is() -> None:
    text = '[profiles.bedrock]\nrole_arn = "arn:aws:iam::123456789012:role/R"  # mine\n'
    assert (
        add_profile_to_config(Path("c"), text, "bedrock", {"role_arn": "arn:aws:iam::123456789012:role/R"})
        == text
    )


def test_dry_run_shows_no_secret_of_an_existing_credentials_file(home: UserHome) -> None:
    guide_end_state(home)
    (home.root / ".aws" / "credentials").write_text(
        "[default]\naws_access_key_id = AKIAIOSFODNN7EXAMPLE\n"
        "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n"
    )
    result = init(home, "--no-systemd", "--dry-run")
    assert result.returncode == 0, result.stderr
    assert " aws_secret_access_key = <secret>" in result.stdout  # the context line, masked
    assert "wJalrXUtnFEMI" not in result.stdout


def test_diff_never_shows_the_secret() -> None:
    change = FileChange(
        Path("/c"),
        None,
        "[p]\naws_secret_access_key = wJalrXUtnFEMI/K7MDENG\n",
        0o600,
        "wJalrXUtnFEMI/K7MDENG",
    )
    assert "wJalrXUtnFEMI" not in diff_text(change)


def test_on_a_terminal_missing_values_are_asked_with_their_defaults_shown(home: UserHome) -> None:
    guide_end_state(home)
    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "credhelper", "init", "--env-file", "~/app/.env", "--no-systemd"],
        stdin=terminal,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=home.env,
        cwd=home.root,
    )
    os.close(terminal)
    os.write(controller, f"{home.sts.role_arn}\n\n\n".encode())  # the role, then two defaults
    try:
        out, err = process.communicate(timeout=60)
    finally:
        os.close(controller)
    assert process.returncode == 0, err
    assert "Source profile (the IAM user's keys) [bedrock-developer]:" in out
    assert "Region [us-east-1]:" in out  # the .env's AWS_REGION
    assert 'source_profile = "bedrock-developer"\nregion = "us-east-1"\n' in home.config_file.read_text()
    assert_no_secret(home, out, err)


def test_a_write_failing_half_way_puts_every_file_back(home: UserHome) -> None:
    guide_end_state(home)
    home.config_file.parent.rmdir()
    units = home.root / ".config" / "systemd" / "user"
    units.mkdir(parents=True)
    # The unit is written last: make its directory refuse new files, even to root.
    if subprocess.run(["chattr", "+i", str(units)], capture_output=True).returncode != 0:
        pytest.skip("chattr +i is not supported here")
    try:
        before = home.snapshot()
        result = init(home, "--systemd")
        assert_one_line_failure(result, 1, "credhelper.service: cannot write", "every file was put back")
        assert home.snapshot() == before
        assert not home.config_file.parent.exists(), "a directory init created was left behind"
    finally:
        subprocess.run(["chattr", "-i", str(units)], check=True)


VALUES = {"credential_process": "/x/c credential-process bedrock", "region": "us-east-1"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "",
            "[profile bedrock]\ncredential_process = /x/c credential-process bedrock\nregion = us-east-1\n",
        ),
        (  # the same section: unchanged, its spacing included
            "[profile bedrock]\ncredential_process=/x/c credential-process bedrock\nregion=us-east-1\n",
            "[profile bedrock]\ncredential_process=/x/c credential-process bedrock\nregion=us-east-1\n",
        ),
        (  # a section with only the region: credential_process joins it
            "# c\r\n[profile bedrock]\r\nregion = us-east-1\r\n",
            "# c\r\n[profile bedrock]\r\nregion = us-east-1\r\n"
            "credential_process = /x/c credential-process bedrock\r\n",
        ),
    ],
)
def test_aws_config_profile_is_added_keeping_every_byte(text: str, expected: str) -> None:
    assert add_process_profile(Path("config"), text, "bedrock", VALUES) == expected


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("[profile bedrock]\nregion = eu-west-1\n", "already holds other settings (region)"),
        ("[profile bedrock]\nrole_arn = arn:aws:iam::1:role/x\n", "already holds other settings (role_arn)"),
        ("[profile bedrock]\n[profile bedrock]\n", "cannot be read as an AWS config file"),
        ("stray line\n", "cannot be read as an AWS config file"),
    ],
)
def test_aws_config_conflicts_are_refused(text: str, problem: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(problem)):
        add_process_profile(Path("config"), text, "bedrock", VALUES)


def test_a_configuration_elsewhere_is_passed_on_to_credential_process(home: UserHome) -> None:
    guide_end_state(home)
    elsewhere = home.root / "etc" / "credhelper.toml"
    elsewhere.parent.mkdir()
    result = home.run("--config", str(elsewhere), *INIT_FLAGS, "--no-systemd")
    assert result.returncode == 0, result.stderr
    assert f"--config {elsewhere} credential-process bedrock\n" in (home.root / ".aws" / "config").read_text()
    assert not home.config_file.exists()
    assert "assumed-role/BedrockAccessRole" in caller_through_aws_config_here(home)


def test_a_target_of_another_profile_is_refused_before_anything_is_written(home: UserHome) -> None:
    # The default home is set up: profile bedrock keeps ~/app/.env.
    refreshed(home)
    before = home.snapshot()
    result = home.run(
        "init",
        "--profile",
        "other",
        "--role-arn",
        "arn:aws:iam::123456789012:role/BedrockAccessRole",
        "--env-file",
        "~/app/.env",
        "--no-systemd",
    )
    assert_one_line_failure(result, 78, "[profiles.other] env_files", "of profile bedrock")
    assert home.snapshot() == before
    assert home.run("status").returncode == 0


@pytest.mark.parametrize(
    ("flag", "value", "expected"),
    [
        ("--region", "us_east_1", "a region name such as us-east-1"),
        ("--role-arn", "arn:aws:iam::1234:role/X", "arn:aws:iam::<12-digit account>:role/<name>"),
    ],
)
def test_a_bad_flag_value_is_a_usage_error_naming_the_flag(
    home: UserHome, flag: str, value: str, expected: str
) -> None:
    guide_end_state(home)
    before = home.snapshot()
    flags = list(INIT_FLAGS)
    flags[flags.index(flag) + 1] = value
    result = home.run(*flags, "--no-systemd")
    message = assert_one_line_failure(result, 2, f"{flag} {value!r}", expected)
    assert "config.toml" not in message
    assert home.snapshot() == before


def test_dry_run_masks_every_secret_of_the_aws_config_file(home: UserHome) -> None:
    guide_end_state(home)
    secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    (home.root / ".aws" / "config").write_text(
        AWS_CONFIG + "\n[profile legacy]\naws_access_key_id = AKIAIOSFODNN7EXAMPLE\n"
        f"AWS_Secret_Access_Key: {secret}\naws_security_token={secret}\n"
    )
    result = init(home, "--no-systemd", "--dry-run")
    assert result.returncode == 0, result.stderr
    assert " AWS_Secret_Access_Key: <secret>" in result.stdout  # a context line, masked
    assert " aws_security_token=<secret>" in result.stdout
    assert "wJalrXUtnFEMI" not in result.stdout


FAKE_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
FAKE_SECRET_PARTS = ("wJalrXUtnFEMI", "K7MDENG", "bPxRfi", "CYEXAMPLEKEY")


# botocore reads these files with configparser: lines indented deeper than a key go on its value.
@pytest.mark.parametrize(
    ("written", "last_line_shown"),
    [
        (f"aws_secret_access_key =\n    {FAKE_SECRET}\n", "    <secret>"),  # the value only below
        ("AWS_Session_Token: wJalrXUtnFEMI\n  /K7MDENG/\n  bPxRfiCYEXAMPLEKEY\n", "  <secret>"),
        ("aws_security_token =\n\twJalrXUtnFEMI/K7MDENG\n\t/bPxRfiCYEXAMPLEKEY\n", "\t<secret>"),
        (f"aws_secret_access_key =\n# pasted from the console\n\n    {FAKE_SECRET}\n", "    <secret>"),
        (f"  aws_secret_access_key=\n      {FAKE_SECRET}\n", "      <secret>"),  # indented keys
    ],
    ids=["below-the-key", "several-lines", "tabs", "after-a-comment-and-a-blank", "indented-key"],
)
@pytest.mark.parametrize("file", ["config", "credentials"])
def test_dry_run_masks_a_secret_written_on_continuation_lines(
    home: UserHome, file: str, written: str, last_line_shown: str
) -> None:
    guide_end_state(home)
    section = "[profile legacy]" if file == "config" else "[legacy]"
    path = home.root / ".aws" / file
    path.write_text((path.read_text() if path.exists() else "") + f"{section}\n{written}")
    path.chmod(0o600)
    result = init(home, "--no-systemd", "--dry-run")
    assert result.returncode == 0, result.stderr
    # Booleans, not the output: a failing assertion must not print the secret either.
    shown = any(part in result.stdout + result.stderr for part in FAKE_SECRET_PARTS)
    assert not shown, f"init --dry-run showed a secret written on continuation lines of {path}"
    in_context = f" {last_line_shown}\n" in result.stdout
    assert in_context, "the secret's last line is not among the diff's context lines"


@pytest.mark.parametrize(
    "line",
    [
        "AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI",
        "export AWS_SESSION_TOKEN='wJalrXUtnFEMI'",
        "AWS_BEARER_TOKEN_BEDROCK = wJalrXUtnFEMI",
        "aws_session_token = wJalrXUtnFEMI",
    ],
)
def test_a_diff_of_any_file_masks_secret_values(line: str) -> None:
    change = FileChange(Path("/f"), b"# kept\n" + line.encode() + b"\n", f"# kept\n{line}\nX=1\n", 0o600)
    shown = diff_text(change)
    assert "<secret>" in shown
    assert "wJalrXUtnFEMI" not in shown


# Files whose every value line carries its own token `v<line>x`: a token the reader puts in a secret's
# value must not be in the diff that shows the file.
SECRET_KEYS = {"aws_secret_access_key", "aws_session_token", "aws_security_token", "aws_bearer_token_bedrock"}
INI_LINE = st.tuples(
    st.sampled_from(["", "", " ", "  ", "\t", "    ", " \t"]),
    st.sampled_from(
        [
            *["[s{n}]", "aws_secret_access_key =", "AWS_Session_Token: {v}", "aws_security_token={v}"],
            *["region = {v}", "s3 =", "{v}", "{v}", "{v}", "# {v}", "; {v}", ""],
        ]
    ),
).map("".join)
ENV_LINE = st.sampled_from(
    [
        *['AWS_SESSION_TOKEN="{v}', "export AWS_SECRET_ACCESS_KEY='{v}", "'aws_security_token'={v}"],
        *['AWS_BEARER_TOKEN_BEDROCK="{v}"', "AWS_SESSION_TOKEN=", "AWS_SESSION_TOKEN=`{v}", "X={v}"],
        *['{v}"', "{v}'", '{v}\\"', "{v}\\'", "{v}`", "{v}", "  {v}", 'X="{v}', "# {v}", "", '{v}" # c'],
    ]
)


def numbered(lines: list[str], end: str, first: str = "") -> str:
    return first + "".join(line.format(v=f"v{n}x", n=n) + end for n, line in enumerate(lines))


def secret_tokens(values: dict[str, str | None]) -> set[str]:
    return {
        token
        for key, value in values.items()
        if key.strip("'").lower() in SECRET_KEYS
        for token in re.findall(r"v\d+x", value or "")
    }


def shown_in_a_diff(text: str) -> str:
    return diff_text(FileChange(Path("/f"), None, text, 0o600))


@settings(max_examples=500, deadline=None)
@given(st.lists(INI_LINE, max_size=12), st.sampled_from(["\n", "\r\n", "\r"]))
def test_a_diff_hides_every_line_botocore_reads_into_a_secret(lines: list[str], end: str) -> None:
    text = numbered(lines, end, first=f"[top]{end}")
    parser = configparser.RawConfigParser()  # as botocore's configloader reads both files
    try:
        parser.read_string(text)
    except configparser.Error:
        return
    values = {key: value for name in parser.sections() for key, value in parser.items(name, raw=True)}
    shown = shown_in_a_diff(text)
    assert not [token for token in secret_tokens(values) if token in shown], text


@settings(max_examples=500, deadline=None)
@given(st.lists(ENV_LINE, max_size=10), st.sampled_from(["\n", "\r\n"]))
def test_a_diff_hides_every_line_python_dotenv_reads_into_a_secret(lines: list[str], end: str) -> None:
    text = numbered(lines, end)
    values = dict(dotenv_values(stream=io.StringIO(text)))
    shown = shown_in_a_diff(text)
    assert not [token for token in secret_tokens(values) if token in shown], text


NODE_DOTENV_SPELLINGS = [
    'AWS_SESSION_TOKEN="{v}\n{v}"\nB=1\n',
    "export AWS_SECRET_ACCESS_KEY='{v}\n  {v}\n{v}'\n",
    "AWS_SESSION_TOKEN=`{v}\n{v}`\n",
    'AWS_SESSION_TOKEN=\n\n  "{v}\n{v}"\nB=1\n',  # Node reads a quoted value below an empty key
    "AWS_SESSION_TOKEN=\n`{v}`\n",
    "AWS_SECRET_ACCESS_KEY:\n{v}\nB=1\n",  # and after `KEY:`, the whole next line
    'AWS_SECRET_ACCESS_KEY="{v}\\"\n{v}"\n',
    'AWS_BEARER_TOKEN_BEDROCK = "{v}\r\n{v}"\r\n',
]


def test_a_diff_hides_every_line_node_dotenv_reads_into_a_secret(tmp_path: Path) -> None:
    counter = itertools.count()
    texts = [re.sub(r"\{v\}", lambda _: f"v{next(counter)}x", spelling) for spelling in NODE_DOTENV_SPELLINGS]
    paths = [tmp_path / f"{n}.env" for n in range(len(texts))]
    for path, text in zip(paths, texts, strict=True):
        path.write_text(text, newline="")
    for text, values in zip(texts, node_dotenv_parse(paths), strict=True):
        tokens = secret_tokens(values)
        assert tokens, f"Node's dotenv reads no secret value from {text!r}"
        shown = shown_in_a_diff(text)
        assert not [token for token in tokens if token in shown], text


def test_a_crlf_configuration_keeps_its_line_ending(home: UserHome) -> None:
    guide_end_state(home)
    existing = '# mine\r\n[profiles.other]\r\nrole_arn = "arn:aws:iam::123456789012:role/X"\r\n'
    home.config_file.write_bytes(existing.encode())
    result = init(home, "--no-systemd", "--no-aws-config")
    assert result.returncode == 0, result.stderr
    data = home.config_file.read_bytes()
    assert data.startswith(existing.encode() + b"\r\n[profiles.bedrock]\r\n"), data
    assert data.count(b"\n") == data.count(b"\r\n"), data


def test_a_bad_region_in_the_env_is_a_configuration_error_naming_the_env(home: UserHome) -> None:
    original = guide_end_state(home)
    home.app_env.write_text(original.replace("AWS_REGION=us-east-1", "AWS_REGION=US East"))
    before = home.snapshot()
    result = home.run(*[f for f in INIT_FLAGS if f not in ("--region", "us-east-1")], "--no-systemd")
    message = assert_one_line_failure(result, 78, f"{home.app_env}: AWS_REGION 'US East'", "--region")
    assert "config.toml" not in message
    assert home.snapshot() == before
