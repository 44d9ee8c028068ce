"""The credential value type: expiry arithmetic and the shapes it is handed out in. Pure."""

from __future__ import annotations

import json
import re
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import Any


# No STS session outlives this (GetSessionToken: 36 h); a cached expiry beyond it is damage.
LONGEST_SESSION_SECONDS = 2 * 86400


def format_utc(epoch: float) -> str:
    """RFC 3339 UTC with a Z, to the second: what credential_process and the ECS contract expect."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


_KEY_ID = re.compile(r"[A-Z0-9]{16,128}")


def mask_key_id(key_id: str) -> str:
    """ASIA…WXYZ: enough to tell keys apart, not enough to use one. Anything that is not a key id
    (upper-case letters and digits only) shows nothing: its ends may be part of a secret."""
    if not _KEY_ID.fullmatch(key_id):
        return "…"
    return f"{key_id[:4]}…{key_id[-4:]}"


def is_long_term_key_id(key_id: str) -> bool:
    return key_id.startswith("AKIA")


class Credentials:
    """One credential set from STS. Its repr never shows the secret or the token."""

    __slots__ = (
        "access_key_id",
        "assumed_role_arn",
        "expiration",
        "issued_at",
        "secret_access_key",
        "session_token",
    )

    def __init__(
        self,
        access_key_id: str,
        secret_access_key: str,
        session_token: str,
        expiration: float,  # epoch seconds, UTC
        issued_at: float = 0.0,
        assumed_role_arn: str = "",
    ) -> None:
        self.access_key_id = access_key_id
        self.secret_access_key = secret_access_key
        self.session_token = session_token
        self.expiration = expiration
        self.issued_at = issued_at
        self.assumed_role_arn = assumed_role_arn

    def __repr__(self) -> str:
        return f"Credentials({mask_key_id(self.access_key_id)}, expires {self.expiration_text})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Credentials) and self.to_record() == other.to_record()

    __hash__ = None  # type: ignore[assignment]

    def seconds_left(self, now: float) -> float:
        return self.expiration - now

    def is_expired(self, now: float) -> bool:
        return self.expiration <= now

    @property
    def expiration_text(self) -> str:
        return format_utc(self.expiration)

    def process_json(self) -> str:
        return json.dumps(
            {
                "Version": 1,
                "AccessKeyId": self.access_key_id,
                "SecretAccessKey": self.secret_access_key,
                "SessionToken": self.session_token,
                "Expiration": self.expiration_text,
            }
        )

    def sts_json(self) -> str:
        """STS's own shape (`{"Credentials": {...}}`), which some agent tools ask a command for."""
        return json.dumps(
            {
                "Credentials": {
                    "AccessKeyId": self.access_key_id,
                    "SecretAccessKey": self.secret_access_key,
                    "SessionToken": self.session_token,
                    "Expiration": self.expiration_text,
                }
            }
        )

    def container_json(self) -> str:
        return json.dumps(
            {
                "AccessKeyId": self.access_key_id,
                "SecretAccessKey": self.secret_access_key,
                "Token": self.session_token,
                "Expiration": self.expiration_text,
            }
        )

    def env_values(self, region: str | None) -> dict[str, str]:
        values = {
            "AWS_ACCESS_KEY_ID": self.access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.secret_access_key,
            "AWS_SESSION_TOKEN": self.session_token,
            "AWS_CREDENTIAL_EXPIRATION": self.expiration_text,
        }
        if region:
            values["AWS_REGION"] = region
        return values

    def credentials_file_values(self) -> dict[str, str]:
        return {
            "aws_access_key_id": self.access_key_id,
            "aws_secret_access_key": self.secret_access_key,
            "aws_session_token": self.session_token,
        }

    def to_record(self) -> dict[str, Any]:
        return {
            "AccessKeyId": self.access_key_id,
            "SecretAccessKey": self.secret_access_key,
            "SessionToken": self.session_token,
            "Expiration": self.expiration,
            "IssuedAt": self.issued_at,
            "AssumedRoleArn": self.assumed_role_arn,
        }

    @classmethod
    def from_record(cls, record: dict[str, Any], now: float) -> Credentials:
        """Raises KeyError, TypeError or ValueError on anything that is not a whole, possible record:
        a missing or empty value, a wrong type, a time that is not finite or lies beyond any session."""
        values = (record["AccessKeyId"], record["SecretAccessKey"], record["SessionToken"])
        if not all(isinstance(v, str) and v for v in values):
            raise ValueError("incomplete credentials")
        latest = now + LONGEST_SESSION_SECONDS
        expiration = plausible_epoch(record["Expiration"], latest)
        if expiration <= 0:
            raise ValueError("impossible expiration")
        arn = record.get("AssumedRoleArn", "")
        if not isinstance(arn, str):
            raise TypeError("AssumedRoleArn is not text")
        return cls(
            access_key_id=values[0],
            secret_access_key=values[1],
            session_token=values[2],
            expiration=expiration,
            issued_at=plausible_epoch(record.get("IssuedAt", 0.0), latest),
            assumed_role_arn=arn,
        )


def plausible_epoch(value: object, latest: float) -> float:
    """`value` as epoch seconds if it is a real number from 1970 to `latest`; else ValueError."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError("not a number")
    if not 0 <= value <= latest:  # NaN fails every comparison
        raise ValueError("impossible time")
    return float(value)
