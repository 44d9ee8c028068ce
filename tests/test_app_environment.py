"""An app's environment, as `exec` (plain and supervised) and `env` give it: one builder, a table."""

from __future__ import annotations

from credhelper.appexec.environment import credential_values, endpoint_values, served_command_values
from credhelper.credentials import Credentials
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
