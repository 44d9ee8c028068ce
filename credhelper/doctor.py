"""`credhelper doctor`: every way a setup can still fail, one finding per check, each with its fix.

Read-only apart from STS calls: credentials it obtains are discarded, the cache is only read.
Every check runs in its own thread under one deadline, so an unreachable STS fails its checks and
the others still report.
"""

from __future__ import annotations

import email.utils
import json
import os
import shlex
import shutil
import stat
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from .awsconfig import aws_config_path, parse_config, profile_settings, section_name
from .cache import Cache, cache_dir_path
from .config import Config, load_config
from .credentials import Credentials, mask_key_id
from .delivery import adopted_checker
from .endpoint.discovery import daemon_lock_held, live_endpoint, read_endpoint
from .envtarget import EnvFileTarget
from .errors import CredhelperError, LongTermKeyError
from .fileio import NotRegularFile, read_regular_file
from .logsetup import redact, register_secret
from .paths import CACHE_DIR_FIX, daemon_pid_path, runtime_dir, token_path, untrusted_reason
from .profile import SHORT_SESSION_SECONDS, Profile
from .sharedcreds import holds_long_term_secret, shared_credentials_path
from .targets import KeyPairCheck, Target, placeholder_credentials, profile_targets, read_target
from .unit import UNIT_NAME, user_manager

if TYPE_CHECKING:
    from .sts import StsGateway

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


# ----- running checks under one deadline ------------------------------------------------------------


def run_bounded(checks: list[tuple[str | None, str, Check]], timeout: float) -> list[Finding]:
    """Run every check at once; one that has not answered by the deadline fails with that reason."""
    results: list[list[Finding] | None] = [None] * len(checks)

    def runner(index: int, check: Check, profile: str | None, name: str) -> None:
        try:
            results[index] = check()
        except CredhelperError as error:
            results[index] = [Finding(profile, name, FAIL, str(error))]
        except Exception as error:  # a bug in a check must not hide the others
            results[index] = [
                Finding(profile, name, FAIL, f"internal error: {type(error).__name__}: {error}")
            ]

    threads = []
    for index, (profile, name, check) in enumerate(checks):
        thread = threading.Thread(target=runner, args=(index, check, profile, name), daemon=True)
        thread.start()
        threads.append(thread)
    deadline = time.monotonic() + timeout
    findings: list[Finding] = []
    for index, thread in enumerate(threads):
        thread.join(max(0.0, deadline - time.monotonic()))
        profile, name, _ = checks[index]
        found = results[index]
        if thread.is_alive() or found is None:
            findings.append(
                Finding(profile, name, FAIL, f"no answer within {timeout:g} s: check the network")
            )
        else:
            findings.extend(found)
    return findings


# ----- checks ------------------------------------------------------------------------------------------


def check_environment(environ: Mapping[str, str]) -> list[Finding]:
    exported = exported_credentials(environ)
    if not exported:
        return [Finding(None, "environment", OK, "no AWS credential variables exported")]
    return [
        Finding(
            None,
            "environment",
            WARN,
            f"{', '.join(exported)} exported in this shell: an app started from it uses that instead of "
            f"its .env (dotenv does not override): unset {' '.join(exported)}",
        )
    ]


def check_cache(directory: str) -> list[Finding]:
    try:
        info = os.stat(directory)
    except FileNotFoundError:
        return [Finding(None, "cache", WARN, f"{directory} does not exist yet: run `credhelper refresh`")]
    if not stat.S_ISDIR(info.st_mode):
        return [Finding(None, "cache", FAIL, f"{directory} is not a directory: remove it")]
    reason = untrusted_reason(info, path=directory)
    if reason is not None:
        detail = f"{directory}: credhelper does not trust this cache directory: {reason}; {CACHE_DIR_FIX}"
        return [Finding(None, "cache", FAIL, detail)]
    mode = stat.S_IMODE(info.st_mode)
    if mode != 0o700:
        return [Finding(None, "cache", WARN, f"{directory} has mode {mode:o}: chmod 700 {directory}")]
    loose = []
    for name in sorted(os.listdir(directory)):
        try:
            file_mode = stat.S_IMODE(os.lstat(os.path.join(directory, name)).st_mode)
        except FileNotFoundError:
            continue
        if file_mode & 0o077:
            loose.append(name)
    if loose:
        return [
            Finding(
                None,
                "cache",
                FAIL,
                f"{', '.join(loose)} in {directory} readable by others: chmod 600 "
                + " ".join(os.path.join(directory, name) for name in loose),
            )
        ]
    return [Finding(None, "cache", OK, f"{directory} mode 700, files 600")]


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


