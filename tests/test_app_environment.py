"""An app's environment, as `exec` (plain and supervised) and `env` give it: one builder, a table."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from botocore import configloader

from credhelper.appexec.environment import credential_values, endpoint_values, served_command_values
from credhelper.credentials import Credentials
from credhelper.formats.awsconfig import CREDENTIAL_SETTINGS, UnreadableConfig, without_default_credentials
from credhelper.profile import Profile

ROLE = "arn:aws:iam::123456789012:role/BedrockAccessRole"
CREDENTIALS = Credentials(
    "ASIAEXAMPLEEXAMPLE12", "fake-secret-value", "fake-token-value", 4e9, issued_at=3.9e9
)
URL = "http://127.0.0.1:9911"


def test_the_credentials_come_with_the_region_under_both_names() -> None:
    values = credential_values(CREDENTIALS, Profile("p", ROLE, "s", region="eu-west-1"), 3.95e9)
    assert list(values) == [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_CREDENTIAL_EXPIRATION",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
    ], "env prints the variables in this order"
    assert values["AWS_REGION"] == values["AWS_DEFAULT_REGION"] == "eu-west-1"
    assert "AWS_REGION" not in credential_values(CREDENTIALS, Profile("p", ROLE, "s"), 3.95e9)


def test_a_bedrock_key_comes_only_for_a_profile_that_makes_one_and_has_a_region() -> None:
    with_key = Profile("p", ROLE, "s", region="us-east-1", bedrock_api_key=True)
    values = credential_values(CREDENTIALS, with_key, 3.95e9, logged=False)
    assert values["AWS_BEARER_TOKEN_BEDROCK"].startswith("bedrock-api-key-")
    no_region = Profile("p", ROLE, "s", bedrock_api_key=True)
    assert "AWS_BEARER_TOKEN_BEDROCK" not in credential_values(CREDENTIALS, no_region, 3.95e9)


def test_env_names_the_daemons_token_file_and_exec_hands_its_command_the_token() -> None:
    profile = Profile("bedrock", ROLE, "s", region="us-east-1")
    assert endpoint_values(profile, URL, token_file="/run/user/1000/credhelper/token") == {
        "AWS_CONTAINER_CREDENTIALS_FULL_URI": f"{URL}/v1/credentials/bedrock",
        "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE": "/run/user/1000/credhelper/token",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    served = served_command_values(profile, URL, "t0ken")
    assert served["AWS_CONTAINER_AUTHORIZATION_TOKEN"] == "t0ken"
    assert "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE" not in served
    hidden = ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_CREDENTIAL_EXPIRATION"]
    assert all(served[name] == "" for name in hidden), "the command's dotenv must not load the .env's keys"
    assert "AWS_BEARER_TOKEN_BEDROCK" not in served, "an empty key would stop Bedrock calls being signed"
    with_key = Profile("bedrock", ROLE, "s", region="us-east-1", bedrock_api_key=True)
    assert served_command_values(with_key, URL, "t0ken")["AWS_BEARER_TOKEN_BEDROCK"] == ""


def test_under_the_endpoint_the_shared_credentials_file_is_an_empty_one() -> None:
    profile = Profile("bedrock", ROLE, "s", region="us-east-1")
    served = served_command_values(profile, URL, "t0ken")
    assert served["AWS_SHARED_CREDENTIALS_FILE"] == os.devnull, "a [default] pair would win over the endpoint"
    assert "AWS_CONFIG_FILE" not in served, "the user's config stays when it gives no credentials"
    assert served_command_values(profile, URL, "t0ken", "/c/copy")["AWS_CONFIG_FILE"] == "/c/copy"


USER_CONFIG = """\
# mine
[default]
region = eu-west-3
aws_access_key_id = AKIAIOSFODNN7EXAMPLE
Aws_Secret_Access_Key: not-a-real-secret
credential_process = /bin/echo
  continued
s3 =
  addressing_style = path
sso_start_url = https://example.awsapps.com/start
max_attempts = 7

[profile   default]
role_arn = arn:aws:iam::123456789012:role/X
[profile other]
aws_access_key_id = AKIAOTHEREXAMPLE0000
region = us-west-2
"""


def botocore_reads(text: str, tmp_path: Path) -> dict[str, Any]:
    path = tmp_path / "config"
    path.write_text(text)
    return dict(configloader.load_config(str(path)))


def test_the_config_copy_loses_only_the_default_profiles_credentials(tmp_path: Path) -> None:
    copy = without_default_credentials(USER_CONFIG)
    assert copy is not None
    path = tmp_path / "copy"
    path.write_text(copy)
    sections = configloader.raw_config_parse(str(path))
    assert sections["default"] == {
        "region": "eu-west-3",
        "s3": {"addressing_style": "path"},
        "max_attempts": "7",
    }
    assert sections["profile   default"] == {}, "botocore reads this section as the default profile too"
    assert (
        botocore_reads(copy, tmp_path)["profiles"]["other"]
        == botocore_reads(USER_CONFIG, tmp_path)["profiles"]["other"]
    )
    assert without_default_credentials("[default]\nregion = eu-west-3\n[profile x]\nrole_arn = r\n") is None
    assert without_default_credentials("") is None


# configparser's reading, which botocore's is: the scanner before it read each the other way.
AS_BOTOCORE_READS = {
    "indented keys": "[default]\n  aws_access_key_id = AKIAIOSFODNN7EXAMPLE\n  aws_secret_access_key = s\n"
    "region = eu-west-3\n",
    "indented section": "[default]\nregion = eu-west-3\n  [profile other]\n"
    "aws_access_key_id = AKIAIOSFODNN7EXAMPLE\naws_secret_access_key = s\n",
    "[DEFAULT]": "[DEFAULT]\naws_access_key_id = AKIAIOSFODNN7EXAMPLE\naws_secret_access_key = s\n"
    "output = json\n[default]\nregion = eu-west-3\n[profile other]\nregion = us-west-2\n",
    "[profile default], CRLF": "[profile default]\r\nsso_session = s\r\nregion = eu-west-3\r\n",
}


@pytest.mark.parametrize("variant", sorted(AS_BOTOCORE_READS))
def test_the_copy_has_no_default_credentials_as_botocore_reads_it(variant: str, tmp_path: Path) -> None:
    text = AS_BOTOCORE_READS[variant]
    copy = without_default_credentials(text)
    assert copy is not None, f"{variant}: botocore reads credentials for the default profile here"
    before, after = botocore_reads(text, tmp_path), botocore_reads(copy, tmp_path)
    assert not CREDENTIAL_SETTINGS & set(after["profiles"]["default"]), variant
    assert after["profiles"]["default"] == {
        key: value for key, value in before["profiles"]["default"].items() if key not in CREDENTIAL_SETTINGS
    }
    for name, settings in before["profiles"].items():
        if name != "default":
            assert after["profiles"][name] == settings, f"{variant}: profile {name} must stay as it was"


def test_a_config_botocore_cannot_read_is_said_to_be_unreadable_by_line_alone() -> None:
    for text, line in [
        ("[default]\nregion = a\n[default]\nregion = b\n", 3),
        ("aws_secret_access_key = s\n[default]\n", 1),
        ("\ufeff[default]\nregion = a\n", 1),
    ]:
        with pytest.raises(UnreadableConfig) as raised:
            without_default_credentials(text)
        assert str(raised.value).startswith(f"line {line}: ") and "s\n" not in str(raised.value)
    with pytest.raises(UnreadableConfig):
        without_default_credentials("[default]\nregion = \udcff\n")  # not UTF-8, as read
