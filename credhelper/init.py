"""`credhelper init`: from the setup guide's end state (a long-term pair pasted into an app's `.env`)
to a working setup. Every file change is planned first (old text in, new text out, refused before
anything is written), then applied; a failure before the first `.env` is rewritten puts every file
back as it was."""

from __future__ import annotations

import contextlib
import difflib
import json
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from .config import config_from_data, expand_path
from .credentials import mask_key_id
from .errors import ConfigError, CredhelperError, UsageError
from .fileio import PRIVATE_DIR, PRIVATE_FILE, read_bytes_or_none
from .formats.awsconfig import add_process_profile, process_profile_values
from .formats.dotenv import long_term_key_ids, managed_values, secret_for_key
from .formats.ini import holds_long_term_secret, with_key_pair
from .paths import aws_config_path, shared_credentials_path
from .policy import Want
from .profile import DEFAULT_REGION, PROFILE_NAME, REGION, ROLE_ARN, Profile
from .refresher import Refresher
from .supply import supply
from .targets.envfile import EnvFileTarget
from .targets.files import read_target, rewrite_file
from .unit import UNIT_NAME, config_args, credhelper_argv, render_unit, shell_command, unit_path

UNIT_MODE = 0o644  # systemd reads it; it holds no secret
SECRET_SHOWN_AS = "<secret from the .env>"


@dataclass(frozen=True)
class InitRequest:
    profile: str
    role_arn: str
    source_profile: str
    region: str | None
    env_files: tuple[Path, ...]  # absolute
    systemd: bool
    aws_config: bool
    config_file: Path
    command: tuple[str, ...]  # this credhelper, as an absolute argv


@dataclass(frozen=True)
class FileChange:
    path: Path
    old: bytes | None
    new: str
    new_file_mode: int
    secret: str | None = None  # never shown in a diff
    holds_secret: Callable[[str], bool] | None = None  # a file whose text holds one ends 0600

    @property
    def created(self) -> bool:
        return self.old is None


@dataclass(frozen=True)
class PairToAdopt:
    env_file: Path
    key_id: str


@dataclass
class Plan:
    profile: Profile
    changes: list[FileChange] = field(default_factory=list)
    adopt: PairToAdopt | None = None


# ----- pure planning -----------------------------------------------------------------------------


def toml_string(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)


def display_path(path: Path, home: str) -> str:
    """`~/…` for a path under the home directory: the same file for the daemon, shorter to read."""
    text = str(path)
    if home and text.startswith(home.rstrip("/") + "/"):
        return "~/" + text[len(home.rstrip("/")) + 1 :]
    return text


def profile_settings(request: InitRequest, home: str) -> dict[str, Any]:
    settings: dict[str, Any] = {"role_arn": request.role_arn, "source_profile": request.source_profile}
    if request.region:
        settings["region"] = request.region
    if request.env_files:
        settings["env_files"] = [display_path(path, home) for path in request.env_files]
    return settings


def profile_table(name: str, settings: Mapping[str, Any]) -> str:
    lines = [f"[profiles.{name}]"]
    for key, value in settings.items():
        shown = (
            "[" + ", ".join(toml_string(v) for v in value) + "]"
            if isinstance(value, list)
            else toml_string(value)
        )
        lines.append(f"{key} = {shown}")
    return "\n".join(lines) + "\n"


def _same_setting(key: str, held: object, wanted: object) -> bool:
    if key == "env_files" and isinstance(held, list) and isinstance(wanted, list):
        return {os.path.abspath(expand_path(str(p))) for p in held} == {
            os.path.abspath(expand_path(str(p))) for p in wanted
        }
    return held == wanted


