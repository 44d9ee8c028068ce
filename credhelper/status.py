"""What `credhelper status` reports, from the cache and state files alone (no STS call)."""

from __future__ import annotations

from typing import Any

from .cache import Cache
from .credentials import Credentials, format_utc, mask_key_id
from .errors import CredhelperError
from .interfaces import Target
from .keystore import KeyringCondition, keyring_condition
from .profile import Profile
from .targets.envfile import EnvFileTarget
from .targets.files import read_target, target_state
from .targets.registry import profile_targets


def bedrock_key_state(target: Target, credentials: Credentials | None) -> dict[str, str]:
    """For an env target whose profile enables the key: whether the target's Bedrock API key
    belongs to the current session; without the setting, only a stale short-term key is shown.
    Nothing for any other target."""
    if not isinstance(target, EnvFileTarget):
        return {}
    try:
        found = read_target(target)
    except CredhelperError:
        return {"bedrock_api_key": "refused"} if target.bedrock_api_key else {}  # its state says why
    state = target.bedrock_state(found.text if found else None, credentials)
    return {} if state == "none" else {"bedrock_api_key": state}


def status_reports(profiles: list[Profile], cache: Cache, now: float) -> list[dict[str, Any]]:
    """One report per profile; the keyring, when a profile's source key lives there, is looked at
    once (whether it answers and is unlocked: no entry read, no prompt)."""
    keyring = keyring_condition() if any(p.source_keyring for p in profiles) else None
    return [profile_status(p, cache, now, keyring) for p in profiles]


def profile_status(
    profile: Profile, cache: Cache, now: float, keyring: KeyringCondition | None = None
) -> dict[str, Any]:
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
    source = {"keyring": keyring.state} if keyring is not None and profile.source_keyring else {}
    return source | {
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
        **source_key_age(state, now),
        "targets": [
            {"path": target.label, "state": target_state(target, credentials)}
            | bedrock_key_state(target, credentials)
            for target in profile_targets(profile)
        ],
    }


def source_key_age(state: dict[str, Any], now: float) -> dict[str, Any]:
    """The long-term source key's id (masked) and age as rotate last recorded them (its
    CreateDate from IAM); None when rotate has not run."""
    created = state.get("source_key_created")
    return {
        "source_key_id": state.get("source_key_id") if created is not None else None,
        "source_key_created": format_utc(created) if created is not None else None,
        "source_key_age_days": int(max(0.0, now - created) // 86400) if created is not None else None,
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
    if report.get("keyring") and report["keyring"] != "unlocked":
        fix = (
            "unlock it; the daemon tries again within a minute"
            if report["keyring"] == "locked"
            else ("no keyring answers: see `credhelper doctor`")
        )
        rows.append(("keyring", f"{report['keyring']}: {fix}"))
    if report.get("source_key_created"):
        rows.append(
            (
                "source key",
                f"{report['source_key_id'] or '-'} created {report['source_key_created']} "
                f"({report['source_key_age_days']} days ago)",
            )
        )
    if report["mfa_code_needed"]:
        rows.append(("mfa", f"a code is needed: run `credhelper refresh {report['profile']}`"))
    rows += [("target", _target_line(t)) for t in report["targets"]]
    lines += [f"  {label:<13}{value if value is not None else '-'}" for label, value in rows]
    return "\n".join(lines)
