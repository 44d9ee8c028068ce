"""doctor's checks of the AWS side: `~/.aws/config` and the shared credentials file, the source
credentials, the role, the session length and this clock against STS's."""

from __future__ import annotations

import email.utils
import os
import shlex
import shutil
import stat
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from ..cache import Cache
from ..endpointurl import shown_url
from ..errors import CredhelperError
from ..fileio import NotRegularFile, read_regular_file
from ..formats.awsconfig import parse_config, profile_settings, section_name, shadowing_credentials
from ..formats.ini import holds_long_term_secret
from ..logsetup import register_secret
from ..paths import aws_config_path, shared_credentials_path
from ..profile import Profile
from ..targets.registry import keeps_credentials_section
from ..unit import imports_from_its_directory
from ..windows import SHORT_SESSION_SECONDS
from .findings import FAIL, OK, WARN, Finding, mode_finding, skew_detail, skew_status

if TYPE_CHECKING:
    from ..sts import StsGateway

AWS_FILE_MAX_BYTES = 1 << 20


def check_shared_credentials(environ: Mapping[str, str]) -> list[Finding]:
    """The shared credentials file, where long-term keys live: readable by this user alone."""
    path = shared_credentials_path(environ)
    try:
        found = read_regular_file(path, AWS_FILE_MAX_BYTES, follow_symlinks=True)
    except OSError:
        return []  # unreadable_aws_file and botocore say what is wrong with it
    if found is None:
        return []
    data, info = found
    text = data.decode("utf-8", "replace")
    return [
        mode_finding(None, "credentials file", path, stat.S_IMODE(info.st_mode), holds_long_term_secret(text))
    ]


def not_regular_detail(path: Path, kind: str, variable: str) -> str:
    return (
        f"{path} is a {kind}, not a regular file: SDKs and credhelper would wait on it forever; "
        f"replace it with a regular file (or point {variable} at one)"
    )


def unreadable_aws_file(environ: Mapping[str, str]) -> str | None:
    """Why ~/.aws/config or the shared credentials file cannot be read without blocking (a FIFO,
    a device, a directory): botocore would wait on it, so the checks that use it are not run."""
    files = {
        "AWS_CONFIG_FILE": aws_config_path(environ),
        "AWS_SHARED_CREDENTIALS_FILE": shared_credentials_path(environ),
    }
    for variable, path in files.items():
        try:
            read_regular_file(path, AWS_FILE_MAX_BYTES, follow_symlinks=True)
        except NotRegularFile as error:
            return not_regular_detail(path, error.kind, variable)
        except OSError:
            continue  # botocore reports what else is wrong with it
    return None


def check_aws_config(profile: Profile, environ: Mapping[str, str]) -> list[Finding]:
    path = aws_config_path(environ)
    name = "credential_process"
    try:
        held = read_regular_file(path, AWS_FILE_MAX_BYTES, follow_symlinks=True)  # never blocks
        sections = parse_config(path, held[0].decode() if held is not None else "")
    except NotRegularFile as error:
        return [Finding(profile.name, name, FAIL, not_regular_detail(path, error.kind, "AWS_CONFIG_FILE"))]
    except (OSError, UnicodeDecodeError, CredhelperError) as error:
        return [Finding(profile.name, name, FAIL, f"{path}: cannot read: {error}")]
    command = (profile_settings(sections, profile.name) or {}).get("credential_process")
    if not command:
        return [
            Finding(
                profile.name,
                name,
                WARN,
                f"{path} has no [{section_name(profile.name)}] with credential_process: "
                "SDKs cannot use this profile; run `credhelper init` (or add it)",
            )
        ]
    shadow = _shadowing_credentials(profile, environ)
    if shadow is not None:
        return [Finding(profile.name, name, FAIL, shadow)]
    try:
        argv = shlex.split(command)
    except ValueError:
        argv = []
    program = argv[0] if argv else ""
    found = program if os.path.isabs(program) else shutil.which(program) if program else None
    if not found or not os.path.isfile(found) or not os.access(found, os.X_OK):
        return [
            Finding(
                profile.name,
                name,
                FAIL,
                f"{path}: credential_process runs {program!r}, which is not an "
                "executable file: run `credhelper init` again to point it at this credhelper",
            )
        ]
    if argv[-2:] != ["credential-process", profile.name]:
        return [
            Finding(
                profile.name,
                name,
                WARN,
                f"{path}: credential_process does not end with `credential-process {profile.name}`: fix it",
            )
        ]
    if imports_from_its_directory(argv):
        detail = (
            f"{path}: credential_process runs `python -m credhelper` without -P, which imports from the "
            "app's directory first (a click.py there would run with your keys): run `credhelper init` again"
        )
        return [Finding(profile.name, name, WARN, detail)]
    return [Finding(profile.name, name, OK, f"{path} runs {found}")]


