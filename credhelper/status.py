"""What `credhelper status` reports, from the cache and state files alone (no STS call)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .bedrockkey import TOKEN_VARIABLE, bedrock_key_id
from .cache import Cache
from .credentials import Credentials, format_utc, mask_key_id
from .delivery import credentials_targets, env_targets
from .envfile import managed_values
from .fileio import read_bytes_or_none
from .profile import Profile
from .sharedcreds import read_sections


def target_state(path_text: str, credentials: Credentials | None) -> str:
    data = read_bytes_or_none(Path(path_text))
    if data is None:
        return "missing"
    key_ids = managed_values(data.decode("utf-8", "replace")).get("AWS_ACCESS_KEY_ID", [])
    if credentials is not None and key_ids and all(k == credentials.access_key_id for k in key_ids):
        return "current"
    return "stale"


def bedrock_key_state(path: Path, credentials: Credentials | None) -> str:
    """Whether the target's AWS_BEARER_TOKEN_BEDROCK was made from the current session."""
    data = read_bytes_or_none(path)
    tokens = managed_values(data.decode("utf-8", "replace"), (TOKEN_VARIABLE,)) if data is not None else {}
    key_ids = [bedrock_key_id(token) for token in tokens.get(TOKEN_VARIABLE, [])]
    if not key_ids:
        return "missing"
    if credentials is not None and all(k == credentials.access_key_id for k in key_ids):
        return "current"
    return "stale"


def section_state(path: Path, section: str, credentials: Credentials | None) -> str:
    data = read_bytes_or_none(path)
    held = read_sections(data.decode("utf-8", "replace")).get(section) if data is not None else None
    if held is None:
        return "missing"
    if credentials is not None and held.get("aws_access_key_id") == credentials.access_key_id:
        return "current"
    return "stale"


def profile_status(profile: Profile, cache: Cache, now: float) -> dict[str, Any]:
    credentials = cache.read_credentials(profile.name, profile.fingerprint)
    state = cache.read_state(profile.name)
    if credentials is None:
        condition = "missing"
    elif credentials.is_expired(now):
        condition = "expired"
    elif credentials.seconds_left(now) < profile.refresh_before_seconds:
        condition = "expiring"
    else:
        condition = "valid"
    next_refresh = state.get("next_refresh")
    if next_refresh is None and credentials is not None:
        next_refresh = credentials.expiration - profile.refresh_before_seconds
    return {
        "profile": profile.name,
        "condition": condition,
        "role_arn": profile.role_arn,
        "assumed_role_arn": credentials.assumed_role_arn if credentials else None,
        "access_key_id": mask_key_id(credentials.access_key_id) if credentials else None,
        "expiration": credentials.expiration_text if credentials else None,
        "seconds_left": max(0, int(credentials.seconds_left(now))) if credentials else 0,
        "last_refresh": format_utc(state["last_refresh"]) if state.get("last_refresh") else None,
        "next_refresh": format_utc(next_refresh) if next_refresh else None,
        "last_error": state.get("last_error"),
        "attempts": int(state.get("attempts", 0)),
        "mfa_code_needed": bool(state.get("mfa_needed", False)),
        "targets": [
            {"path": str(target.path), "state": target_state(str(target.path), credentials)}
            | (
                {"bedrock_api_key": bedrock_key_state(target.path, credentials)}
                if profile.bedrock_api_key
                else {}
            )
            for target in env_targets(profile)
        ]
        + [
            {"path": f"{path} [{section}]", "state": section_state(path, section, credentials)}
            for path, section in credentials_targets(profile)
        ],
    }


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h{rest // 60:02d}m" if hours else f"{rest // 60}m{rest % 60:02d}s"


def _target_line(target: dict[str, str]) -> str:
    bedrock = f"; Bedrock API key {target['bedrock_api_key']}" if "bedrock_api_key" in target else ""
    return f"{target['path']} ({target['state']}{bedrock})"


def format_status(report: dict[str, Any]) -> str:
    lines = [
        f"{report['profile']}: {report['condition']}"
        + (f", {_duration(report['seconds_left'])} left" if report["seconds_left"] else "")
    ]
    rows = [
        ("role", report["role_arn"]),
        ("identity", report["assumed_role_arn"]),
        ("access key", report["access_key_id"]),
        ("expires", report["expiration"]),
        ("last refresh", report["last_refresh"]),
        ("next refresh", report["next_refresh"]),
        ("last error", report["last_error"]),
    ]
    if report["mfa_code_needed"]:
        rows.append(("mfa", f"a code is needed: run `credhelper refresh {report['profile']}`"))
    rows += [("target", _target_line(t)) for t in report["targets"]]
    lines += [f"  {label:<13}{value if value is not None else '-'}" for label, value in rows]
    return "\n".join(lines)
