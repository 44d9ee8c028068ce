"""The loaded configuration: every profile, validated."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from .configfile import config_path, missing_config_advice, read_config_data, session_name_default
from .errors import ConfigError
from .profile import Profile, parse_daemon, parse_profiles


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
    data = read_config_data(path, missing_config_advice(explicit, environ))
    profiles = parse_profiles(data, path, session_name_default())
    return Config(path=Path(path), profiles=profiles, serve=parse_daemon(data, path))


def expand_path(raw: str) -> Path:
    return Path(os.path.expandvars(os.path.expanduser(raw)))
