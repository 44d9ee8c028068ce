"""The profile model and its validation. Pure: the caller reads files and the environment."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import Any

from .endpointurl import ENDPOINT_URL, configured_urls_ignored, shown_url
from .errors import ConfigError
from .settings import PROFILE_NAME, SettingsChecker
from .windows import SHORT_SESSION_SECONDS, handout_seconds

ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}\Z", re.ASCII)
MFA_SERIAL = re.compile(r"^(arn:aws[a-z-]*:iam::\d{12}:mfa/[\w+=,.@/-]+|GAHT[0-9A-Z]{8,})\Z")
SESSION_NAME = re.compile(r"^[\w+=,.@-]{2,64}\Z", re.ASCII)
REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d\Z")
MIN_DURATION, MAX_DURATION = 900, 43200
DEFAULT_DURATION = 3600
DEFAULT_REFRESH_BEFORE = 1200
MIN_REFRESH_BEFORE = 60  # less would let credentials expire between a refresh and its retry
DEFAULT_MFA_SESSION_SECONDS = 43200

PROFILE_KEYS = frozenset(
    {
        "role_arn",
        "source_profile",
        "source_keyring",
        "region",
        "duration_seconds",
        "refresh_before_seconds",
        "role_session_name",
        "external_id",
        "mfa_serial",
        "mfa_command",
        "mfa_session_seconds",
        "sts_endpoint_url",
        "env_files",
        "credentials_files",
        "on_refresh",
        "bedrock_api_key",
        "iam_endpoint_url",
        "rotate_after_days",
    }
)
MAX_ROTATE_AFTER_DAYS = 3650
DEFAULT_SERVE = "127.0.0.1:9911"
DEFAULT_REGION = "us-east-1"
NO_ENVIRONMENT: Mapping[str, str] = {}


def resolve_sts_endpoint(configured: str | None, region: str | None, environ: Mapping[str, str]) -> str:
    """The one STS address every call and check of a profile uses, and its credentials are cached
    for: the profile's `sts_endpoint_url`, then the variables botocore honours (unless
    AWS_IGNORE_CONFIGURED_ENDPOINT_URLS says to ignore them, as botocore does), then the region's.
    `sts_endpoint_url` is credhelper's explicit setting, like botocore's `endpoint_url` argument,
    which that variable does not touch either."""
    honoured: Mapping[str, str] = NO_ENVIRONMENT if configured_urls_ignored(environ) else environ
    return (
        configured
        or honoured.get("AWS_ENDPOINT_URL_STS")
        or honoured.get("AWS_ENDPOINT_URL")
        or f"https://sts.{region or DEFAULT_REGION}.amazonaws.com"
    )


class Profile:
    """One `[profiles.NAME]` table, validated. A plain class: the credential-process hot path
    builds one, and dataclasses would cost it an import of `inspect`."""

    __slots__ = (
        "bedrock_api_key",
        "credentials_files",
        "duration_seconds",
        "env_files",
        "external_id",
        "iam_endpoint_url",
        "mfa_command",
        "mfa_serial",
        "mfa_session_seconds",
        "name",
        "on_refresh",
        "refresh_before_seconds",
        "region",
        "role_arn",
        "role_session_name",
        "rotate_after_days",
        "source_keyring",
        "source_profile",
        "sts_endpoint",
        "sts_endpoint_url",
        "warnings",
    )

    def __init__(
        self,
        name: str,
        role_arn: str,
        role_session_name: str,
        source_profile: str | None = None,
        region: str | None = None,
        duration_seconds: int = DEFAULT_DURATION,
        refresh_before_seconds: int = DEFAULT_REFRESH_BEFORE,
        external_id: str | None = None,
        mfa_serial: str | None = None,
        mfa_command: tuple[str, ...] = (),
        mfa_session_seconds: int = DEFAULT_MFA_SESSION_SECONDS,
        sts_endpoint_url: str | None = None,
        env_files: tuple[str, ...] = (),
        credentials_files: tuple[tuple[str, str], ...] = (),
        on_refresh: tuple[str, ...] = (),
        warnings: tuple[str, ...] = (),
        bedrock_api_key: bool = False,
        sts_endpoint: str | None = None,
        source_keyring: str | None = None,
        iam_endpoint_url: str | None = None,
        rotate_after_days: int | None = None,
    ) -> None:
        self.name = name
        self.role_arn = role_arn
        self.role_session_name = role_session_name
        self.source_profile = source_profile
        self.region = region
        self.duration_seconds = duration_seconds
        self.refresh_before_seconds = refresh_before_seconds
        self.external_id = external_id
        self.mfa_serial = mfa_serial
        self.mfa_command = mfa_command
        self.mfa_session_seconds = mfa_session_seconds
        self.sts_endpoint_url = sts_endpoint_url
        self.env_files = env_files
        self.credentials_files = credentials_files
        self.on_refresh = on_refresh
        self.warnings = warnings
        self.bedrock_api_key = bedrock_api_key
        self.source_keyring = source_keyring
        self.iam_endpoint_url = iam_endpoint_url
        self.rotate_after_days = rotate_after_days
        # Resolved once, where the configuration is loaded, from that process's environment.
        self.sts_endpoint = sts_endpoint or resolve_sts_endpoint(sts_endpoint_url, region, NO_ENVIRONMENT)

    def __repr__(self) -> str:
        return f"Profile({self.name!r}, {self.role_arn!r})"

    def _settings(self) -> tuple[object, ...]:
        return tuple(getattr(self, slot) for slot in self.__slots__ if slot != "warnings")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Profile) and self._settings() == other._settings()

    def __hash__(self) -> int:
        return hash(self._settings())

    @property
    def handout_seconds(self) -> int:
        """Credentials handed to an SDK keep at least this long (windows.py)."""
        return handout_seconds(self.refresh_before_seconds, self.duration_seconds)

    @property
    def fingerprint(self) -> str:
        """Changes whenever a setting that shapes the issued session changes: the cache key.
        The settings themselves, as JSON: nothing in them is secret. (bedrock_api_key is not one:
        the key is made from whichever session is cached.)"""
        settings = [
            self.role_arn,
            self.role_session_name,
            self.source_profile,
            self.region,
            self.duration_seconds,
            self.external_id,
            self.mfa_serial,
            self.sts_endpoint,
        ]
        return json.dumps(settings + self._keyring_source())

    @property
    def mfa_fingerprint(self) -> str:
        settings = [self.source_profile, self.mfa_serial, self.region, self.sts_endpoint]
        return json.dumps(settings + self._keyring_source())

    def _keyring_source(self) -> list[str]:
        """The keyring entry a profile's source key is read from, when it is one; absent otherwise,
        so that the fingerprints of every other profile stay those already cached."""
        return ["keyring", self.source_keyring] if self.source_keyring else []

    @property
    def source_label(self) -> str:
        """Where the long-term key the profile starts from is read, as messages name it."""
        if self.source_keyring:
            return f"keyring entry {self.source_keyring!r} (service credhelper)"
        if self.source_profile:
            return f"source profile {self.source_profile!r}"
        return "the default credential chain"


def default_session_name(user: str, host: str) -> str:
    raw = f"credhelper-{user}@{host.split('.')[0]}"
    cleaned = re.sub(r"[^\w+=,.@-]", "-", raw, flags=re.ASCII)[:64]
    return cleaned if len(cleaned) >= 2 else "credhelper"


def parse_profile(
    name: str, raw: Any, source: str, session_name: str, environ: Mapping[str, str] = NO_ENVIRONMENT
) -> Profile:
    if not PROFILE_NAME.match(name):
        raise ConfigError(
            f"{source}: profile name {name!r} is not valid; use letters, digits, '.', '_' or '-'"
        )
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{source}: [profiles.{name}] must be a table of settings")
    check = SettingsChecker(source, name, raw)
    unknown = sorted(set(raw) - PROFILE_KEYS)
    if unknown:
        raise check.fail(unknown[0], f"unknown key; allowed keys: {', '.join(sorted(PROFILE_KEYS))}")
    role_arn = check.string("role_arn", ROLE_ARN, "expected arn:aws:iam::<12-digit account>:role/<name>")
    if role_arn is None:
        raise check.fail("role_arn", "is required, e.g. arn:aws:iam::123456789012:role/BedrockAccessRole")
    duration = check.integer("duration_seconds", DEFAULT_DURATION, MIN_DURATION, MAX_DURATION)
    refresh_before = check.integer(
        "refresh_before_seconds", DEFAULT_REFRESH_BEFORE, MIN_REFRESH_BEFORE, MAX_DURATION
    )
    if refresh_before >= duration:
        raise check.fail(
            "refresh_before_seconds",
            f"{refresh_before} must be less than duration_seconds ({duration})",
        )
    mfa_serial = check.string(
        "mfa_serial", MFA_SERIAL, "expected arn:aws:iam::<account>:mfa/<name> or a hardware serial"
    )
    mfa_command = check.argv("mfa_command")
    if mfa_command and not mfa_serial:
        raise check.fail("mfa_command", "is set but mfa_serial is not; set mfa_serial too")
    endpoint = check.string("sts_endpoint_url")
    if endpoint is not None and not ENDPOINT_URL.match(endpoint):
        raise check.fail("sts_endpoint_url", f"{shown_url(endpoint)!r} is not an http(s) URL")
    region = check.string("region", REGION, "expected a region name such as us-east-1")
    source_profile = check.string("source_profile")
    source_keyring = check.string(
        "source_keyring", PROFILE_NAME, "use letters, digits, '.', '_' or '-' (the keyring entry's name)"
    )
    if source_profile and source_keyring:
        raise check.fail(
            "source_keyring", "and source_profile are both set; keep the one the long-term key is read from"
        )
    iam_endpoint = check.string("iam_endpoint_url")
    if iam_endpoint is not None and not ENDPOINT_URL.match(iam_endpoint):
        raise check.fail("iam_endpoint_url", f"{shown_url(iam_endpoint)!r} is not an http(s) URL")
    rotate_after_days = (
        check.integer("rotate_after_days", 0, 1, MAX_ROTATE_AFTER_DAYS, "days")
        if "rotate_after_days" in raw
        else None
    )
    bedrock_api_key = check.boolean("bedrock_api_key", False)
    if bedrock_api_key and region is None:
        raise check.fail(
            "bedrock_api_key",
            'a Bedrock API key is signed for one region: set region too, e.g. region = "us-east-1"',
        )
    warnings: tuple[str, ...] = ()
    if duration < SHORT_SESSION_SECONDS:
        warnings = (
            f"profile {name}: duration_seconds {duration} is under 30 minutes, so SDKs using "
            "credential_process will call credhelper on most requests; 3600 or more avoids that",
        )
    return Profile(
        name=name,
        role_arn=role_arn,
        role_session_name=check.string(
            "role_session_name", SESSION_NAME, r"allowed: 2 to 64 of letters, digits and +=,.@_-"
        )
        or session_name,
        source_profile=source_profile,
        source_keyring=source_keyring,
        iam_endpoint_url=iam_endpoint,
        rotate_after_days=rotate_after_days,
        region=region,
        duration_seconds=duration,
        refresh_before_seconds=refresh_before,
        external_id=check.string(
            "external_id", re.compile(r"^[\w+=,.@:/-]{2,1224}\Z"), "allowed: 2 to 1224 of \\w+=,.@:/-"
        ),
        mfa_serial=mfa_serial,
        mfa_command=mfa_command,
        mfa_session_seconds=check.integer(
            "mfa_session_seconds", DEFAULT_MFA_SESSION_SECONDS, MIN_DURATION, 129600
        ),
        sts_endpoint_url=endpoint,
        env_files=check.paths("env_files"),
        credentials_files=check.sections("credentials_files"),
        on_refresh=check.argv("on_refresh"),
        warnings=warnings,
        bedrock_api_key=bedrock_api_key,
        sts_endpoint=_checked_endpoint(endpoint, region, environ, check),
    )


def _checked_endpoint(
    configured: str | None, region: str | None, environ: Mapping[str, str], check: SettingsChecker
) -> str:
    """The resolved STS endpoint; one that a variable gave and that is no http(s) URL is refused
    here, with the variable's name, rather than failing at the first STS call."""
    resolved = resolve_sts_endpoint(configured, region, environ)
    if configured is None and not ENDPOINT_URL.match(resolved):
        variable = "AWS_ENDPOINT_URL_STS" if environ.get("AWS_ENDPOINT_URL_STS") else "AWS_ENDPOINT_URL"
        shown = shown_url(resolved)
        raise check.fail(
            "sts endpoint", f"{variable}={shown!r} is not an http(s) URL; fix or unset {variable}"
        )
    return resolved