def add_profile_to_config(path: Path, text: str, name: str, settings: Mapping[str, Any]) -> str:
    """The configuration with `[profiles.NAME]` holding `settings`, every existing byte kept. The
    same profile with other values is refused (78); with the same values nothing changes."""
    try:
        data = tomllib.loads(text) if text else {}
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: malformed TOML: {error}; fix the file and run init again") from None
    profiles = data.get("profiles", {})
    held = profiles.get(name) if isinstance(profiles, dict) else None
    if isinstance(held, dict):
        different = [key for key, value in settings.items() if not _same_setting(key, held.get(key), value)]
        if different:
            key = different[0]
            raise ConfigError(
                f"{path}: [profiles.{name}] already sets {key} = {held.get(key)!r}, not {settings[key]!r}; "
                "edit that profile yourself or pick another --profile"
            )
        return text
    eol = line_ending(text)
    separator = "" if not text or text.endswith(eol * 2) else (eol if text.endswith("\n") else eol * 2)
    return text + separator + profile_table(name, settings).replace("\n", eol)


def line_ending(text: str) -> str:
    """The file's own line ending (its first line's), so an added table does not mix them."""
    end = text.find("\n")
    return "\r\n" if end > 0 and text[end - 1] == "\r" else "\n"


def find_pair(env_texts: Mapping[Path, str]) -> tuple[Path, str, str] | None:
    """The one long-term pair pasted into the `.env` files: (file, key id, secret)."""
    found: list[tuple[Path, str, str | None]] = []
    for path, text in env_texts.items():
        for key_id in long_term_key_ids(text):
            found.append((path, key_id, secret_for_key(text)))
    if not found:
        return None
    if len({key_id for _, key_id, _ in found}) > 1:
        raise UsageError("the .env files hold more than one long-term key; keep one pair and run init again")
    path, key_id, secret = found[0]
    if not secret:
        raise UsageError(f"{path}: AWS_SECRET_ACCESS_KEY is empty; the long-term pair is incomplete")
    return path, key_id, secret


# A secret-bearing setting of an AWS config or credentials file (any case, `=` or `:`), or of a `.env`
# (`export`, a quoted key): what leads to its value, the `=` or `:`, then the value's first line.
_SECRET_SETTING = re.compile(
    r"([^\S\r\n]*(?:export[^\S\r\n]+)?[\"']?"
    r"(?:aws_secret_access_key|aws_session_token|aws_security_token|aws_bearer_token_bedrock)"
    r"[\"']?[^\S\r\n]*([=:])[^\S\r\n]*)([^\r\n]*)",
    re.I,
)
# Lines as configparser (botocore's reader) and the dotenv readers split them: at \n, \r\n or \r only.
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)?")
_SECTION = re.compile(r"\[.+\]")  # configparser's section header, after the indentation
_QUOTES = "\"'`"  # what opens a quoted `.env` value: python-dotenv takes the first two, Node's dotenv all
SECRET_SHOWN = "<secret>"


def mask_secrets(text: str, secret: str | None) -> str:
    """The adopted secret, and every other secret the file holds, on every line its value takes: a
    diff's context lines can show any line near a change."""
    if secret:
        text = text.replace(secret, SECRET_SHOWN_AS)
    lines = _SecretLines()
    return "".join(lines.shown(line) for line in _LINE.findall(text))


@dataclass
class _SecretLines:
    """Which lines of a file hold part of a secret value, read line by line as configparser (botocore's
    reader of `~/.aws/config` and `~/.aws/credentials`) and both dotenv readers read them. Where they
    differ, a line any of them takes as part of a secret is one: too much costs a line of the diff,
    too little a secret."""

    # configparser: a value goes on over the lines indented deeper than its key, blank and comment
    # lines between included.
    level: int | None = None  # the last key line's indentation (configparser's indent_level)
    in_secret: bool = False  # lines indented deeper than `level` go on a secret value
    # dotenv: a quoted value goes on to its closing quote; Node's dotenv reads a quoted value that
    # starts on a line below an empty `KEY=`, and after `KEY:` the whole next line.
    quotes: set[str] = field(default_factory=set)  # quotes a secret value opened and did not close
    empty_after: str = ""  # the `=` or `:` of a secret setting with nothing after it on its line

    def shown(self, line: str) -> str:
        """The line as a diff may show it."""
        body = line.rstrip("\r\n")
        end = line[len(body) :]
        content = body.lstrip()
        indent = body[: len(body) - len(content)]
        hidden = bool(self.quotes)
        self.quotes = {quote for quote in self.quotes if not _closing_quote(quote).search(body)}
        if not content:
            self.empty_after = self.empty_after and "="  # past a blank line, only a quoted value
            return line
        if self.empty_after:
            below = content[0] in _QUOTES or (self.empty_after == ":" and content[0] != "#")
            hidden = hidden or below
            self.quotes |= _opened_quote(content)
            self.empty_after = ""
        if self.level is not None and len(indent) > self.level:  # a continuation line
            hidden = hidden or self.in_secret
        elif content[0] in "#;":
            pass  # a comment line does not end a value
        elif _SECTION.match(content):
            self.level, self.in_secret = None, False  # the next line starts a key, however indented
        else:
            self.level, self.in_secret = len(indent), False  # a key line
        setting = _SECRET_SETTING.match(body)
        if setting:
            self.in_secret = True
            lead, sign, value = setting.groups()
            if not value:
                self.empty_after = sign
            elif not value.startswith("<secret"):
                body = lead + SECRET_SHOWN
                self.quotes |= _opened_quote(value)
        return (indent + SECRET_SHOWN if hidden else body) + end


