"""`exec --endpoint`: the command's SDK reaches exec's endpoint, whatever the user's shared AWS
files give the default profile (real botocore in the command, real STS behind exec)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from tests.conftest import UserHome
from tests.helpers import assert_no_secret, cached_record, refreshed

LONG_TERM = "AKIAIOSFODNN7EXAMPLE"  # AWS's documented example key id
# The command: which credentials botocore's default chain found, and one of the config's settings.
WHICH_CREDENTIALS = (
    "import json, botocore.session; s = botocore.session.get_session(); c = s.get_credentials(); "
    "print(json.dumps({'method': c.method, 'key': c.access_key, "
    "'max_attempts': s.get_config_variable('max_attempts'), "
    "'other': s.full_config['profiles'].get('other', {}).get('region')}))"
)


def _add(path: Path, text: str) -> None:
    path.write_text((path.read_text() if path.exists() else "") + text)


def test_a_default_profile_in_the_shared_files_does_not_win_over_the_endpoint(home: UserHome) -> None:
    aws = home.root / ".aws"
    _add(aws / "credentials", f"\n[default]\naws_access_key_id = {LONG_TERM}\naws_secret_access_key = x1\n")
    _add(
        aws / "config",
        f"[default]\nmax_attempts = 7\naws_access_key_id = {LONG_TERM}\naws_secret_access_key = x2\n"
        "credential_process = /bin/false\n[profile other]\nregion = us-west-2\n",
    )
    config_before = (aws / "config").read_bytes()
    result = home.run("exec", "bedrock", "--endpoint", "--", sys.executable, "-c", WHICH_CREDENTIALS)
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    assert seen["key"] != LONG_TERM, "the user's long-term [default] key won over exec's endpoint"
    assert seen == {
        "method": "container-role",
        "key": cached_record(home)["AccessKeyId"],
        "max_attempts": 7,
        "other": "us-west-2",
    }, "botocore must take exec's endpoint and keep the rest of the user's config"
    assert (aws / "config").read_bytes() == config_before, "the user's config must not change"
    assert not list(home.cache_dir.glob("exec-aws-config-*")), "the config copy must go with exec"
    assert_no_secret(home, result.stdout, result.stderr)


# botocore reads ~/.aws/config with configparser: an indented line right after [default] is a key
# of it, an indented [section] line continues the value above, and [DEFAULT]'s keys belong to
# every section, [default] included. A file it cannot read at all gives the command an empty one.
CONFIGS_HOLDING_A_DEFAULT_KEY = {
    "indented keys": f"[default]\n  aws_access_key_id = {LONG_TERM}\n  aws_secret_access_key = x2\n"
    "max_attempts = 7\n[profile other]\nregion = us-west-2\n",
    "indented section": "[default]\nmax_attempts = 7\noutput = json\n  [profile other]\n"
    f"aws_access_key_id = {LONG_TERM}\naws_secret_access_key = x2\n[profile other]\nregion = us-west-2\n",
    "[DEFAULT]": f"[DEFAULT]\naws_access_key_id = {LONG_TERM}\naws_secret_access_key = x2\n"
    "max_attempts = 7\n[default]\nregion = eu-west-3\n[profile other]\nregion = us-west-2\n",
}


@pytest.mark.parametrize("variant", sorted(CONFIGS_HOLDING_A_DEFAULT_KEY))
def test_a_default_key_as_configparser_reads_it_does_not_win_over_the_endpoint(
    home: UserHome, variant: str
) -> None:
    aws = home.root / ".aws"
    (aws / "config").write_text(CONFIGS_HOLDING_A_DEFAULT_KEY[variant])
    result = home.run("exec", "bedrock", "--endpoint", "--", sys.executable, "-c", WHICH_CREDENTIALS)
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    assert seen["key"] != LONG_TERM, f"{variant}: the user's long-term key won over exec's endpoint"
    assert seen == {
        "method": "container-role",
        "key": cached_record(home)["AccessKeyId"],
        "max_attempts": 7,
        "other": "us-west-2",
    }, f"{variant}: botocore must take exec's endpoint and keep the rest of the user's config"
    assert not list(home.cache_dir.glob("exec-aws-config-*")), "the config copy must go with exec"
    assert_no_secret(home, result.stdout, result.stderr)


def test_a_config_botocore_cannot_read_gives_the_command_an_empty_one(home: UserHome) -> None:
    refreshed(home)  # exec's own STS call would read it too
    aws = home.root / ".aws"
    (aws / "config").write_text(
        f"[default]\naws_access_key_id = {LONG_TERM}\naws_secret_access_key = x2\n[default]\nregion = x\n"
    )
    result = home.run("exec", "bedrock", "--endpoint", "--", sys.executable, "-c", WHICH_CREDENTIALS)
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    assert (seen["method"], seen["key"]) == ("container-role", cached_record(home)["AccessKeyId"])
    assert "line 4" in result.stderr and "empty AWS config" in result.stderr, result.stderr
    assert LONG_TERM not in result.stderr
    assert_no_secret(home, result.stdout, result.stderr)


def test_a_config_that_is_a_fifo_hangs_nothing(home: UserHome) -> None:
    """botocore takes a FIFO at ~/.aws/config for no file; reading it would block exec for ever."""
    config = home.root / ".aws" / "config"
    config.unlink(missing_ok=True)
    os.mkfifo(config)
    result = home.run(
        "exec", "bedrock", "--endpoint", "--", sys.executable, "-c", WHICH_CREDENTIALS, timeout=30
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["method"] == "container-role"


def test_a_config_over_a_mebibyte_gives_the_command_an_empty_one(home: UserHome) -> None:
    """botocore reads a config file of any size; credhelper reads at most 1 MiB. One larger cannot
    be checked, so the command gets an empty one rather than the user's, [default] key and all."""
    config = home.root / ".aws" / "config"
    config.write_text(
        f"[default]\naws_access_key_id = {LONG_TERM}\naws_secret_access_key = x2\n" + "# pad\n" * 200_000
    )
    result = home.run("exec", "bedrock", "--endpoint", "--", sys.executable, "-c", WHICH_CREDENTIALS)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["method"] == "container-role", "the long-term [default] key won"
    assert "over 1 MiB" in result.stderr
