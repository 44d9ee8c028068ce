"""STS calls: with iam.py (rotate), the only modules that import botocore. One client per distinct
source, reused."""

from __future__ import annotations

import email.utils
import os
import stat
import threading
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import botocore.session
from botocore.config import Config as BotocoreConfig
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    CredentialRetrievalError,
    EndpointConnectionError,
    NoCredentialsError,
    PartialCredentialsError,
    ProfileNotFound,
    ReadTimeoutError,
    TokenRetrievalError,
)

from .credentials import Credentials
from .endpointurl import shown_url, userinfo_of
from .errors import AwsRefusedError, ConfigError, CredhelperError, StsUnavailableError
from .fileio import file_kind
from .logsetup import register_secret
from .paths import aws_config_path, shared_credentials_path
from .profile import DEFAULT_REGION, Profile

if TYPE_CHECKING:
    from .keystore import LongTermPair

CLIENT_CONFIG = BotocoreConfig(
    retries={"mode": "standard", "total_max_attempts": 4},
    connect_timeout=5,
    read_timeout=15,
    user_agent_extra="credhelper",
)
_model_loaders: dict[Any, Any] = {}
_model_loaders_lock = threading.Lock()


def botocore_session(profile: str | None = None) -> botocore.session.Session:
    """A botocore session reading its service models through one loader per data path in this
    process: botocore reads and parses the models (endpoints, partitions, the service's own) again
    for each new session, ~70 ms of CPU each time."""
    session = botocore.session.Session(profile=profile)
    data_path = session.get_config_variable("data_path")  # what botocore makes its own loader for
    with _model_loaders_lock:
        loader = _model_loaders.get(data_path)
        if loader is None:
            loader = _model_loaders[data_path] = session.get_component("data_loader")
    session.register_component("data_loader", loader)
    return session


THROTTLING = {"Throttling", "ThrottlingException", "RequestLimitExceeded", "TooManyRequestsException"}
EXPIRED = {"ExpiredToken", "ExpiredTokenException", "RequestExpired"}


def _clock_skew(error: ClientError) -> float | None:
    headers = error.response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
    date = headers.get("date")
    if not date:
        return None
    try:
        return email.utils.parsedate_to_datetime(date).timestamp() - time.time()
    except (TypeError, ValueError):
        return None


def translate_client_error(error: ClientError, profile: Profile, action: str) -> CredhelperError:
    code = error.response.get("Error", {}).get("Code", "")
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    source = profile.source_label
    if code == "AccessDenied" and action != "AssumeRole":
        return AwsRefusedError(
            f"profile {profile.name}: AWS denied {action} to {source}: check that its key is active "
            "and that no policy denies the call (`aws sts get-caller-identity` with the same "
            "credentials shows the same answer)"
        )
    if code == "AccessDenied":
        return AwsRefusedError(
            f"profile {profile.name}: AWS denied {action} on {profile.role_arn}: check that the "
            f"role's trust policy names the caller from {source} and that the caller is allowed "
            "sts:AssumeRole on the role"
        )
    if code == "InvalidClientTokenId":
        named = profile.source_profile or profile.source_keyring
        configure = f"aws configure --profile {named}" if profile.source_profile else "aws configure"
        if profile.source_keyring:
            configure = f"credhelper adopt-keys --to-keyring {named} --env-file FILE"
        # GetCallerIdentity checks a key pair itself (adopt-keys): no credhelper profile to name.
        checking_a_pair = named and action == "GetCallerIdentity"
        subject = f"[{named}]" if checking_a_pair else f"profile {profile.name}: {source}"
        return AwsRefusedError(
            f"{subject}: the access key is unknown to AWS or deactivated: create a new access key "
            f"for the IAM user (IAM console) and store it with `{configure}`"
        )
    if code == "SignatureDoesNotMatch":
        skew = _clock_skew(error)
        if skew is not None and abs(skew) > 300:
            return AwsRefusedError(
                f"profile {profile.name}: AWS rejected the request signature and this machine's "
                f"clock is {abs(skew):.0f} s {'behind' if skew > 0 else 'ahead'}: sync the clock (NTP)"
            )
        return AwsRefusedError(
            f"profile {profile.name}: AWS rejected the request signature: the secret key of "
            f"{source} does not match its access key id; put the right pair there"
        )
    if code in EXPIRED:
        return AwsRefusedError(
            f"profile {profile.name}: the credentials of {source} have expired: renew them "
            "(for SSO, `aws sso login`), or check this machine's clock"
        )
    if code in THROTTLING or status >= 500:
        return StsUnavailableError(
            f"profile {profile.name}: STS kept answering {code or status} after retries: "
            "try again in a minute"
        )
    if code == "ValidationError" and "DurationSeconds" in str(error):
        return ConfigError(
            f"profile {profile.name}: duration_seconds {profile.duration_seconds} exceeds the role's "
            "maximum session duration: lower duration_seconds or raise the role's MaxSessionDuration"
        )
    return AwsRefusedError(
        f"profile {profile.name}: {action} failed: {code}: "
        f"{error.response.get('Error', {}).get('Message', '')}".rstrip(": ")
    )