def _opened_quote(value: str) -> set[str]:
    """The quote `value` starts with, when it does not close on the same line."""
    if value[0] in _QUOTES and not _closing_quote(value[0]).search(value, 1):
        return {value[0]}
    return set()


def _closing_quote(quote: str) -> re.Pattern[str]:
    """A quote that ends a quoted `.env` value: one not escaped by a backslash."""
    return re.compile(rf"(?<!\\){re.escape(quote)}")


def diff_text(change: FileChange) -> str:
    old = mask_secrets((change.old or b"").decode("utf-8", "replace"), change.secret)
    new = mask_secrets(change.new, change.secret)
    lines = difflib.unified_diff(
        old.splitlines(keepends=True),
        new.splitlines(keepends=True),
        fromfile="/dev/null" if change.created else str(change.path),
        tofile=str(change.path),
    )
    return "".join(
        line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in lines
    )


# ----- reading the world, then planning ------------------------------------------------------------


def _read_text(path: Path) -> tuple[bytes | None, str]:
    try:
        data = read_bytes_or_none(path)
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory, not a file") from None
    except OSError as error:
        raise ConfigError(f"{path}: cannot read: {error.strerror}") from None
    if data is None:
        return None, ""
    try:
        return data, data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text; credhelper leaves it untouched") from None


def _change(
    path: Path,
    old: bytes | None,
    new: str,
    mode: int,
    secret: str | None = None,
    holds_secret: Callable[[str], bool] | None = None,
) -> list[FileChange]:
    if old is not None and old == new.encode("utf-8"):
        return []
    return [FileChange(path, old, new, mode, secret, holds_secret)]


