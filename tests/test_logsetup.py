"""The redaction every log line goes through."""

from __future__ import annotations

import pytest

from credhelper.logsetup import redact, register_secret


def test_key_ids_are_masked_and_secrets_hidden() -> None:
    line = (
        "key ASIAIOSFODNN7EXAMPLE secret wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY "
        "role arn:aws:sts::123456789012:assumed-role/BedrockAccessRole/credhelper-alice"
    )
    shown = redact(line)
    assert "ASIA…MPLE" in shown and "ASIAIOSFODNN7EXAMPLE" not in shown
    assert "wJalrXUtnFEMI" not in shown
    assert "assumed-role/BedrockAccessRole/credhelper-alice" in shown


def test_registered_secrets_are_hidden_whatever_their_shape() -> None:
    register_secret("short-but-secret-value")
    assert "short-but-secret-value" not in redact("token=short-but-secret-value;")


# Obviously fake values with no digit: the shape of a secret the digit-needing pattern let through.
FAKE_SECRET = "wJalrXUtnFEMIKMDENGbPxRfiCYEXAMPLEKEYabcd"
FAKE_TOKEN = "FwoGZXIvYXdzEXAMPLETOKENexampleTOKENexampleTOKENexampleTOKENexample/+TOKEN"


@pytest.mark.parametrize(
    "line",
    [
        # botocore's "Response body:" (the STS query protocol answers in XML)
        f"Response body:\nb'<Credentials>\\n  <AccessKeyId>ASIAIOSFODNN7EXAMPLE</AccessKeyId>\\n"
        f"  <SecretAccessKey>{FAKE_SECRET}</SecretAccessKey>\\n  <SessionToken>{FAKE_TOKEN}</SessionToken>'",
        # botocore's parsed "Response:" dict
        f"Response: {{'Credentials': {{'AccessKeyId': 'ASIAIOSFODNN7EXAMPLE', 'SecretAccessKey': "
        f"'{FAKE_SECRET}', 'SessionToken': '{FAKE_TOKEN}'}}}}",
        # JSON answers: credential_process and the container endpoint
        f'{{"AccessKeyId": "ASIAIOSFODNN7EXAMPLE", "SecretAccessKey": "{FAKE_SECRET}", '
        f'"Token": "{FAKE_TOKEN}"}}',
        f'{{"SecretAccessKey":"{FAKE_SECRET}","SessionToken":"{FAKE_TOKEN}"}}',
        # request headers (a role assumed through an MFA session) and the signer's canonical request
        f"headers: {{'X-Amz-Security-Token': b'{FAKE_TOKEN}', 'Content-Type': 'text/xml'}}",
        f"CanonicalRequest:\\nPOST\\n/\\n\\nhost:sts.amazonaws.com\\nx-amz-security-token:{FAKE_TOKEN}\\n",
        # query strings, env lines, INI lines
        f"Action=AssumeRole&SecretAccessKey={FAKE_SECRET}&SessionToken={FAKE_TOKEN}&Version=2011-06-15",
        f"AWS_SECRET_ACCESS_KEY={FAKE_SECRET} AWS_SESSION_TOKEN='{FAKE_TOKEN}'",
        f"aws_secret_access_key = {FAKE_SECRET}\naws_session_token = {FAKE_TOKEN}",
    ],
)
def test_secret_fields_are_hidden_by_name_whatever_their_characters(line: str) -> None:
    shown = redact(line)
    assert FAKE_SECRET not in shown
    assert FAKE_TOKEN not in shown
    assert "[redacted]" in shown


def test_the_field_names_and_masked_key_id_stay_readable() -> None:
    shown = redact(
        f"<AccessKeyId>ASIAIOSFODNN7EXAMPLE</AccessKeyId><SecretAccessKey>{FAKE_SECRET}</SecretAccessKey>"
    )
    assert shown == "<AccessKeyId>ASIA…MPLE</AccessKeyId><SecretAccessKey>[redacted]</SecretAccessKey>"


@pytest.mark.parametrize(
    "line",
    [
        "/home/alice/projects2026/agentzero/config/credentials: [personal] holds a long-term key AKIA…MPLE",
        "/srv/Apps/AgentZero2026/Production/Config/app/env: not a regular file",
        "arn:aws:iam::123456789012:role/service/BedrockAccessRole2026ForAgentZeroProd",
        "arn:aws:sts::123456789012:assumed-role/BedrockAccessRole/credhelperAlice2026LaptopSession",
        "profile bedrock: TokenCode refused; run `credhelper refresh bedrock` with a fresh MFA code",
    ],
)
def test_paths_arns_and_messages_are_not_redacted(line: str) -> None:
    assert redact(line) == line


def test_a_secret_in_a_field_of_no_known_name_is_still_hidden() -> None:
    shown = redact("MY_APP_SIGNING_SECRET=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY and more")
    assert "wJalrXUtnFEMI" not in shown and shown.startswith("MY_APP_SIGNING_SECRET=")


def test_a_bedrock_api_key_is_hidden_by_its_variable_and_by_its_prefix() -> None:
    key = "bedrock-api-key-YmVkcm9jay5hbWF6b25hd3MuY29tLz9BY3Rpb249Q2FsbFdpdGhCZWFyZXJUb2tlbg=="
    for line in (f"AWS_BEARER_TOKEN_BEDROCK={key}", f"wrote {key} to /home/alice/app/.env"):
        shown = redact(line)
        assert "YmVkcm9jay5hbWF6b25hd3Mu" not in shown, shown
    assert "/home/alice/app/.env" in redact(f"wrote {key} to /home/alice/app/.env")
