"""What a newcomer meets first: help texts, the messages of a first mistake, shell completion,
and an optional `--serve` value that cannot swallow a profile name."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from credhelper import errors
from credhelper.clihelp import split_serve_value
from credhelper.profile import DEFAULT_SERVE
from tests.conftest import UserHome
from tests.daemonproc import DaemonProcess, wait_for
from tests.helpers import assert_one_line_failure

REPO = Path(__file__).resolve().parent.parent
COMMANDS = ["refresh", "credential-process", "run", "status", "adopt-keys", "env"]


@pytest.mark.parametrize(
    ("value", "address", "profiles"),
    [
        (None, None, ()),
        (DEFAULT_SERVE, DEFAULT_SERVE, ()),  # a bare --serve
        ("127.0.0.1:9000", "127.0.0.1:9000", ()),
        ("[::1]:9000", "[::1]:9000", ()),
        ("localhost:0", "localhost:0", ()),
        (":9000", "127.0.0.1:9000", ()),
        ("bedrock", DEFAULT_SERVE, ("bedrock",)),
        ("0.0.0.0:80", "0.0.0.0:80", ()),  # an address, refused later as not loopback
    ],
)
def test_serve_value_is_an_address_only_with_a_colon(
    value: str | None, address: str | None, profiles: tuple[str, ...]
) -> None:
    assert split_serve_value(value) == (address, profiles)


def default_port_is_free() -> bool:
    host, port = DEFAULT_SERVE.rsplit(":", 1)
    with socket.socket() as probe:
        try:
            probe.bind((host, int(port)))
        except OSError:
            return False
    return True


def test_run_serve_then_a_profile_name_serves_on_the_default_and_refreshes_that_profile(
    home: UserHome, tmp_path: Path
) -> None:
    if not default_port_is_free():
        pytest.skip(f"{DEFAULT_SERVE} is taken by another process on this machine")
    (home.root / "other").mkdir()
    other_env = home.root / "other" / ".env"
    other_env.write_text("APP=1\n")
    home.write_config(
        extra=home.config_file.read_text()
        .replace("[profiles.bedrock]", "[profiles.other]", 1)
        .replace("~/app/.env", "~/other/.env")
    )
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    home.env["XDG_RUNTIME_DIR"] = str(runtime)
    daemon = DaemonProcess(home, "--serve", "bedrock")
    try:
        wait_for(lambda: "running:" in daemon.log or daemon.process.poll() is not None, 30)
        assert daemon.process.poll() is None, daemon.log
        assert "1 profile(s)" in daemon.log, daemon.log
        daemon.wait_written()
        assert other_env.read_text() == "APP=1\n", "a profile that was not named was refreshed"
        shown = home.run("env", "bedrock", "--format", "json")
        assert shown.returncode == 0, shown.stderr
        url = json.loads(shown.stdout)["AWS_CONTAINER_CREDENTIALS_FULL_URI"]
        assert url == f"http://{DEFAULT_SERVE}/v1/credentials/bedrock"
    finally:
        daemon.stop()


@pytest.mark.parametrize(
    ("how", "needles", "not_said"),
    [
        ("flag", ("given with --config", "check the path"), "pass --config"),
        ("environment", ("$CREDHELPER_CONFIG points there", "unset CREDHELPER_CONFIG"), "pass --config"),
        ("default", ("no configuration file", "pass --config PATH"), "given with"),
    ],
)
def test_missing_config_message_follows_how_the_path_was_chosen(
    home: UserHome, how: str, needles: tuple[str, ...], not_said: str
) -> None:
    nowhere = str(home.root / "nope.toml")
    args = ["status"]
    if how == "flag":
        args = ["--config", nowhere, "status"]
    elif how == "environment":
        home.env["CREDHELPER_CONFIG"] = nowhere
    else:
        home.config_file.unlink()
    line = assert_one_line_failure(home.run(*args), 78, *needles)
    assert not_said not in line


def test_adopting_a_dead_key_does_not_send_the_user_back_to_adopt_keys(home: UserHome) -> None:
    home.app_env.write_text(
        "AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE\nAWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n"
    )
    result = home.run("adopt-keys", "--env-file", str(home.app_env), "--profile", "fresh")
    line = assert_one_line_failure(result, 77, "[fresh]", "unknown to AWS", "aws configure --profile fresh")
    assert "adopt-keys" not in line


def test_a_dead_source_key_names_the_profile_to_fix(home: UserHome) -> None:
    creds = home.root / ".aws" / "credentials"
    creds.write_text(creds.read_text().replace(home.sts.access_key_id, "AKIAIOSFODNN7EXAMPLE"))
    line = assert_one_line_failure(
        home.run("refresh"), 77, "profile bedrock", "aws configure --profile bedrock-developer"
    )
    assert "adopt-keys" not in line


def exit_codes_in(text: str) -> set[int]:
    return {int(code) for code in re.findall(r"^\s*\|?\s*(\d{1,3})\s*\|?\s+\S", text, re.M)}


def test_help_gives_the_default_config_path_and_every_exit_code(home: UserHome) -> None:
    result = home.run("--help")
    assert result.returncode == 0
    assert "~/.config/credhelper/config.toml" in result.stdout
    assert "CREDHELPER_CONFIG" in result.stdout
    assert "_CREDHELPER_COMPLETE=bash_source credhelper" in result.stdout
    table = result.stdout.split("Exit status:")[1].split("Shell completion")[0]
    raised = {cls.exit_code for cls in vars(errors).values() if isinstance(cls, type)}
    assert exit_codes_in(table) == {0, errors.EXIT_FAILURE} | raised, table


def test_readme_and_help_list_the_same_exit_codes(home: UserHome) -> None:
    readme = (REPO / "README.md").read_text()
    section = readme.split("### Exit codes")[1].split("\n#")[0]
    help_table = home.run("--help").stdout.split("Exit status:")[1].split("Shell completion")[0]
    assert exit_codes_in(section) == exit_codes_in(help_table)
    for words in ("a target unusable as configured", "a write failing at the OS level"):
        assert words in " ".join(section.split()), f"README's exit codes do not mention {words!r}"


@pytest.mark.parametrize("command", COMMANDS)
def test_each_command_help_shows_an_example(home: UserHome, command: str) -> None:
    result = home.run(command, "--help")
    assert result.returncode == 0, result.stderr
    assert re.search(r"^\s+Examples?\b", result.stdout, re.M), result.stdout
    assert re.search(r"credhelper " + command, result.stdout.split("Example")[1]), result.stdout


def test_refresh_and_run_help_say_no_profile_means_every_profile(home: UserHome) -> None:
    for command in ("refresh", "run", "status"):
        text = " ".join(home.run(command, "--help").stdout.split())
        assert "With no PROFILE, every profile" in text, text


def test_run_help_says_the_serve_value_is_optional(home: UserHome) -> None:
    text = " ".join(home.run("run", "--help").stdout.split())
    assert "--serve [HOST:PORT|:PORT]" in text
    assert "anything else is a profile name" in text


def test_shell_completion_works_through_the_installed_command(home: UserHome) -> None:
    script = Path(sys.executable).parent / "credhelper"
    assert script.exists(), "the console script is missing; `sh dev test` installs it"
    env = dict(home.env, _CREDHELPER_COMPLETE="bash_complete", COMP_WORDS="credhelper cre", COMP_CWORD="1")
    result = subprocess.run([str(script)], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "credential-process" in result.stdout
    env.update(COMP_WORDS="credhelper credential-process b", COMP_CWORD="2")
    result = subprocess.run([str(script)], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "Version" not in result.stdout, "completion ran the command"
    assert result.stdout.split() == ["plain,bedrock"], "profile names are not completed"
    source = subprocess.run(
        [str(script)],
        env=dict(home.env, _CREDHELPER_COMPLETE="bash_source"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "_credhelper_completion" in source.stdout, "no bash completion script"
