"""`~/.aws/config`: the `[profile NAME]` section that hands SDKs credhelper's credentials, and
which sections botocore reads as a profile. Text in, text out, no I/O (the file is located by
`credhelper.paths.aws_config_path`); sections are edited as text so every other byte stays."""

from __future__ import annotations

import configparser
import shlex
from collections.abc import Mapping
from pathlib import Path

from ..errors import ConfigError
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


def add_process_profile(path: Path, text: str, profile: str, values: Mapping[str, str]) -> str:
    """`text` with `[profile NAME]` holding `values`. A section that already holds other settings
    is refused (78): it is someone's, and credential_process beside them would change their meaning."""
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
    conflicting = sorted(key for key, value in existing.items() if values.get(key) != value)
    if conflicting:
        raise ConfigError(
            f"{path}: [{section}] already holds other settings ({', '.join(conflicting)}); "
            f"remove that section, pick another --profile, or pass --no-aws-config"
        )
    return set_section(text, section, values)
