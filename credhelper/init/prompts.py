"""The questions `credhelper init` asks on a terminal, and the request built from the answers and
flags: the only user of click outside `cli.py`."""

from __future__ import annotations

import os
import re
from pathlib import Path

import click

from ..config import expand_path
from ..errors import ConfigError, UsageError
from ..fileio import read_bytes_or_none
from ..formats.dotenv import managed_values
from ..profile import DEFAULT_REGION, REGION, ROLE_ARN
from ..unit import credhelper_argv
from .plan import InitRequest


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
    keyring: bool | None = None,
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
        keyring=keyring,
    )
