"""Finding and reading the configuration file (DESIGN §3)."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from .errors import ConfigError
from .profile import Profile, default_session_name, parse_profiles


@dataclass(frozen=True)
class Config:
    path: Path
    profiles: dict[str, Profile]

    def select(self, names: tuple[str, ...] | list[str]) -> list[Profile]:
        """The named profiles (all of them when none are named); an unknown name is a config error."""
        if not names:
            return list(self.profiles.values())
        for name in names:
            if name not in self.profiles:
                known = ", ".join(sorted(self.profiles))
                raise ConfigError(f"unknown profile {name!r}; {self.path} defines: {known}")
        return [self.profiles[name] for name in names]


def config_path(explicit: str | None, environ: Mapping[str, str]) -> Path:
    if explicit:
        return Path(explicit).expanduser()
    if environ.get("CREDHELPER_CONFIG"):
        return Path(environ["CREDHELPER_CONFIG"]).expanduser()
    base = environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "credhelper" / "config.toml"


def read_config_data(path: Path) -> dict[str, object]:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: no configuration file; create it with a [profiles.NAME] table "
            "(see the README), or pass --config PATH"
        ) from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the configuration: {exc.strerror}") from None
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text; save the file as UTF-8") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: malformed TOML: {exc}; fix the file and try again") from None


def session_name_default() -> str:
    user = os.environ.get("LOGNAME") or os.environ.get("USER")
    if not user:
        import pwd

        try:
            user = pwd.getpwuid(os.getuid()).pw_name
        except KeyError:
            user = "user"
    return default_session_name(user, os.uname().nodename)


def load_config(explicit: str | None, environ: Mapping[str, str]) -> Config:
    path = config_path(explicit, environ)
    profiles = parse_profiles(read_config_data(path), str(path), session_name_default())
    return Config(path=path, profiles=profiles)


def expand_path(raw: str) -> Path:
    return Path(os.path.expandvars(os.path.expanduser(raw)))
