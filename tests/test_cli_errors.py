"""Bad input and refusals: the documented exit status, one line naming cause and fix, no traceback,
every file as it was, and no secret shown."""

from __future__ import annotations

import re
import socket

import pytest

from tests.conftest import UserHome
from tests.helpers import assert_no_secret, assert_one_line_failure
from tests.stsproxy import Fault


def unchanged_after(home: UserHome, *args: str, exit_code: int, needles: tuple[str, ...]) -> str:
    before = home.snapshot()
    result = home.run(*args)
    line = assert_one_line_failure(result, exit_code, *needles)
    assert home.snapshot() == before
    assert_no_secret(home, result.stdout, result.stderr)
    return line


def test_missing_config_file(home: UserHome) -> None:
    home.config_file.unlink()
    unchanged_after(home, "refresh", exit_code=78, needles=("no configuration file", "--config"))


def test_malformed_toml(home: UserHome) -> None:
    home.config_file.write_text("[profiles.bedrock\nrole_arn = 1\n")
    unchanged_after(home, "refresh", exit_code=78, needles=("malformed TOML", str(home.config_file)))


@pytest.mark.parametrize(
    ("override", "needle"),
    [
        ({"role_arn": '"arn:aws:iam::12:role/x"'}, "role_arn"),
        ({"duration_seconds": "60"}, "900..43200"),
        ({"refresh_before_seconds": "4000"}, "less than duration_seconds"),
        ({"role_session_name": '"a b"'}, "role_session_name"),
        ({"colour": '"blue"'}, "unknown key"),
    ],
)
def test_invalid_values(home: UserHome, override: dict[str, str], needle: str) -> None:
    home.write_config(**override)
    line = unchanged_after(home, "refresh", exit_code=78, needles=(needle, "[profiles.bedrock]"))
    assert str(home.config_file) in line


def test_unknown_profile_on_the_command_line(home: UserHome) -> None:
    for args in (("refresh", "nope"), ("credential-process", "nope"), ("status", "nope")):
        unchanged_after(home, *args, exit_code=78, needles=("unknown profile 'nope'", "bedrock"))


def test_usage_errors_exit_2(home: UserHome) -> None:
    result = home.run("frobnicate")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    result = home.run("credential-process")
    assert result.returncode == 2 and "Traceback" not in result.stderr


def test_access_denied_names_the_trust_policy(home: UserHome) -> None:
    home.proxy.add_fault(Fault("code", action="AssumeRole", code="AccessDenied", status=403))
    unchanged_after(home, "refresh", exit_code=77, needles=("denied", "trust policy", "sts:AssumeRole"))


def test_unknown_source_key_is_refused(home: UserHome) -> None:
    creds = home.root / ".aws" / "credentials"
    creds.write_text(creds.read_text().replace(home.sts.access_key_id, "AKIAIOSFODNN7EXAMPLE"))
    unchanged_after(
        home, "credential-process", "bedrock", exit_code=77, needles=("unknown to AWS or deactivated",)
    )


def test_wrong_secret_is_a_signature_error(home: UserHome) -> None:
    creds = home.root / ".aws" / "credentials"
    creds.write_text(creds.read_text().replace(home.sts.secret_access_key, "x" * 40))
    unchanged_after(home, "refresh", exit_code=77, needles=("signature", "secret key"))


def test_missing_source_profile_is_a_config_error(home: UserHome) -> None:
    home.write_config(source_profile='"nobody"')
    unchanged_after(home, "refresh", exit_code=78, needles=("source_profile 'nobody'",))


def test_no_source_credentials_at_all(home: UserHome) -> None:
    home.write_config(source_profile="")
    (home.root / ".aws" / "credentials").unlink()
    unchanged_after(home, "refresh", exit_code=77, needles=("no source credentials",))


@pytest.mark.slow(seconds=7)
def test_throttling_after_retries_exits_75(home: UserHome) -> None:
    home.proxy.add_fault(Fault("throttle", action="AssumeRole"))
    unchanged_after(home, "refresh", exit_code=75, needles=("Throttling", "try again"))
    assert home.proxy.count("AssumeRole") == 4  # botocore's standard retry mode: 4 attempts


def test_throttling_that_clears_is_retried_transparently(home: UserHome) -> None:
    home.proxy.add_fault(Fault("throttle", action="AssumeRole", remaining=2))
    result = home.run("refresh")
    assert result.returncode == 0, result.stderr
    assert home.proxy.count("AssumeRole") == 3


def test_unreachable_sts_exits_75(home: UserHome) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    home.write_config(sts_endpoint_url=f'"http://127.0.0.1:{port}"')
    unchanged_after(home, "credential-process", "bedrock", exit_code=75, needles=("could not be reached",))


def test_server_errors_exit_75(home: UserHome) -> None:
    home.proxy.add_fault(Fault("error500", action="AssumeRole"))
    unchanged_after(home, "refresh", exit_code=75, needles=("InternalFailure",))


def test_target_in_a_missing_directory_is_a_clear_error(home: UserHome) -> None:
    home.write_config(env_files='["~/nowhere/app/.env"]')
    before = home.snapshot()
    result = home.run("refresh")
    line = assert_one_line_failure(result, 78, "does not exist", "nowhere")
    assert "env_files" in line
    assert home.snapshot() == before
    assert not (home.root / "nowhere").exists()


def test_undecodable_env_is_left_alone(home: UserHome) -> None:
    home.app_env.write_bytes(b"A=\xff\xfe\n")
    before = home.snapshot()
    result = home.run("refresh")
    assert_one_line_failure(result, 78, "not UTF-8")
    assert home.snapshot() == before


def test_a_skewed_clock_is_named_as_the_cause(home: UserHome) -> None:
    home.proxy.add_fault(
        Fault("code", action="AssumeRole", code="SignatureDoesNotMatch", status=403, date_offset=3600)
    )
    line = unchanged_after(home, "refresh", exit_code=77, needles=("s behind", "NTP"))
    skew = re.search(r"clock is (\d+) s behind", line)
    assert skew and 3590 <= int(skew.group(1)) <= 3610  # the Date header has one-second resolution