def parse_listen_address(text: str, where: str) -> tuple[str, int]:
    """HOST:PORT on a loopback address: SDKs refuse plain http anywhere else, and so do we."""
    host, _, port_text = text.rpartition(":")
    host = host.strip("[]")
    loopback = host == "localhost" or host == "::1" or re.match(r"^127(\.\d{1,3}){3}$", host)
    if not loopback or not port_text.isdigit() or int(port_text) > 65535:
        raise ConfigError(
            f"{where}: {text!r} is not a loopback HOST:PORT; the credentials endpoint listens only on "
            f"127.0.0.1, ::1 or localhost, e.g. {DEFAULT_SERVE}"
        )
    return host, int(port_text)


DAEMON_KEYS = ("serve", "serve_containers", "containers_port")
DEFAULT_CONTAINERS_PORT = 9911


def parse_daemon(data: Mapping[str, Any], source: str) -> str | None:
    """The optional [daemon] table: `serve = "127.0.0.1:9911"` starts the credentials endpoint
    (`parse_containers` reads the containers' keys)."""
    table = data.get("daemon", {})
    if not isinstance(table, Mapping) or set(table) - set(DAEMON_KEYS):
        raise ConfigError(
            f'{source}: [daemon] takes serve = "{DEFAULT_SERVE}", serve_containers = true and '
            f"containers_port = {DEFAULT_CONTAINERS_PORT}"
        )
    serve = table.get("serve")
    if serve is None:
        return None
    if not isinstance(serve, str):
        raise ConfigError(f'{source}: [daemon] serve: must be a string such as "{DEFAULT_SERVE}"')
    parse_listen_address(serve, f"{source}: [daemon] serve")
    return serve


