"""Moving a long-term key out of an app's `.env` into a source profile, without ever losing it."""

from __future__ import annotations

import stat
import textwrap

from tests.conftest import AGENT0_ENV_DEFAULT, UserHome
from tests.helpers import assert_no_secret, assert_one_line_failure, cached_record, read_env
from tests.stsproxy import Fault

EXISTING_CREDENTIALS = textwrap.dedent("""\
    # my keys; do not lose this comment
    [default]
    aws_access_key_id = AKIAIOSFODNN7EXAMPLE
    aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY

    ; another comment
    [work]
    aws_access_key_id=AKIAI44QH8DHBEXAMPLE
    aws_secret_access_key=je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY
    """)


def put_long_term_key_in_env(home: UserHome) -> str:
    text = AGENT0_ENV_DEFAULT.replace(
        "AWS_ACCESS_KEY_ID=\n", f"AWS_ACCESS_KEY_ID={home.sts.access_key_id}\n"
    ).replace("AWS_SECRET_ACCESS_KEY=\n", f"AWS_SECRET_ACCESS_KEY={home.sts.secret_access_key}\n")
    home.app_env.write_text(text)
    (home.root / ".aws" / "credentials").write_text(EXISTING_CREDENTIALS)
    return text


def test_refresh_refuses_to_overwrite_a_long_term_key(home: UserHome) -> None:
    original = put_long_term_key_in_env(home)
    result = home.run("refresh")
    assert_one_line_failure(result, 78, "long-term access key", "credhelper adopt-keys --env-file")
    assert home.app_env.read_text() == original
    assert home.proxy.count("AssumeRole") == 0


def test_adopt_keys_moves_the_pair_verifies_it_then_refreshes(home: UserHome) -> None:
    original = put_long_term_key_in_env(home)
    credentials = home.root / ".aws" / "credentials"
    result = home.run("adopt-keys", "--env-file", str(home.app_env), "--profile", "bedrock-developer")
    assert result.returncode == 0, result.stderr
    assert "arn:aws:iam::123456789012:user/bedrock-developer" in result.stdout
    assert_no_secret(home, result.stdout, result.stderr)
    text = credentials.read_text()
    assert text.startswith(EXISTING_CREDENTIALS)  # every byte of the other sections kept
    assert f"[bedrock-developer]\naws_access_key_id = {home.sts.access_key_id}\n" in text
    assert stat.S_IMODE(credentials.stat().st_mode) == 0o600
    values = read_env(home.app_env)
    assert values["AWS_ACCESS_KEY_ID"] == cached_record(home)["AccessKeyId"]
    assert values["AWS_ACCESS_KEY_ID"].startswith("ASIA")
    assert original.splitlines()[1] == home.app_env.read_text().splitlines()[1]


def test_refresh_says_how_to_adopt_when_the_key_is_not_in_a_source_profile(home: UserHome) -> None:
    original = put_long_term_key_in_env(home)
    # The source profile holds the same user's key, but the .env's copy was never adopted.
    (home.root / ".aws" / "credentials").write_text(
        EXISTING_CREDENTIALS + "\n[bedrock-developer]\n"
        f"aws_access_key_id = {home.sts.access_key_id}\n"
        f"aws_secret_access_key = {home.sts.secret_access_key}\n"
    )
    home.app_env.write_text(original.replace(home.sts.access_key_id, "AKIAIOSFODNN7EXAMPLE"))
    before = home.app_env.read_text()
    result = home.run("refresh")
    line = assert_one_line_failure(result, 78, "long-term access key", "credhelper adopt-keys")
    assert "AKIA…MPLE" in line
    assert home.app_env.read_text() == before


def test_adopt_keys_with_keys_aws_rejects_changes_nothing(home: UserHome) -> None:
    home.app_env.write_text(
        "AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE\nAWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n"
    )
    before = home.snapshot()
    result = home.run("adopt-keys", "--env-file", str(home.app_env), "--profile", "fresh")
    assert_one_line_failure(result, 77, "unknown to AWS")
    assert home.snapshot() == before


def test_adopt_keys_refused_by_aws_names_the_pair_not_a_role(home: UserHome) -> None:
    put_long_term_key_in_env(home)
    home.proxy.add_fault(Fault("code", action="GetCallerIdentity", code="AccessDenied"))
    before = home.snapshot()

    result = home.run("adopt-keys", "--env-file", str(home.app_env), "--profile", "fresh")

    line = assert_one_line_failure(result, 77, "denied GetCallerIdentity", "fresh")
    assert "role" not in line and "000000000000" not in line, line
    assert home.snapshot() == before


