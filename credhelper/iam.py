"""IAM calls for `rotate` (DESIGN section 13), and the GetCallerIdentity that proves a new pair:
beside `sts.py`, the other botocore user. Every botocore error becomes one of credhelper's.

The client signs with what it is given (the long-term pair stored now, or the MFA session made
from it) and is made for one rotation, never kept: the long-term secret is in memory no longer
than the command. IAM's address: the profile's `iam_endpoint_url`, else botocore's own
resolution (`AWS_ENDPOINT_URL_IAM`, `AWS_ENDPOINT_URL`, then AWS's global endpoint).
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass
from typing import Any

import botocore.session
from botocore.exceptions import BotoCoreError, ClientError

from .credentials import mask_key_id
from .endpointurl import shown_url, userinfo_of
from .errors import AwsRefusedError, ConfigError, CredhelperError, StsUnavailableError
from .keystore import LongTermPair
from .logsetup import register_secret
from .profile import DEFAULT_REGION, Profile
from .rotation import IamKey
from .sts import CLIENT_CONFIG, THROTTLING, botocore_session, pair_client

PERMISSIONS_FIX = (
    "allow the IAM user iam:ListAccessKeys, iam:CreateAccessKey, iam:DeleteAccessKey and "
    "iam:UpdateAccessKey on itself (docs/rotation.md has the policy)"
)
AWS_HOSTS = (".amazonaws.com", ".amazonaws.com.cn", ".api.aws")


@dataclass(frozen=True)
class Signer:
    """What the IAM calls are signed with: a long-term pair, or an MFA session (with its token)."""

    access_key_id: str
    secret_access_key: str
    session_token: str | None = None

    def __repr__(self) -> str:
        return f"Signer({mask_key_id(self.access_key_id)})"


@dataclass(frozen=True)
class NewKey:
    pair: LongTermPair
    created: float


def is_aws_endpoint(url: str) -> bool:
    host = urllib.parse.urlparse(url).hostname or ""
    return host.endswith(AWS_HOSTS)


def _session() -> botocore.session.Session:
    return botocore_session()  # no profile's credentials: the signer is given explicitly


class IamGateway:
    def __init__(self, profile: Profile, signer: Signer) -> None:
        self.profile = profile
        self.signer_label = (
            f"the MFA session of profile {profile.name}"
            if signer.session_token
            else f"{profile.source_label}'s key"
        )
        if signer.session_token:  # an MFA session: temporary, like the sessions refresh registers
            register_secret(signer.secret_access_key, signer.session_token)
        # A long-term secret is not registered: the redaction list lives as long as the process,
        # and the key must not (DESIGN section 13). botocore's debug log shows it only inside
        # <SecretAccessKey> elements and key=value fields, which the log filter redacts by name.
        if profile.iam_endpoint_url:
            register_secret(userinfo_of(profile.iam_endpoint_url))
        try:
            self._client: Any = _session().create_client(
                "iam",
                region_name=profile.region or DEFAULT_REGION,
                endpoint_url=profile.iam_endpoint_url,
                config=CLIENT_CONFIG,
                aws_access_key_id=signer.access_key_id,
                aws_secret_access_key=signer.secret_access_key,
                aws_session_token=signer.session_token,
            )
        except BotoCoreError as error:
            raise ConfigError(f"profile {profile.name}: no IAM client can be made: {error}") from error
        self.endpoint = str(self._client.meta.endpoint_url)
        register_secret(userinfo_of(self.endpoint))

    @property
    def shown_endpoint(self) -> str:
        return shown_url(self.endpoint)

    def _call(self, action: str, **params: Any) -> Any:
        try:
            return getattr(self._client, action)(**params)
        except ClientError as error:
            raise self._translated(error, action) from error
        except BotoCoreError as error:
            raise StsUnavailableError(
                f"profile {self.profile.name}: IAM at {self.shown_endpoint} could not be reached "
                f"({type(error).__name__}): check the network, or iam_endpoint_url"
            ) from error

    def _translated(self, error: ClientError, action: str) -> CredhelperError:
        code = error.response.get("Error", {}).get("Code", "")
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        api = "iam:" + "".join(part.title() for part in action.split("_"))
        name = self.profile.name
        if code in ("AccessDenied", "AccessDeniedException"):
            return AwsRefusedError(f"profile {name}: AWS denied {api}: {PERMISSIONS_FIX}")
        if code in ("InvalidClientTokenId", "SignatureDoesNotMatch"):
            return AwsRefusedError(
                f"profile {name}: IAM refused {self.signer_label} ({code}): the key is unknown, "
                "deactivated or its secret is wrong (or the session expired); store a working pair first"
            )
        if code in THROTTLING or status >= 500:
            return StsUnavailableError(
                f"profile {name}: IAM at {self.shown_endpoint} kept answering {code or status} to "
                f"{api} after retries: try again in a minute"
            )
        message = error.response.get("Error", {}).get("Message", "")
        return AwsRefusedError(f"profile {name}: {api} failed: {code}: {message}".rstrip(": "))

    def list_keys(self) -> tuple[str, list[IamKey]]:
        """The user's name and its access keys."""
        response = self._call("list_access_keys")
        keys = [
            IamKey(item["AccessKeyId"], item.get("Status") == "Active", item["CreateDate"].timestamp())
            for item in response.get("AccessKeyMetadata", [])
        ]
        return str(response.get("UserName", "")), keys

    def create_key(self) -> NewKey:
        """A new access key for the caller itself (no UserName)."""
        made = self._call("create_access_key")["AccessKey"]
        return NewKey(
            LongTermPair(made["AccessKeyId"], made["SecretAccessKey"]), made["CreateDate"].timestamp()
        )

    def delete_key(self, key_id: str) -> bool:
        """False when IAM had no such key any more (deleted already)."""
        try:
            self._call("delete_access_key", AccessKeyId=key_id)
        except AwsRefusedError as refused:
            if isinstance(refused.__cause__, ClientError) and _code(refused.__cause__) == "NoSuchEntity":
                return False
            raise
        return True

    def deactivate_key(self, key_id: str) -> None:
        self._call("update_access_key", AccessKeyId=key_id, Status="Inactive")


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def caller_of_pair(profile: Profile, pair: LongTermPair) -> str:
    """GetCallerIdentity signed with `pair`, at the profile's STS endpoint: the caller's ARN, or
    AwsRefusedError (the key is not known to AWS yet, or not at all) or StsUnavailableError."""
    client = pair_client(profile, pair)
    try:
        return str(client.get_caller_identity()["Arn"])
    except ClientError as error:
        code = _code(error)
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        if code in THROTTLING or status >= 500:
            raise StsUnavailableError(
                f"profile {profile.name}: STS kept answering {code or status} to GetCallerIdentity"
            ) from error
        raise AwsRefusedError(
            f"profile {profile.name}: STS refused the new key {mask_key_id(pair.access_key_id)} ({code})"
        ) from error
    except BotoCoreError as error:
        raise StsUnavailableError(
            f"profile {profile.name}: STS at {shown_url(profile.sts_endpoint)} could not be reached "
            f"({type(error).__name__})"
        ) from error