def plan_init(request: InitRequest, environ: Mapping[str, str]) -> Plan:
    """Every file change init would make, or the reason it refuses. Reads files; writes nothing."""
    if not PROFILE_NAME.match(request.profile):
        raise UsageError(f"--profile {request.profile!r}: use letters, digits, '.', '_' or '-'")
    if not PROFILE_NAME.match(request.source_profile):
        raise UsageError(f"--source-profile {request.source_profile!r}: use letters, digits, '.', '_' or '-'")
    if request.aws_config and request.profile == request.source_profile:
        raise UsageError(
            f"--profile and --source-profile are both {request.profile!r}: the credential_process "
            "profile would be its own source; give them different names"
        )
    home = os.path.expanduser("~")
    changes: list[FileChange] = []

    old, text = _read_text(request.config_file)
    new_config = add_profile_to_config(
        request.config_file, text, request.profile, profile_settings(request, home)
    )
    try:
        # Validated as every later command will load it, so init never writes what they refuse.
        profiles = config_from_data(tomllib.loads(new_config), str(request.config_file), environ).profiles
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{request.config_file}: adding the profile would not parse ({error})") from None
    changes += _change(request.config_file, old, new_config, PRIVATE_FILE)

    env_texts: dict[Path, str] = {}
    for env_file in request.env_files:
        if not env_file.parent.is_dir():
            raise UsageError(f"--env-file {env_file}: directory {env_file.parent} does not exist")
        found = read_target(EnvFileTarget(env_file))  # never blocks on a FIFO, refuses over 1 MiB
        env_texts[env_file] = found.text if found is not None else ""
    pair = find_pair(env_texts)
    adopt = None
    if pair is not None:
        env_file, key_id, secret = pair
        credentials_file = shared_credentials_path(environ)
        old, text = _read_text(credentials_file)
        flag = "--source-profile"
        new_text = with_key_pair(text, credentials_file, request.source_profile, key_id, secret, flag)
        changes += _change(credentials_file, old, new_text, PRIVATE_FILE, secret, holds_long_term_secret)
        adopt = PairToAdopt(env_file, key_id)

    credhelper_command = [*request.command, *config_args(str(request.config_file))]
    if request.aws_config:
        path = aws_config_path(environ)
        old, text = _read_text(path)
        command = shell_command([*credhelper_command, "credential-process", request.profile])
        values = process_profile_values(command, request.region)
        new_text = add_process_profile(path, text, request.profile, values)
        changes += _change(path, old, new_text, PRIVATE_FILE, holds_secret=holds_long_term_secret)

    if request.systemd:
        path = unit_path(environ)
        old, _ = _read_text(path)
        unit = render_unit(credhelper_command)
        changes += _change(path, old, unit, UNIT_MODE)
    return Plan(profiles[request.profile], changes, adopt)


def describe_dry_run(plan: Plan, request: InitRequest) -> str:
    parts = [diff_text(change) for change in plan.changes]
    if plan.adopt is not None:
        parts.append(
            f"{plan.adopt.env_file}: the long-term key {mask_key_id(plan.adopt.key_id)} moves to "
            f"[{request.source_profile}]; after it is verified, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, "
            "AWS_SESSION_TOKEN and AWS_CREDENTIAL_EXPIRATION get temporary credentials\n"
        )
    elif request.env_files:
        parts.append(
            f"{', '.join(map(str, request.env_files))}: temporary credentials are written at the refresh\n"
        )
    if not plan.changes and plan.adopt is None:
        parts.append(f"profile {request.profile}: already set up; no file would change\n")
    parts.append("dry run: nothing was written\n")
    return "".join(parts)


# ----- applying --------------------------------------------------------------------------------------


def _make_dirs(directory: Path, created: list[Path]) -> None:
    missing: list[Path] = []
    while not directory.exists():
        missing.append(directory)
        directory = directory.parent
    for path in reversed(missing):
        os.mkdir(path, PRIVATE_DIR)
        created.append(path)


def _write(change: FileChange, expected: str, new: str, lock_dir: str | Path) -> None:
    """`expected` becomes `new` in the file, through the one writer of files that may hold a
    secret (symlinks written through, a secret-holding file 0600); a file that is no longer
    `expected` (changed since it was read) is refused."""

    def transform(text: str) -> str:
        if text != expected:
            raise ConfigError(f"{change.path}: changed while init ran; run init again")
        return new

    rewrite_file(
        change.path,
        transform,
        lock_dir,
        str(change.path),
        "the file",
        holds_secret=change.holds_secret,
        new_file_mode=change.new_file_mode,
    )


def _remove_created(change: FileChange) -> None:
    """Remove a file init created, if it still holds what init wrote (through a symlink: the
    file it points at; the link stays, as it was)."""
    real = Path(os.path.realpath(change.path))
    found = read_bytes_or_none(real)
    if found is not None and found == change.new.encode("utf-8"):
        real.unlink()


@dataclass
class Applied:
    """What has been written so far, so it can be put back."""

    lock_dir: str | Path
    changes: list[FileChange] = field(default_factory=list)
    directories: list[Path] = field(default_factory=list)

    def undo(self) -> list[str]:
        """Put every file back; returns what could not be put back (to tell the user)."""
        failed: list[str] = []
        for change in reversed(self.changes):
            try:
                if change.old is None:
                    _remove_created(change)
                else:
                    _write(change, change.new, change.old.decode("utf-8"), self.lock_dir)
            except (OSError, CredhelperError) as error:
                failed.append(f"{change.path} ({getattr(error, 'strerror', None) or error})")
        for directory in reversed(self.directories):
            with contextlib.suppress(OSError):
                directory.rmdir()
        self.changes.clear()
        self.directories.clear()
        return failed