def _shadowing_credentials(profile: Profile, environ: Mapping[str, str]) -> str | None:
    """init's rule (formats.awsconfig.shadowing_credentials) on the shared credentials file."""
    path = shared_credentials_path(environ)
    try:
        found = read_regular_file(path, AWS_FILE_MAX_BYTES, follow_symlinks=True)
    except OSError:
        return None  # unreadable_aws_file and botocore say what is wrong with it
    if found is None:
        return None
    try:
        text = found[0].decode("utf-8")
    except UnicodeDecodeError:
        return f"{path}: not UTF-8, so SDKs cannot read it and profile {profile.name} would fail: fix it"
    own = keeps_credentials_section(profile, path, profile.name)
    return shadowing_credentials(path, text, profile.name, own)


def check_session(profile: Profile) -> list[Finding]:
    if profile.duration_seconds < SHORT_SESSION_SECONDS:
        return [
            Finding(
                profile.name,
                "session",
                WARN,
                f"duration_seconds {profile.duration_seconds} is under 30 min: "
                "SDKs using credential_process call credhelper on most requests; use 3600 or more",
            )
        ]
    return [Finding(profile.name, "session", OK, f"{profile.duration_seconds} s sessions")]


def blocked_finding(profile: str, check: str, detail: str) -> list[Finding]:
    return [Finding(profile, check, FAIL, detail)]


def check_source(profile: Profile, gateway: StsGateway) -> list[Finding]:
    return [Finding(profile.name, "source credentials", OK, f"resolve to {gateway.caller_arn(profile)}")]


def check_role(profile: Profile, gateway: StsGateway, cache: Cache) -> list[Finding]:
    via = None
    if profile.mfa_serial:
        via = cache.read_credentials(profile.name, profile.mfa_fingerprint, kind="mfa.json")
        if via is None or via.is_expired(time.time()):
            return [
                Finding(
                    profile.name,
                    "role",
                    WARN,
                    f"needs an MFA code to be checked: run `credhelper refresh {profile.name}`",
                )
            ]
    credentials = gateway.assume_role(profile, via)
    register_secret(credentials.secret_access_key, credentials.session_token)
    return [
        Finding(
            profile.name, "role", OK, f"{profile.role_arn} can be assumed: {credentials.assumed_role_arn}"
        )
    ]


def sts_server_date(url: str, timeout: float) -> tuple[float, float]:
    """(STS's time from its Date header, this clock at the middle of the exchange). An unsigned
    request: any answer, a refusal included, carries the Date, and no credential is needed (nor
    correct time: a signed request from a skewed clock would only be refused)."""
    request = urllib.request.Request(
        url,
        data=b"Action=GetCallerIdentity&Version=2011-06-15",
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            # Signed by nobody: refused, but recognisably an STS request (a local STS routes by it).
            "Authorization": "AWS4-HMAC-SHA256 Credential=credhelper-doctor/20000101/us-east-1/sts/"
            "aws4_request, SignedHeaders=host, Signature=0",
        },
        method="POST",
    )
    started = time.time()
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            date = response.headers.get("Date")
    except urllib.error.HTTPError as error:
        date = error.headers.get("Date")
    finished = time.time()
    if not date:
        raise CredhelperError(f"STS at {shown_url(url)} sent no Date header")
    return email.utils.parsedate_to_datetime(date).timestamp(), (started + finished) / 2


def check_clock(profile: Profile, endpoint: str, timeout: float) -> list[Finding]:
    try:
        server, local = sts_server_date(endpoint, timeout)
    except (OSError, ValueError) as error:
        shown = shown_url(endpoint)
        text = str(error).replace(endpoint, shown)
        return [Finding(profile.name, "clock", FAIL, f"STS at {shown} could not be reached ({text})")]
    # The Date header has whole seconds: up to 1 s of the difference is its rounding.
    skew = server - local
    return [Finding(profile.name, "clock", skew_status(skew), skew_detail(skew))]
