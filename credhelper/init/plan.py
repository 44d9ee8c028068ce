"""Planning `credhelper init`: every file change it would make (old text in, new text out), or the
reason it refuses, before anything is written; and the dry run's diff of those changes."""

from __future__ import annotations

import difflib
import json
import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import config_from_data, expand_path
from ..credentials import mask_key_id
from ..errors import ConfigError, UsageError
from ..fileio import PRIVATE_FILE, read_bytes_or_none
from ..formats.awsconfig import add_process_profile, process_profile_values, shadowing_credentials
from ..formats.dotenv import long_term_key_ids, secret_for_key
from ..formats.ini import holds_long_term_secret, with_key_pair
from ..keystore import KeyringUnavailable, LongTermPair, entry_label
from ..paths import aws_config_path, shared_credentials_path
from ..profile import Profile
from ..settings import PROFILE_NAME
from ..targets.envfile import EnvFileTarget
from ..targets.files import read_target
from ..targets.registry import keeps_credentials_section
from ..unit import config_args, earlier_spelling, render_unit, shell_command, unit_path
from .mask import mask_secrets

UNIT_MODE = 0o644  # systemd reads it; it holds no secret


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
    keyring: bool | None = None  # --keyring/--no-keyring; None: the keyring when it is unlocked


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


@dataclass(frozen=True)
class KeyringView:
    """What init found of the OS keyring before planning: its state (`unlocked`, `locked`,
    `absent`), why, and the pair entry `--source-profile` holds already (None: no entry)."""

    state: str
    detail: str
    held: LongTermPair | None = None


@dataclass
class Plan:
    profile: Profile
    changes: list[FileChange] = field(default_factory=list)
    adopt: PairToAdopt | None = None
    keyring: bool = False  # the profile reads its key from keyring entry --source-profile
    keyring_pair: LongTermPair | None = None  # to store there (None: it holds it already, or no keyring)
    keyring_by_default: bool = False  # chosen without --keyring: init says so, and how to opt out


# ----- pure planning -----------------------------------------------------------------------------


def toml_string(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)


def display_path(path: Path, home: str) -> str:
    """`~/…` for a path under the home directory: the same file for the daemon, shorter to read."""
    text = str(path)
    if home and text.startswith(home.rstrip("/") + "/"):
        return "~/" + text[len(home.rstrip("/")) + 1 :]
    return text


def profile_settings(request: InitRequest, home: str, keyring: bool = False) -> dict[str, Any]:
    source = "source_keyring" if keyring else "source_profile"
    settings: dict[str, Any] = {"role_arn": request.role_arn, source: request.source_profile}
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


def reads_keyring(text: str, profile: str, name: str) -> bool:
    """Whether the configuration's `[profiles.PROFILE]` already reads keyring entry `name`."""
    try:
        profiles = tomllib.loads(text).get("profiles", {}) if text else {}
    except tomllib.TOMLDecodeError:
        return False  # add_profile_to_config says what is wrong with it
    held = profiles.get(profile) if isinstance(profiles, dict) else None
    return isinstance(held, dict) and held.get("source_keyring") == name


def use_keyring(
    flag: bool | None, view: KeyringView | None, pair: tuple[Path, str, str] | None, name: str
) -> bool:
    """Whether the long-term key goes to (or is read from) keyring entry `name`: --keyring says
    yes (77 when the keyring is locked or absent), --no-keyring no; by default, yes when the
    keyring is unlocked and there is a pair to store or the entry holds one."""
    if flag is False or view is None:
        return False
    if flag and view.state != "unlocked":
        raise KeyringUnavailable(f"--keyring: {view.detail}; nothing was written (or pass --no-keyring)")
    if view.state != "unlocked" or (pair is None and view.held is None):
        if flag:
            raise UsageError(
                f"--keyring: no long-term pair in the .env files, and {entry_label(name)} holds none: "
                "paste the IAM user's pair into the .env, or move one there with "
                f"`credhelper adopt-keys --to-keyring {name} --from-profile PROFILE`"
            )
        return False
    if pair is not None and view.held is not None and view.held.access_key_id != pair[1]:
        raise ConfigError(
            f"{entry_label(name)} already holds another key ({mask_key_id(view.held.access_key_id)}); "
            "credhelper never replaces a long-term key: pick another --source-profile name"
            + ("" if flag else ", or pass --no-keyring")
        )
    return True


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