def apply_changes(changes: list[FileChange], lock_dir: str | Path) -> Applied:
    applied = Applied(lock_dir)
    for change in changes:
        try:
            _make_dirs(change.path.parent, applied.directories)
            old = change.old.decode("utf-8") if change.old is not None else ""
            _write(change, old, change.new, lock_dir)
        except BaseException as error:
            left = applied.undo()
            if not isinstance(error, OSError | CredhelperError):
                raise
            detail = error.strerror if isinstance(error, OSError) else str(error)
            told = CredhelperError(
                f"{change.path}: cannot write: {detail}; "
                + (f"could not put back: {', '.join(left)}" if left else "every file was put back as it was")
            )
            if isinstance(error, CredhelperError):
                told.exit_code = error.exit_code
            raise told from None
        applied.changes.append(change)
    return applied


def extended(error: CredhelperError, more: str) -> CredhelperError:
    """The same failure, with the same exit status, told with `more` (some errors, such as
    LockTimeout, cannot be rebuilt from a message alone)."""
    told = CredhelperError(f"{error}; {more}")
    told.exit_code = error.exit_code
    return told


def undo_and_raise(applied: Applied, error: CredhelperError) -> CredhelperError:
    left = applied.undo()
    where = f"could not put back: {', '.join(left)}" if left else "every file was put back as it was"
    return extended(error, where)


def run_commands(
    commands: list[list[str]], runner: Callable[[list[str]], tuple[int, str]]
) -> tuple[bool, str]:
    for command in commands:
        code, output = runner(command)
        if code != 0:
            return False, f"`{' '.join(command)}` failed: {output.strip() or f'exit {code}'}"
    return True, ""


SYSTEMD_COMMANDS = [
    ["systemctl", "--user", "daemon-reload"],
    ["systemctl", "--user", "enable", "--now", UNIT_NAME],
]


def source_hint(error: CredhelperError, source_profile: str) -> CredhelperError:
    return extended(
        error,
        f"no long-term key was found in the .env files, so --source-profile {source_profile} "
        "must name a profile with working keys (or paste the IAM user's pair into the .env and run "
        "init again)",
    )


def execute_init(
    request: InitRequest,
    environ: Mapping[str, str],
    echo: Callable[[str], None],
    refresher: Refresher,
    systemctl: Callable[[list[str]], tuple[int, str]] | None,
) -> None:
    """Plan, apply, verify, refresh; `systemctl` is None when no user manager answers."""
    plan = plan_init(request, environ)
    gateway = refresher.gateway
    if plan.adopt is None:
        try:
            gateway.caller_arn(plan.profile)
        except CredhelperError as error:
            raise source_hint(error, request.source_profile) from None
    applied = apply_changes(plan.changes, refresher.cache.ensure())
    try:
        caller = gateway.caller_arn(plan.profile) if plan.adopt is not None else None
        refresher.obtain(plan.profile, plan.profile.handout_seconds)
    except CredhelperError as error:
        raise undo_and_raise(applied, error) from None
    except BaseException:  # interrupted, or a bug: still leave the files as they were
        applied.undo()
        raise
    if plan.adopt is not None:
        echo(
            f"{mask_key_id(plan.adopt.key_id)} moved to [{request.source_profile}] of "
            f"{shared_credentials_path(environ)} and works: {caller}"
        )
    for change in plan.changes:
        echo(f"{'created' if change.created else 'updated'} {change.path}")
    if not plan.changes:
        echo(f"profile {request.profile}: already set up; no file changed")
    # Outside the undo: once a `.env` is rewritten, the adopted pair must stay where it was moved.
    report = supply(refresher, plan.profile, Want(plan.profile.handout_seconds), environ).report
    if report.errors:
        raise extended(
            report.errors[0],
            f"the configuration is written: fix this, then run `credhelper refresh {request.profile}`",
        )
    for path in report.written:
        echo(f"wrote temporary credentials to {path}")
    if request.systemd:
        start_service(systemctl, echo)