def parse_containers(data: Mapping[str, Any], source: str) -> tuple[bool, int]:
    """[daemon] serve_containers (the endpoint on 169.254.170.2 too) and containers_port."""
    table = data.get("daemon", {})
    table = table if isinstance(table, Mapping) else {}
    serve = table.get("serve_containers", False)
    if not isinstance(serve, bool):
        raise ConfigError(f"{source}: [daemon] serve_containers: must be true or false")
    port = table.get("containers_port", DEFAULT_CONTAINERS_PORT)
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise ConfigError(
            f"{source}: [daemon] containers_port: must be a port number from 1 to 65535, "
            f"such as {DEFAULT_CONTAINERS_PORT} (or 80 for SDKs that take only the relative URI)"
        )
    return serve, port


def parse_profiles(
    data: Mapping[str, Any], source: str, session_name: str, environ: Mapping[str, str] = NO_ENVIRONMENT
) -> dict[str, Profile]:
    unknown = sorted(set(data) - {"profiles", "daemon"})
    if unknown:
        raise ConfigError(
            f"{source}: unknown top-level key {unknown[0]!r}; allowed: [profiles.NAME] and [daemon]"
        )
    profiles = data.get("profiles", {})
    if not isinstance(profiles, Mapping) or not profiles:
        raise ConfigError(f'{source}: no profiles defined; add a [profiles.NAME] table with role_arn = "..."')
    found = {name: parse_profile(name, raw, source, session_name, environ) for name, raw in profiles.items()}
    _refuse_names_alike(found, source)
    return found


def _refuse_names_alike(profiles: Mapping[str, Profile], source: str) -> None:
    """Two names that differ only in case share their files on a case-insensitive file system."""
    seen: dict[str, str] = {}
    for name in profiles:
        other = seen.setdefault(name.casefold(), name)
        if other != name:
            raise ConfigError(
                f"{source}: profiles {other!r} and {name!r} differ only in case, so on some file "
                "systems they would share their cache files; rename one of them"
            )
