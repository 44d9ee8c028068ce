"""The loaded configuration: every profile, validated."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from .configfile import config_path, missing_config_advice, read_config_data, session_name_default
from .errors import ConfigError
from .profile import Profile, parse_daemon, parse_profiles
from .targets import Target, expand_path, profile_targets

__all__ = ["Config", "check_target_paths", "config_from_data", "expand_path", "load_config"]


@dataclass(frozen=True)
class Config:
    path: Path
    profiles: dict[str, Profile]
    serve: str | None = None

    def select(self, names: Sequence[str]) -> list[Profile]:
        """The named profiles (all of them when none are named); an unknown name is a config error."""
        if not names:
            return list(self.profiles.values())
        for name in names:
            if name not in self.profiles:
                known = ", ".join(sorted(self.profiles))
                raise ConfigError(f"unknown profile {name!r}; {self.path} defines: {known}")
        return [self.profiles[name] for name in names]


def load_config(explicit: str | None, environ: Mapping[str, str]) -> Config:
    path = config_path(explicit, environ)
    return config_from_data(read_config_data(path, missing_config_advice(explicit, environ)), path)


def config_from_data(data: Mapping[str, object], path: str) -> Config:
    """The parsed TOML of `path`, validated whole: what every command accepts."""
    profiles = parse_profiles(data, path, session_name_default())
    check_target_paths(profiles, path)
    return Config(path=Path(path), profiles=profiles, serve=parse_daemon(data, path))


NAME_MAX_BYTES = 255
PATH_MAX_BYTES = 4095  # PATH_MAX less the terminating NUL


def _check_path_length(where: str, raw: str, path: str) -> None:
    """A name or path the file system cannot hold would fail at every write, forever."""
    encoded = os.fsencode(path)
    if len(encoded) > PATH_MAX_BYTES:
        raise ConfigError(
            f"{where}: {raw[:60]!r}... is {len(encoded)} bytes long once expanded; a path can be at "
            f"most {PATH_MAX_BYTES}: shorten it"
        )
    longest = max(encoded.split(b"/"), key=len)
    if len(longest) > NAME_MAX_BYTES:
        raise ConfigError(
            f"{where}: a file name in {raw[:60]!r}... is {len(longest)} bytes long; a name can be at "
            f"most {NAME_MAX_BYTES}: shorten it"
        )


def _configured(profile: Profile) -> list[tuple[Target, str]]:
    """Each target of the profile beside the text that names it in the configuration."""
    raw = list(profile.env_files) + [path for path, _ in profile.credentials_files]
    return list(zip(profile_targets(profile), raw, strict=True))


def check_target_paths(profiles: Mapping[str, Profile], source: str) -> None:
    """Target paths are absolute once expanded (the daemon's working directory is not yours),
    and one file, or one section of a credentials file, belongs to one profile: two would
    overwrite each other forever."""
    owners: dict[tuple[str, str], tuple[str, str]] = {}
    for profile in profiles.values():
        for target, raw in _configured(profile):
            where = f"{source}: [profiles.{profile.name}] {target.setting}"
            if not target.path.is_absolute():
                raise ConfigError(
                    f"{where}: {raw!r} is not an absolute path once ~ and $VARIABLES are expanded "
                    f"(it gives {str(target.path)!r}); write it from / or ~"
                )
            _check_path_length(where, raw, str(target.path))
            claim = target.claim()
            shown = raw + (f" [{claim[1]}]" if claim[1] else "")
            if claim in owners and owners[claim][0] != profile.name:
                other, other_raw = owners[claim]
                raise ConfigError(
                    f"{where}: {shown} is the same target as {other_raw} of profile {other}; one "
                    "file belongs to one profile, or the two would overwrite each other forever: "
                    "remove it from one of them"
                )
            owners.setdefault(claim, (profile.name, shown))