def start_service(
    systemctl: Callable[[list[str]], tuple[int, str]] | None, echo: Callable[[str], None]
) -> None:
    commands = " && ".join(" ".join(command) for command in SYSTEMD_COMMANDS)
    if systemctl is None:
        echo(f"no systemd user manager answered; to start the service, run: {commands}")
        return
    ok, problem = run_commands(SYSTEMD_COMMANDS, systemctl)
    if ok:
        echo(f"systemd user service {UNIT_NAME} enabled and started")
    else:
        echo(f"warning: {problem}; start the service yourself: {commands}")


# ----- the command's shell: options, prompts, systemctl ---------------------------------------------


def ask(value: str | None, question: str, default: str | None, interactive: bool) -> str | None:
    """A flag's value, else prompted for on a terminal only (default shown), else its default."""
    if value:
        return value
    if interactive:
        answer: str = click.prompt(question, default=default or "", show_default=bool(default))
        return answer.strip() or None
    return default


def region_in(env_files: tuple[Path, ...]) -> tuple[Path, str] | None:
    """The first `.env` setting AWS_REGION, and the region it sets."""
    for path in env_files:
        data = read_bytes_or_none(Path(os.path.realpath(path)))
        regions = managed_values(data.decode("utf-8", "replace")).get("AWS_REGION", []) if data else []
        if regions and regions[-1]:
            return path, regions[-1]
    return None


ROLE_ARN_EXPECTED = "expected arn:aws:iam::<12-digit account>:role/<name>"
REGION_EXPECTED = "expected a region name such as us-east-1"


def check_flag(flag: str, value: str, pattern: re.Pattern[str], expected: str) -> str:
    """A value given as a flag (or typed at its prompt) is refused as that flag: a usage error."""
    if not pattern.match(value):
        raise UsageError(f"{flag} {value!r} is not valid; {expected}")
    return value


def checked_region(given: str | None, interactive: bool, env_files: tuple[Path, ...]) -> str | None:
    found = region_in(env_files)
    region = ask(given, "Region", found[1] if found else DEFAULT_REGION, interactive)
    if region is None:
        return None
    if found is not None and region == found[1] and not given and not REGION.match(region):
        raise ConfigError(
            f"{found[0]}: AWS_REGION {region!r} is not valid; {REGION_EXPECTED}: fix it or pass --region"
        )
    return check_flag("--region", region, REGION, REGION_EXPECTED)


def build_request(
    config_file: str,
    profile: str,
    role_arn: str | None,
    source_profile: str | None,
    region: str | None,
    env_files: tuple[str, ...],
    systemd: bool | None,
    aws_config: bool,
    interactive: bool,
) -> InitRequest:
    role_arn = ask(role_arn, "Role to assume (role ARN)", None, interactive)
    if not role_arn:
        raise UsageError(
            "--role-arn is required (no terminal to ask on), "
            "e.g. arn:aws:iam::123456789012:role/BedrockAccessRole"
        )
    check_flag("--role-arn", role_arn, ROLE_ARN, ROLE_ARN_EXPECTED)
    source_profile = ask(
        source_profile,
        "Source profile (the IAM user's keys)",
        "bedrock-developer",
        interactive,
    )
    if not env_files and interactive:
        answer = ask(None, "The app's .env (empty for none)", None, interactive)
        env_files = (answer,) if answer else ()
    paths = tuple(Path(os.path.abspath(expand_path(raw))) for raw in env_files)
    region = checked_region(region, interactive, paths)
    if systemd is None:
        systemd = interactive and click.confirm("Install the systemd user service?", default=True)
    return InitRequest(
        profile=profile,
        role_arn=role_arn,
        source_profile=source_profile or "bedrock-developer",
        region=region,
        env_files=paths,
        systemd=systemd,
        aws_config=aws_config,
        config_file=Path(os.path.abspath(config_file)),
        command=tuple(credhelper_argv()),
    )
