"""`~/.aws/config`: the `[profile NAME]` section that hands SDKs credhelper's credentials, and
which sections botocore reads as a profile. Text in, text out, no I/O (the file is located by
`credhelper.paths.aws_config_path`); sections are edited as text so every other byte stays."""

from __future__ import annotations

import configparser
import io
import shlex
from collections.abc import Collection, Mapping
from pathlib import Path

from ..credentials import mask_key_id
from ..errors import ConfigError
from .dotenv import is_temporary_key_id
from .ini import set_section


def section_name(profile: str) -> str:
    return "default" if profile == "default" else f"profile {profile}"


def profile_named_by(section: str) -> str | None:
    """The profile botocore reads a section of ~/.aws/config as (configloader.build_profile_map):
    `[profile  x]`, `[profile "x"]` and `[profile x]` are all profile x; `[default]` is default."""
    if section == "default":
        return section
    if not section.startswith("profile"):
        return None
    try:
        parts = shlex.split(section)
    except ValueError:
        return None
    return parts[1] if len(parts) == 2 else None


def sections_of_profile(sections: Mapping[str, Mapping[str, str]], profile: str) -> list[str]:
    """Every section botocore reads as `profile`, in file order (the last one wins in botocore)."""
    return [name for name in sections if profile_named_by(name) == profile]


def profile_settings(sections: Mapping[str, Mapping[str, str]], profile: str) -> Mapping[str, str] | None:
    """The settings botocore reads for `profile`, or None when no section names it."""
    names = sections_of_profile(sections, profile)
    return sections[names[-1]] if names else None


def parse_config(path: Path, text: str) -> dict[str, dict[str, str]]:
    """Every section of an AWS config file; one it cannot read with certainty is refused."""
    parser = configparser.RawConfigParser(strict=True, interpolation=None, default_section="\0")
    try:
        parser.read_string(text, source=str(path))
    except configparser.Error as error:
        first = str(error).splitlines()[0]
        raise ConfigError(f"{path}: cannot be read as an AWS config file ({first}); fix it first") from None
    return {name: dict(parser.items(name)) for name in parser.sections()}


def process_profile_values(command: str, region: str | None) -> dict[str, str]:
    values = {"credential_process": command}
    if region:
        values["region"] = region
    return values


def add_process_profile(
    path: Path, text: str, profile: str, values: Mapping[str, str], earlier_commands: Collection[str] = ()
) -> str:
    """`text` with `[profile NAME]` holding `values`. A section that already holds other settings
    is refused (78): it is someone's, and credential_process beside them would change their meaning.
    A credential_process among `earlier_commands` (this credhelper as init wrote it before) is
    init's own, and replaced."""
    section = section_name(profile)
    sections = parse_config(path, text)
    spelt_otherwise = [name for name in sections_of_profile(sections, profile) if name != section]
    if spelt_otherwise:
        raise ConfigError(
            f"{path}: [{spelt_otherwise[0]}] is already profile {profile} as SDKs read the file; a "
            f"[{section}] beside it would change what it means: remove that section, pick another "
            "--profile, or pass --no-aws-config"
        )
    existing = sections.get(section)
    if existing is None:
        return set_section(text, section, values)
    conflicting = sorted(
        key
        for key, value in existing.items()
        if values.get(key) != value and not (key == "credential_process" and value in earlier_commands)
    )
    if conflicting:
        raise ConfigError(
            f"{path}: [{section}] already holds other settings ({', '.join(conflicting)}); "
            f"remove that section, pick another --profile, or pass --no-aws-config"
        )
    return set_section(text, section, values)