def _refuse_shadowing_credentials(profile: Profile, environ: Mapping[str, str]) -> None:
    """A pair in the credentials file's [PROFILE] would win over the credential_process init adds."""
    path = shared_credentials_path(environ)
    _, text = _read_text(path)
    own = keeps_credentials_section(profile, path, profile.name)
    if (problem := shadowing_credentials(path, text, profile.name, own)) is not None:
        raise ConfigError(problem)


def plan_init(request: InitRequest, environ: Mapping[str, str], keyring: KeyringView | None = None) -> Plan:
    """Every file change init would make, or the reason it refuses. Reads files; writes nothing.
    `keyring`: what was found of the OS keyring (None: not looked at, the credentials file)."""
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

    env_texts: dict[Path, str] = {}
    for env_file in request.env_files:
        if not env_file.parent.is_dir():
            raise UsageError(f"--env-file {env_file}: directory {env_file.parent} does not exist")
        found = read_target(EnvFileTarget(env_file))  # never blocks on a FIFO, refuses over 1 MiB
        env_texts[env_file] = found.text if found is not None else ""
    pair = find_pair(env_texts)
    old, text = _read_text(request.config_file)
    wanted = request.keyring
    if wanted is None and reads_keyring(text, request.profile, request.source_profile):
        wanted = True  # set up with the keyring before: only the keyring will do (77 when it is locked)
    in_keyring = use_keyring(wanted, keyring, pair, request.source_profile)

    new_config = add_profile_to_config(
        request.config_file, text, request.profile, profile_settings(request, home, in_keyring)
    )
    try:
        # Validated as every later command will load it, so init never writes what they refuse.
        profiles = config_from_data(tomllib.loads(new_config), str(request.config_file), environ).profiles
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{request.config_file}: adding the profile would not parse ({error})") from None
    changes += _change(request.config_file, old, new_config, PRIVATE_FILE)

    adopt = None
    keyring_pair = None
    if pair is not None and in_keyring:
        env_file, key_id, secret = pair
        adopt = PairToAdopt(env_file, key_id)
        held = keyring.held if keyring is not None else None
        keyring_pair = None if held == LongTermPair(key_id, secret) else LongTermPair(key_id, secret)
    elif pair is not None:
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
        process_args = [*config_args(str(request.config_file)), "credential-process", request.profile]
        command = shell_command([*request.command, *process_args])
        values = process_profile_values(command, request.region)
        earlier = earlier_spelling(request.command)
        earlier_commands = [] if earlier is None else [shell_command([*earlier, *process_args])]
        new_text = add_process_profile(path, text, request.profile, values, earlier_commands)
        _refuse_shadowing_credentials(profiles[request.profile], environ)
        changes += _change(path, old, new_text, PRIVATE_FILE, holds_secret=holds_long_term_secret)

    if request.systemd:
        path = unit_path(environ)
        old, _ = _read_text(path)
        unit = render_unit(credhelper_command)
        changes += _change(path, old, unit, UNIT_MODE)
    by_default = in_keyring and request.keyring is None
    return Plan(profiles[request.profile], changes, adopt, in_keyring, keyring_pair, by_default)


def describe_dry_run(plan: Plan, request: InitRequest) -> str:
    parts = [diff_text(change) for change in plan.changes]
    if plan.keyring_by_default:
        parts.append(keyring_announcement(request.source_profile))
    if plan.adopt is not None:
        where = entry_label(request.source_profile) if plan.keyring else f"[{request.source_profile}]"
        parts.append(
            f"{plan.adopt.env_file}: the long-term key {mask_key_id(plan.adopt.key_id)} moves to "
            f"{where}; after it is verified, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, "
            "AWS_SESSION_TOKEN and AWS_CREDENTIAL_EXPIRATION get temporary credentials\n"
        )
    elif request.env_files:
        parts.append(
            f"{', '.join(map(str, request.env_files))}: temporary credentials are written at the refresh\n"
        )
    if not plan.changes and plan.adopt is None:
        parts.append(f"profile {request.profile}: already set up; no file would change\n")
    return "".join(parts) + "dry run: nothing was written\n"


def keyring_announcement(name: str) -> str:
    return (
        f"the long-term key is kept in the OS keyring ({entry_label(name)}), not in ~/.aws/credentials; "
        "to keep it in the credentials file instead, run init with --no-keyring\n"
    )