def check_daemon(directory: str, config: Config) -> list[Finding]:
    findings = []
    has_targets = any(p.env_files or p.credentials_files for p in config.profiles.values())
    if daemon_lock_held(directory):
        try:
            found = read_regular_file(daemon_pid_path(directory), 64)
        except OSError:
            found = None
        pid = found[0].decode(errors="replace") if found is not None else "?"
        findings.append(Finding(None, "daemon", OK, f"`credhelper run` is running (pid {pid.strip()})"))
    else:
        findings.append(
            Finding(
                None,
                "daemon",
                FAIL if has_targets else WARN,
                "no `credhelper run` holds the lock, so targets go stale when the session ends: "
                "start it (systemctl --user enable --now credhelper, or credhelper init --systemd)",
            )
        )
    systemctl = user_manager()
    if systemctl is not None:
        _, output = systemctl(["systemctl", "--user", "is-active", UNIT_NAME])
        state = output.strip().splitlines()[0] if output.strip() else "unknown"
        findings.append(
            Finding(None, "unit", OK, f"{UNIT_NAME} is active")
            if state == "active"
            else Finding(
                None, "unit", WARN, f"{UNIT_NAME} is {state}: systemctl --user enable --now {UNIT_NAME}"
            )
        )
    return findings


def check_endpoint(environ: Mapping[str, str], directory: str, config: Config) -> list[Finding]:
    endpoint = live_endpoint(environ, directory)
    if endpoint is None:
        return [
            Finding(
                None,
                "endpoint",
                FAIL,
                f"serve = {config.serve} is configured but no endpoint is running: start the daemon",
            )
        ]
    profile = next(iter(config.profiles))
    try:
        found = read_regular_file(endpoint["token_file"], 4096)  # never blocks on a FIFO
        token = found[0].decode().strip() if found is not None else ""
        request = urllib.request.Request(
            f"{endpoint['url']}/v1/credentials/{profile}", headers={"Authorization": token}
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            response.read()
    except urllib.error.HTTPError as error:
        return [
            Finding(
                None,
                "endpoint",
                FAIL,
                f"{endpoint['url']} answered {error.code}: see `journalctl --user -u credhelper`",
            )
        ]
    except (OSError, KeyError, ValueError) as error:
        return [
            Finding(
                None, "endpoint", FAIL, f"{endpoint.get('url')} does not answer ({error}): restart the daemon"
            )
        ]
    return [
        Finding(None, "endpoint", OK, f"{endpoint['url']} answers for profile {profile}"),
        check_token_file(environ, directory, endpoint["token_file"]),
    ]


def check_token_file(environ: Mapping[str, str], directory: str, token_file: str) -> Finding:
    """The endpoint's token: where `credhelper env` looks, this user's, readable by nobody else."""
    expected = token_path(environ, directory)
    if os.path.abspath(token_file) != expected:
        return Finding(
            None,
            "endpoint token",
            WARN,
            f"the daemon published its token at {token_file}, not {expected}: start the daemon and "
            "your apps with the same XDG_RUNTIME_DIR",
        )
    for path, wanted in ((runtime_dir(environ, directory), 0o700), (token_file, 0o600)):
        try:
            info = os.lstat(path)
        except OSError as error:
            return Finding(None, "endpoint token", FAIL, f"{path}: {error.strerror}: restart the daemon")
        mode = stat.S_IMODE(info.st_mode)
        if info.st_uid != os.geteuid() or mode & 0o077:
            return Finding(
                None,
                "endpoint token",
                FAIL,
                f"{path} (mode {mode:o}, uid {info.st_uid}) lets other users read the token: "
                f"chmod {wanted:o} {path} and restart the daemon",
            )
    return Finding(None, "endpoint token", OK, f"{token_file} mode 600, in a directory of mode 700")


AWS_FILE_MAX_BYTES = 1 << 20


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
    return [Finding(profile.name, name, OK, f"{path} runs {found}")]


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
        raise CredhelperError(f"STS at {url} sent no Date header")
    return email.utils.parsedate_to_datetime(date).timestamp(), (started + finished) / 2


def check_clock(profile: Profile, endpoint: str, timeout: float) -> list[Finding]:
    try:
        server, local = sts_server_date(endpoint, timeout)
    except (OSError, ValueError) as error:
        return [Finding(profile.name, "clock", FAIL, f"STS at {endpoint} could not be reached ({error})")]
    # The Date header has whole seconds: up to 1 s of the difference is its rounding.
    skew = server - local
    return [Finding(profile.name, "clock", skew_status(skew), skew_detail(skew))]


def git_finding(profile: str, path: Path) -> Finding:
    name = "git"
    if shutil.which("git") is None:
        return Finding(profile, name, OK, "git is not installed")
    directory = str(path.parent)

    def git(*args: str) -> int:
        done = subprocess.run(
            ["git", "-C", directory, *args],
            capture_output=True,
            timeout=10,
            stdin=subprocess.DEVNULL,
        )
        return done.returncode

    if git("rev-parse", "--is-inside-work-tree") != 0:
        return Finding(profile, name, OK, f"{path} is not in a git repository")
    if git("ls-files", "--error-unmatch", "--", path.name) == 0:
        return Finding(
            profile,
            name,
            FAIL,
            f"{path} is tracked by git: `git rm --cached {path.name}`, add it to "
            ".gitignore, commit, and deactivate any key it ever held that was pushed",
        )
    if git("check-ignore", "-q", "--", path.name) != 0:
        return Finding(
            profile,
            name,
            WARN,
            f"{path} is not ignored by git (one `git add .` from a leak): add {path.name} to .gitignore",
        )
    return Finding(profile, name, OK, f"{path} is ignored by git")


def check_target_file(
    profile: Profile, target: Target, current: Credentials | None, adopted: KeyPairCheck
) -> list[Finding]:
    """A target through the same read, guard and state as every write: a new kind is checked too."""
    name = profile.name
    try:
        found = read_target(target)
    except CredhelperError as error:  # a FIFO, over 1 MiB, not UTF-8, its directory missing
        return [Finding(name, "target", FAIL, str(error))]
    if found is None:
        return [
            Finding(name, "target", FAIL, f"{target.label}: does not exist: run `credhelper refresh {name}`")
        ]
    findings = [
        Finding(name, "target", OK, f"{target.label} is a regular file"),
        mode_finding(name, "target mode", target.real_path, found.mode, target.must_be_private(found.text)),
    ]
    try:
        target.guard(found.text, adopted)
        target.render(found.text, placeholder_credentials())  # what the write would refuse, too
    except LongTermKeyError as error:
        findings.append(Finding(name, "long-term key", FAIL, str(error)))
    except CredhelperError as error:  # e.g. a credentials file that cannot be read with certainty
        return [*findings, Finding(name, "target", FAIL, str(error))]
    else:
        detail = f"{target.label} holds no long-term key credhelper would refuse to overwrite"
        findings.append(Finding(name, "long-term key", OK, detail))
    findings.append(current_finding(name, target.label, target.state(found.text, current), current))
    if isinstance(target, EnvFileTarget):
        findings += bedrock_findings(name, target, target.bedrock_state(found.text, current))
    findings.append(git_finding(name, target.path))
    return findings


def bedrock_findings(profile: str, target: EnvFileTarget, state: str) -> list[Finding]:
    """The target's AWS_BEARER_TOKEN_BEDROCK, which SDKs prefer over the credentials beside it."""
    name = "bedrock api key"
    if state == "current":
        return [Finding(profile, name, OK, f"{target.label} holds a Bedrock API key of the current session")]
    if state == "stale":
        return [
            Finding(
                profile,
                name,
                FAIL,
                f"{target.label} holds a short-term Bedrock API key of another session, which SDKs "
                f"prefer and which expires with it: run `credhelper refresh {profile}`, or delete "
                "that line if it stays",
            )
        ]
    if state == "missing":
        return [
            Finding(
                profile,
                name,
                FAIL,
                f"{target.label} holds no Bedrock API key: run `credhelper refresh {profile}`",
            )
        ]
    return []


def current_finding(profile: str, where: str, state: str, current: Credentials | None) -> Finding:
    if current is None or current.is_expired(time.time()):
        return Finding(
            profile, "credentials", FAIL, f"no valid credentials cached: run `credhelper refresh {profile}`"
        )
    if state == "current":
        return Finding(
            profile,
            "credentials",
            OK,
            f"{where} holds the current credentials ({mask_key_id(current.access_key_id)})",
        )
    return Finding(
        profile,
        "credentials",
        FAIL,
        f"{where} does not hold the current credentials: run "
        f"`credhelper refresh {profile}` (and keep `credhelper run` going)",
    )


# ----- assembling --------------------------------------------------------------------------------------


def gateway_factory(environ: Mapping[str, str]) -> Callable[[], StsGateway]:
    def make() -> StsGateway:
        from .sts import StsGateway

        return StsGateway()

    return make


def profile_checks(
    profile: Profile, environ: Mapping[str, str], cache: Cache, timeout: float
) -> list[tuple[str | None, str, Check]]:
    make_gateway = gateway_factory(environ)
    name = profile.name
    current = cache.read_credentials(name, profile.fingerprint)
    endpoint = make_gateway().endpoint(profile)
    blocked = unreadable_aws_file(environ)
    checks: list[tuple[str | None, str, Check]] = [
        (name, "source credentials", lambda: check_source(profile, make_gateway())),
        (name, "role", lambda: check_role(profile, make_gateway(), cache)),
    ]
    if blocked is not None:
        checks = [(name, check, partial(blocked_finding, name, check, blocked)) for _, check, _ in checks]
    checks += [
        (name, "clock", lambda: check_clock(profile, endpoint, timeout)),
        (name, "session", lambda: check_session(profile)),
        (name, "credential_process", lambda: check_aws_config(profile, environ)),
    ]
    adopted = adopted_checker(environ)
    for target in profile_targets(profile):
        checks.append((name, "target", partial(check_target_file, profile, target, current, adopted)))
    return checks


def diagnose(
    config_option: str | None, names: tuple[str, ...], environ: Mapping[str, str], timeout: float
) -> list[Finding]:
    try:
        config = load_config(config_option, environ)
        profiles = config.select(list(names))
    except CredhelperError as error:
        return [Finding(None, "configuration", FAIL, str(error))]
    findings = [Finding(None, "configuration", OK, f"{config.path}: {len(config.profiles)} profile(s)")]
    directory = cache_dir_path(environ)
    cache = Cache(directory)
    checks: list[tuple[str | None, str, Check]] = [
        (None, "environment", lambda: check_environment(environ)),
        (None, "cache", lambda: check_cache(directory)),
        (None, "credentials file", lambda: check_shared_credentials(environ)),
        (None, "daemon", lambda: check_daemon(directory, config)),
    ]
    if config.serve or read_endpoint(environ, directory) is not None:
        checks.append((None, "endpoint", lambda: check_endpoint(environ, directory, config)))
    for profile in profiles:
        checks += profile_checks(profile, environ, cache, timeout)
    return findings + run_bounded(checks, timeout)


def report(findings: list[Finding], as_json: bool) -> str:
    if as_json:
        return json.dumps([finding.record() for finding in findings], indent=2)
    return "\n".join(finding.line() for finding in findings)