def translate_botocore_error(error: BotoCoreError, profile: Profile, endpoint: str) -> CredhelperError:
    shown = shown_url(endpoint)  # never a password in the URL: this line is printed and recorded
    if isinstance(error, ProfileNotFound):
        for path in (shared_credentials_path(os.environ), aws_config_path(os.environ)):
            kind = _not_a_regular_file(path)
            if kind is not None:  # botocore takes it for no file at all
                return ConfigError(
                    f"profile {profile.name}: {path} is a {kind}, not a regular file, so SDKs read "
                    f"no source_profile {profile.source_profile!r} from it: make it a regular file"
                )
        return ConfigError(
            f"profile {profile.name}: source_profile {profile.source_profile!r} is not in "
            "~/.aws/config or ~/.aws/credentials: add it there, or fix source_profile"
        )
    if isinstance(error, NoCredentialsError):
        return AwsRefusedError(
            f"profile {profile.name}: no source credentials found in {profile.source_label}: "
            "set source_profile to a profile with keys (credhelper adopt-keys can make one)"
        )
    if isinstance(error, PartialCredentialsError):
        return ConfigError(f"profile {profile.name}: {error}: complete the key pair")
    if isinstance(error, CredentialRetrievalError | TokenRetrievalError):
        return AwsRefusedError(f"profile {profile.name}: {profile.source_label} failed: {error}")
    if isinstance(error, EndpointConnectionError | ConnectionClosedError | ReadTimeoutError):
        return StsUnavailableError(
            f"profile {profile.name}: STS at {shown} could not be reached after retries: "
            "check the network, or sts_endpoint_url"
        )
    if "connect" in type(error).__name__.lower() or "timeout" in type(error).__name__.lower():
        return StsUnavailableError(
            f"profile {profile.name}: STS at {shown} could not be reached: {type(error).__name__}"
        )
    text = str(error).replace(endpoint, shown)  # botocore's text may quote the URL
    return CredhelperError(f"profile {profile.name}: STS call failed: {type(error).__name__}: {text}")


def _not_a_regular_file(path: os.PathLike[str]) -> str | None:
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return None
    return None if stat.S_ISREG(mode) else file_kind(mode)


def _credentials_from(response: Mapping[str, Any], assumed_role_arn: str) -> Credentials:
    raw = response["Credentials"]
    return Credentials(
        access_key_id=raw["AccessKeyId"],
        secret_access_key=raw["SecretAccessKey"],
        session_token=raw["SessionToken"],
        expiration=raw["Expiration"].timestamp(),
        issued_at=time.time(),
        assumed_role_arn=assumed_role_arn,
    )


