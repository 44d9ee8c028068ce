"""doctor's findings: the Finding type, its line and JSON record, and the pure decisions the checks
share (clock skew, file modes, the credential variables a shell exports)."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from ..logsetup import redact

OK, WARN, FAIL = "ok", "warn", "fail"
SKEW_WARN_SECONDS, SKEW_FAIL_SECONDS = 60, 300
# What an app reading its `.env` with dotenv would take from the shell instead (dotenv never overrides).
CREDENTIAL_VARIABLES = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_CREDENTIAL_EXPIRATION",
    "AWS_BEARER_TOKEN_BEDROCK",
)


@dataclass(frozen=True)
class Finding:
    profile: str | None
    check: str
    status: str
    detail: str

    def line(self) -> str:
        label = f"{self.profile}: {self.check}" if self.profile else self.check
        return f"{self.status:<4}  {label}  {redact(self.detail)}"

    def record(self) -> dict[str, str | None]:
        return {
            "profile": self.profile,
            "check": self.check,
            "status": self.status,
            "detail": redact(self.detail),
        }


Check = Callable[[], list[Finding]]


# ----- pure decisions -------------------------------------------------------------------------------


def skew_status(skew: float) -> str:
    if abs(skew) > SKEW_FAIL_SECONDS:
        return FAIL
    return WARN if abs(skew) > SKEW_WARN_SECONDS else OK


def skew_detail(skew: float) -> str:
    direction = "behind" if skew > 0 else "ahead of"
    text = f"this clock is {abs(skew):.0f} s {direction} STS's"
    if skew_status(skew) == OK:
        return text
    return text + " (AWS rejects signatures over 300 s off): sync the clock (NTP, `timedatectl set-ntp true`)"


def mode_finding(profile: str | None, check: str, path: Path, mode: int, long_term: bool = False) -> Finding:
    if long_term and mode & 0o077:
        return Finding(
            profile,
            check,
            FAIL,
            f"{path} holds a long-term secret and other users may read or write it (mode {mode:o}): "
            f"chmod 600 {path}",
        )
    if mode & 0o044:
        return Finding(
            profile, check, WARN, f"{path} is readable by other users (mode {mode:o}): chmod 600 {path}"
        )
    return Finding(profile, check, OK, f"{path} mode {mode:o}")


def exported_credentials(environ: Mapping[str, str]) -> list[str]:
    return [name for name in CREDENTIAL_VARIABLES if environ.get(name)]


def report(findings: list[Finding], as_json: bool) -> str:
    if as_json:
        return json.dumps([finding.record() for finding in findings], indent=2)
    return "\n".join(finding.line() for finding in findings)
