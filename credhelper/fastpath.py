"""`credential-process` on a cache hit, without the CLI framework or botocore.

SDKs run the helper every time they refresh, in every process that uses the profile, so the
answer from a warm cache comes through a few stdlib imports. Anything unusual (other options,
bad configuration, a cold or stale cache) returns None and the full CLI takes over.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence

from .cache import Cache, cache_dir_path
from .configfile import config_path, read_config_data, session_name_default
from .profile import parse_profile


def parse_fast_argv(argv: Sequence[str]) -> tuple[str | None, str] | None:
    """(config path, profile) for `[--config P] [--log-level L] credential-process PROFILE`."""
    config: str | None = None
    rest = list(argv)
    while rest and rest[0].startswith("--"):
        option = rest.pop(0)
        name, has_value, value = option.partition("=")
        if name not in ("--config", "--log-level"):
            return None
        if not has_value:
            if not rest:
                return None
            value = rest.pop(0)
        if name == "--config":
            config = value
        elif value.lower() == "debug":
            return None
    if len(rest) != 2 or rest[0] != "credential-process" or rest[1].startswith("-"):
        return None
    return config, rest[1]


def answer_from_cache(argv: Sequence[str], environ: Mapping[str, str]) -> str | None:
    parsed = parse_fast_argv(argv)
    if parsed is None:
        return None
    explicit_config, name = parsed
    try:
        path = config_path(explicit_config, environ)
        profiles = read_config_data(path).get("profiles")
        if not isinstance(profiles, dict) or name not in profiles:
            return None
        profile = parse_profile(name, profiles[name], path, session_name_default())
    except Exception:
        return None
    credentials = Cache(cache_dir_path(environ)).read_credentials(profile.name, profile.fingerprint)
    if credentials is None or credentials.seconds_left(time.time()) < profile.handout_seconds:
        return None
    return credentials.process_json()


def main_fast(argv: Sequence[str]) -> bool:
    answer = answer_from_cache(argv, os.environ)
    if answer is None:
        return False
    os.write(1, (answer + "\n").encode())
    return True