class StsGateway:
    """Holds one botocore session per source profile and one STS client per (source, endpoint).

    The daemon refreshes several profiles at once. A botocore client may be used by many threads,
    a session may not: sessions are only touched, and clients only created, under `_lock`, so
    profiles sharing a source wait for the one client being built instead of building another.
    """

    def __init__(self) -> None:
        self._sessions: dict[str | None, botocore.session.Session] = {}
        self._clients: dict[tuple[Any, ...], Any] = {}
        self._lock = threading.Lock()

    def forget_sources(self) -> None:
        """Drop every session and client, so rotated source keys are read again (calls in flight
        finish on the clients they hold)."""
        with self._lock:
            self._sessions.clear()
            self._clients.clear()

    def _session(self, source_profile: str | None) -> botocore.session.Session:
        if source_profile not in self._sessions:
            session = botocore_session(source_profile)
            self._sessions[source_profile] = session
        return self._sessions[source_profile]

    def endpoint(self, profile: Profile) -> str:
        """The one STS address every call and check uses (the client is given it explicitly, so
        botocore cannot resolve another): resolved when the profile was loaded."""
        return profile.sts_endpoint

    def _client(self, profile: Profile, via: Credentials | None) -> Any:
        with self._lock:
            return self._client_locked(profile, via)

    def _client_locked(self, profile: Profile, via: Credentials | None) -> Any:
        region = profile.region or DEFAULT_REGION
        endpoint = self.endpoint(profile)
        if via is None:
            key: tuple[Any, ...] = ("source", profile.source_profile, region, endpoint)
        else:
            key = ("session", via.access_key_id, region, endpoint)
        if via is None and profile.source_keyring:
            return self._keyring_client(profile)
        client = self._clients.get(key)
        if client is None:
            register_secret(userinfo_of(endpoint))  # botocore's debug log shows the URL
            session = self._session(profile.source_profile)
            extra: dict[str, Any] = {}
            if via is not None:
                extra = {
                    "aws_access_key_id": via.access_key_id,
                    "aws_secret_access_key": via.secret_access_key,
                    "aws_session_token": via.session_token,
                }
                # Old MFA-session clients are never reused once their session is replaced.
                for stale in [k for k in self._clients if k[0] == "session" and k[2:] == key[2:]]:
                    del self._clients[stale]
            client = session.create_client(
                "sts", region_name=region, endpoint_url=endpoint, config=CLIENT_CONFIG, **extra
            )
            self._clients[key] = client
        return client

    def _keyring_client(self, profile: Profile) -> Any:
        """A client holding the pair the profile's keyring entry holds now: read for this call and
        never cached, so the long-term secret is in memory no longer than the call."""
        from .keystore import read_pair

        assert profile.source_keyring is not None
        return pair_client(profile, read_pair(profile.source_keyring), self._session(None))

    def _call(self, profile: Profile, action: str, via: Credentials | None, **params: Any) -> Any:
        try:
            return getattr(self._client(profile, via), action)(**params)
        except ClientError as error:
            api_name = "".join(part.title() for part in action.split("_"))
            raise translate_client_error(error, profile, api_name) from error
        except BotoCoreError as error:
            raise translate_botocore_error(error, profile, self.endpoint(profile)) from error

    def assume_role(self, profile: Profile, via: Credentials | None = None) -> Credentials:
        params: dict[str, Any] = {
            "RoleArn": profile.role_arn,
            "RoleSessionName": profile.role_session_name,
            "DurationSeconds": profile.duration_seconds,
        }
        if profile.external_id:
            params["ExternalId"] = profile.external_id
        response = self._call(profile, "assume_role", via, **params)
        return _credentials_from(response, response["AssumedRoleUser"]["Arn"])

    def get_session_token(self, profile: Profile, code: str) -> Credentials:
        response = self._call(
            profile,
            "get_session_token",
            None,
            DurationSeconds=profile.mfa_session_seconds,
            SerialNumber=profile.mfa_serial,
            TokenCode=code,
        )
        return _credentials_from(response, "")

    def caller_arn(self, profile: Profile) -> str:
        return str(self._call(profile, "get_caller_identity", None)["Arn"])


def pair_client(profile: Profile, pair: LongTermPair, session: botocore.session.Session | None = None) -> Any:
    """An STS client signed by a long-term `pair` at the profile's endpoint, made for the call at
    hand and never kept (a keyring source's calls; rotate's check of a new key)."""
    register_secret(userinfo_of(profile.sts_endpoint))
    return (session or botocore_session()).create_client(
        "sts",
        region_name=profile.region or DEFAULT_REGION,
        endpoint_url=profile.sts_endpoint,
        config=CLIENT_CONFIG,
        aws_access_key_id=pair.access_key_id,
        aws_secret_access_key=pair.secret_access_key,
    )