def test_adopt_keys_never_replaces_another_key_in_the_section(home: UserHome) -> None:
    put_long_term_key_in_env(home)
    before = home.snapshot()
    result = home.run("adopt-keys", "--env-file", str(home.app_env), "--profile", "work")
    assert_one_line_failure(result, 78, "[work] already holds another key")
    assert home.snapshot() == before


def test_adopt_keys_without_a_long_term_key_is_a_usage_error(home: UserHome) -> None:
    before = home.snapshot()
    result = home.run("adopt-keys", "--env-file", str(home.app_env), "--profile", "x1")
    assert_one_line_failure(result, 2, "nothing to adopt")
    assert home.snapshot() == before


def test_adopt_keys_writes_through_a_symlinked_credentials_file(home: UserHome) -> None:
    put_long_term_key_in_env(home)
    dotfiles = home.root / "dotfiles"
    dotfiles.mkdir()
    credentials = home.root / ".aws" / "credentials"
    (dotfiles / "aws-credentials").write_text(credentials.read_text())
    credentials.unlink()
    credentials.symlink_to(dotfiles / "aws-credentials")
    result = home.run("adopt-keys", "--env-file", str(home.app_env), "--profile", "bedrock-developer")
    assert result.returncode == 0, result.stderr
    assert credentials.is_symlink(), "the dotfiles symlink was replaced by a regular file"
    assert "[bedrock-developer]" in (dotfiles / "aws-credentials").read_text()


def test_adopt_keys_refreshes_a_profile_targeting_the_env_whatever_its_source(home: UserHome) -> None:
    put_long_term_key_in_env(home)
    credentials = home.root / ".aws" / "credentials"
    credentials.write_text(
        EXISTING_CREDENTIALS + "\n[bedrock-developer]\n"
        f"aws_access_key_id = {home.sts.access_key_id}\n"
        f"aws_secret_access_key = {home.sts.secret_access_key}\n"
    )
    # The profile writing the .env uses bedrock-developer; the pair is adopted as team-key.
    result = home.run("adopt-keys", "--env-file", str(home.app_env), "--profile", "team-key")
    assert result.returncode == 0, result.stderr
    assert "[team-key]" in credentials.read_text()
    key_id = read_env(home.app_env)["AWS_ACCESS_KEY_ID"]
    assert key_id and key_id.startswith("ASIA"), "the long-term pair was left in the .env"
    assert home.sts.secret_access_key not in home.app_env.read_text()


def test_adopt_keys_says_the_pair_stays_when_no_profile_writes_the_env(home: UserHome) -> None:
    original = put_long_term_key_in_env(home)
    home.write_config(env_files='["~/elsewhere/.env"]')
    result = home.run("adopt-keys", "--env-file", str(home.app_env), "--profile", "bedrock-developer")
    assert result.returncode == 0, result.stderr
    assert "still in" in result.stdout and str(home.app_env) in result.stdout
    assert 'source_profile = "bedrock-developer"' in result.stdout
    assert f'env_files = ["{home.app_env}"]' in result.stdout
    assert home.app_env.read_text() == original
    assert_no_secret(home, result.stdout, result.stderr)


def test_adopt_keys_into_credhelpers_own_temporary_section_says_what_it_is(home: UserHome) -> None:
    put_long_term_key_in_env(home)
    credentials = home.root / ".aws" / "credentials"
    credentials.write_text(
        EXISTING_CREDENTIALS + "\n[bedrock]\naws_access_key_id = ASIAOLDOLDOLDEXAMPLE\n"
        "aws_secret_access_key = old\naws_session_token = old\n"
    )
    before = home.snapshot()
    result = home.run("adopt-keys", "--env-file", str(home.app_env), "--profile", "bedrock")
    assert_one_line_failure(result, 78, "[bedrock] holds temporary credentials", "--profile")
    assert home.snapshot() == before


def test_adopt_keys_refuses_a_credentials_file_it_cannot_read_with_certainty(home: UserHome) -> None:
    put_long_term_key_in_env(home)
    credentials = home.root / ".aws" / "credentials"
    credentials.write_text(EXISTING_CREDENTIALS + "a stray line\n")
    before = home.snapshot()
    result = home.run("adopt-keys", "--env-file", str(home.app_env), "--profile", "bedrock-developer")
    assert_one_line_failure(result, 78, str(credentials), "line 10")
    assert home.snapshot() == before