def shadowing_credentials(path: Path, text: str, profile: str, own_section: bool) -> str | None:
    """Why SDKs would never run profile `profile`'s credential_process, or None. botocore reads
    the shared credentials file (`text`, at `path`) before credential_process: a `[PROFILE]`
    section there holding aws_access_key_id (its own or [DEFAULT]'s) wins. Temporary (ASIA)
    credentials in a section the profile keeps as a `credentials_files` target (`own_section`)
    are credhelper's own; any other pair is someone's. A file botocore cannot read fails every
    SDK first. The one rule of init (which then refuses, 78) and doctor (which fails)."""
    fix = "move the pair to another section (a source profile's) or give credhelper's profile another name"
    try:
        parser = read_as_botocore(text)
    except UnreadableConfig as error:
        return f"{path}: SDKs cannot read it ({error}), so profile {profile} would fail: fix that line"
    if not parser.has_section(profile):
        return None
    held = dict(parser.items(profile))
    if "aws_access_key_id" not in held:
        return None
    key_id = held["aws_access_key_id"].strip()
    if own_section and is_temporary_key_id(key_id) and held.get("aws_session_token", "").strip():
        return None
    return (
        f"{path}: [{profile}] holds a key pair ({mask_key_id(key_id)}) that SDKs use before "
        f"profile {profile}'s credential_process, so they would never use credhelper's: {fix}"
    )

# Settings of a profile that give it credentials of its own (botocore's providers, in chain order).
CREDENTIAL_SETTINGS = frozenset(
    {
        "role_arn",
        "source_profile",
        "credential_source",
        "web_identity_token_file",
        "sso_session",
        "sso_start_url",
        "sso_account_id",
        "sso_role_name",
        "sso_region",
        "login_session",
        "credential_process",
        "aws_access_key_id",
        "aws_secret_access_key",
        "aws_session_token",
        "aws_security_token",
    }
)


class UnreadableConfig(ValueError):
    """A config file botocore cannot read (configloader.raw_config_parse raises ConfigParseError)."""


def botocore_parser() -> configparser.RawConfigParser:
    """The parser botocore reads the shared files with (configloader.raw_config_parse): configparser's
    defaults, so `[DEFAULT]`'s keys belong to every section and an indented line continues a value."""
    return configparser.RawConfigParser()


def read_as_botocore(text: str) -> configparser.RawConfigParser:
    """`text` read exactly as botocore reads the file (UTF-8, universal newlines); UnreadableConfig
    naming only the line, never its text (it may be a secret), when botocore could not read it."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise UnreadableConfig("not UTF-8") from None
    parser = botocore_parser()
    try:
        parser.read_file(io.StringIO(text, newline=None))
    except configparser.Error as error:
        line = getattr(error, "lineno", None) or (
            error.errors[0][0] if isinstance(error, configparser.ParsingError) and error.errors else None
        )
        where = f"line {line}: " if line else ""
        raise UnreadableConfig(f"{where}{type(error).__name__}") from None
    return parser


def _as_read(parser: configparser.RawConfigParser) -> dict[str, dict[str, str]]:
    """What botocore gets from a parser: every section's settings, DEFAULT's included."""
    return {name: dict(parser.items(name)) for name in parser.sections()}


def without_default_credentials(text: str) -> str | None:
    """`text` (a config file) for a command that must get its credentials from an endpoint: read
    as botocore reads it, then written again without the credential settings of every section
    botocore reads as the default profile and of configparser's `[DEFAULT]` (whose keys every
    section inherits: the other sections keep what they inherited, written into them). Every other
    setting stays as botocore reads it; comments and layout do not (the copy is private to the
    command). None when there is nothing to drop; UnreadableConfig when botocore cannot read it."""
    parser = read_as_botocore(text)
    before = _as_read(parser)
    dropped = [key for key in parser.defaults() if key in CREDENTIAL_SETTINGS]
    for key in dropped:
        parser.remove_option(parser.default_section, key)
    changed = bool(dropped)
    for name, settings in before.items():
        if profile_named_by(name) == "default":
            for key in CREDENTIAL_SETTINGS:
                changed = parser.remove_option(name, key) or changed
        else:
            for key in dropped:
                if not parser.has_option(name, key):
                    parser.set(name, key, settings[key])  # inherited from [DEFAULT]: kept
    if not changed:
        return None
    expected = _as_read(parser)
    out = io.StringIO()
    parser.write(out)
    copy = out.getvalue()
    if _as_read(read_as_botocore(copy)) != expected:  # configparser writes what it reads; checked
        raise UnreadableConfig("its settings do not survive a copy")
    return copy
