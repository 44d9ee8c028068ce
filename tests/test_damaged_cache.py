"""A damaged cache or state file is ignored and replaced by every command, the fast path included:
never a traceback, never an impossible expiry handed out."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from tests.conftest import UserHome
from tests.helpers import assert_no_secret, cached_record, refreshed
from tests.stsproxy import Fault

TWO_DAYS = 2 * 86400


def damage_cache(home: UserHome, **record_changes: Any) -> str:
    """A cached entry of the right settings with some values replaced; returns its key id."""
    path = home.cache_dir / "bedrock.json"
    data = json.loads(path.read_text())
    data["credentials"].update(record_changes)
    path.write_text(json.dumps(data))  # json writes inf and nan as Infinity and NaN
    return str(data["credentials"]["AccessKeyId"])


def expiry_of(answer: str) -> float:
    return time.mktime(time.strptime(json.loads(answer)["Expiration"], "%Y-%m-%dT%H:%M:%SZ")) - time.timezone


@pytest.mark.parametrize(
    "expiration",
    [float("inf"), float("nan"), 1e20, 1e12, 10**400, -5, True, "2099-01-01", None],
    ids=["Infinity", "NaN", "1e20", "1e12", "10**400", "negative", "true", "text", "null"],
)
def test_credential_process_replaces_an_impossible_expiry(home: UserHome, expiration: object) -> None:
    refreshed(home)  # a cached entry to damage
    damaged_key = damage_cache(home, Expiration=expiration)

    result = home.run("credential-process", "bedrock")

    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert json.loads(result.stdout)["AccessKeyId"] != damaged_key
    assert time.time() < expiry_of(result.stdout) < time.time() + TWO_DAYS
    record = cached_record(home)
    assert record["AccessKeyId"] == json.loads(result.stdout)["AccessKeyId"]  # the entry was replaced
    assert_no_secret(home, result.stderr)


@pytest.mark.parametrize(
    "damage",
    [
        b"{not json",
        b"[1, 2]",
        b"[" * 100_000,
        b'{"format": "credhelper-cache/1", "credentials": 5}',
        b"\xff\xfe",
    ],
    ids=["bad-json", "a-list", "deep-nesting", "wrong-type", "not-utf8"],
)
def test_an_unreadable_cache_file_is_replaced(home: UserHome, damage: bytes) -> None:
    home.cache_dir.mkdir(parents=True, mode=0o700)
    (home.cache_dir / "bedrock.json").write_bytes(damage)
    result = home.run("credential-process", "bedrock")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["AccessKeyId"] == cached_record(home)["AccessKeyId"]


DAMAGED_STATES = [
    {"last_refresh": "yesterday"},
    {"last_refresh": float("inf")},
    {"last_refresh": 1e12},
    {"last_error_at": float("nan"), "last_error": 42},
    {"attempts": "three"},
    {"attempts": 2.5e300},
    {"next_refresh": True},
    {"mfa_needed": "no", "role_arn": ["x"]},
]


def damage_state(home: UserHome, fields: dict[str, Any]) -> None:
    home.cache_dir.mkdir(parents=True, mode=0o700, exist_ok=True)
    state = {"format": "credhelper-state/1", **fields}
    (home.cache_dir / "bedrock.state.json").write_text(json.dumps(state))


@pytest.mark.parametrize("fields", DAMAGED_STATES, ids=repr)
def test_status_reads_past_a_damaged_state_file(home: UserHome, fields: dict[str, Any]) -> None:
    refreshed(home)
    damage_state(home, fields)
    result = home.run("status")
    assert result.returncode == 0, result.stderr
    assert "bedrock: valid" in result.stdout
    assert result.stderr == ""


@pytest.mark.parametrize("fields", DAMAGED_STATES, ids=repr)
def test_a_failed_refresh_reports_the_sts_error_over_a_damaged_state_file(
    home: UserHome, fields: dict[str, Any]
) -> None:
    damage_state(home, fields)
    home.proxy.add_fault(Fault("code", action="AssumeRole", code="AccessDenied", status=403))
    result = home.run("refresh")
    assert result.returncode == 77, result.stderr
    assert "AWS denied AssumeRole" in result.stderr and "internal error" not in result.stderr
    state = json.loads((home.cache_dir / "bedrock.state.json").read_text())
    assert state["attempts"] == 1
