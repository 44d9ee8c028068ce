"""Profile validation: each bad value is named with its file, profile and key, and what is allowed."""

from __future__ import annotations

from typing import Any

import pytest

from credhelper.errors import ConfigError
from credhelper.profile import default_session_name, parse_profiles

ROLE = "arn:aws:iam::123456789012:role/BedrockAccessRole"


def parse(**settings: Any) -> Any:
    return parse_profiles(
        {"profiles": {"bedrock": {"role_arn": ROLE, **settings}}}, "cfg.toml", "credhelper-alice"
    )


def test_defaults() -> None:
    profile = parse()["bedrock"]
    assert (profile.duration_seconds, profile.refresh_before_seconds) == (3600, 1200)
    assert profile.role_session_name == "credhelper-alice"
    assert profile.handout_seconds == 1200
    assert not profile.warnings


@pytest.mark.parametrize(
    ("settings", "key", "allowed"),
    [
        ({"role_arn": "arn:aws:iam::123:role/x"}, "role_arn", "12-digit"),
        ({"role_arn": "BedrockAccessRole"}, "role_arn", "arn:aws:iam::"),
        ({"duration_seconds": 899}, "duration_seconds", "900..43200"),
        ({"duration_seconds": 43201}, "duration_seconds", "900..43200"),
        ({"duration_seconds": "3600"}, "duration_seconds", "whole number"),
        ({"refresh_before_seconds": 3600}, "refresh_before_seconds", "less than duration_seconds"),
        ({"role_session_name": "a"}, "role_session_name", "2 to 64"),
        ({"role_session_name": "has space"}, "role_session_name", "2 to 64"),
        ({"role_session_name": "x" * 65}, "role_session_name", "2 to 64"),
        ({"role_session_name": "café"}, "role_session_name", "2 to 64"),
        ({"regoin": "us-east-1"}, "regoin", "allowed keys"),
        ({"region": "mars"}, "region", "us-east-1"),
        ({"env_files": "~/.env"}, "env_files", "list of file paths"),
        ({"on_refresh": "kill -HUP 1"}, "on_refresh", "list of strings"),
        ({"mfa_command": ["ykman"]}, "mfa_command", "mfa_serial"),
        ({"sts_endpoint_url": "sts.amazonaws.com"}, "sts_endpoint_url", "http(s) URL"),
    ],
)
def test_each_invalid_value_names_file_profile_key_and_what_is_allowed(
    settings: dict[str, Any], key: str, allowed: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        parse(**settings)
    message = str(caught.value)
    assert message.startswith(f"cfg.toml: [profiles.bedrock] {key}: ")
    assert allowed in message
    assert "\n" not in message


def test_missing_role_arn_and_missing_profiles() -> None:
    with pytest.raises(ConfigError, match=r"role_arn: is required"):
        parse_profiles({"profiles": {"bedrock": {}}}, "cfg.toml", "x1")
    with pytest.raises(ConfigError, match="no profiles defined"):
        parse_profiles({}, "cfg.toml", "x1")
    with pytest.raises(ConfigError, match="unknown top-level key"):
        parse_profiles({"profile": {}}, "cfg.toml", "x1")


def test_short_sessions_warn_once_and_clamp_the_handout_window() -> None:
    profile = parse(duration_seconds=900, refresh_before_seconds=300)["bedrock"]
    assert profile.handout_seconds == 840  # duration - 60: a 15-minute session can never give 15
    assert len(profile.warnings) == 1 and "under 30 minutes" in profile.warnings[0]
    assert parse(refresh_before_seconds=60)["bedrock"].handout_seconds == 900


def test_fingerprint_follows_role_settings_only() -> None:
    base = parse()["bedrock"]
    assert parse(env_files=["~/x/.env"])["bedrock"].fingerprint == base.fingerprint
    assert parse(duration_seconds=7200)["bedrock"].fingerprint != base.fingerprint
    assert parse(role_arn=ROLE + "2")["bedrock"].fingerprint != base.fingerprint
    assert parse(external_id="abc123")["bedrock"].fingerprint != base.fingerprint


def test_default_session_name_is_valid_for_sts() -> None:
    assert default_session_name("alice", "laptop.example.com") == "credhelper-alice@laptop"
    assert default_session_name("j o/e", "h") == "credhelper-j-o-e@h"
    assert len(default_session_name("u" * 100, "h")) == 64
