"""The loaded configuration: every profile, validated."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from .configfile import missing_config_advice, read_config_data, session_name_default
from .errors import ConfigError
from .paths import config_path, expand_user_path
from .profile import DEFAULT_CONTAINERS_PORT, Profile, parse_containers, parse_daemon, parse_profiles

__all__ = [
    "Config",
    "check_target_paths",
    "config_from_data",
    "expand_path",
    "expanded_variables",
    "load_config",
]


@dataclass(frozen=True)
class Config:
    path: Path
    profiles: dict[str, Profile]
    serve: str | None = None
    serve_containers: bool = False
    containers_port: int = DEFAULT_CONTAINERS_PORT

    def select(self, names: Sequence[str]) -> list[Profile]:
        """The named profiles (all of them when none are named); an unknown name is a config error."""
        if not names:
            return list(self.profiles.values())
        for name in names:
            if name not in self.profiles:
                known = ", ".join(sorted(self.profiles))
                raise ConfigError(f"unknown profile {name!r}; {self.path} defines: {known}")
        return [self.profiles[name] for name in names]


def expand_path(raw: str) -> Path:
    return Path(expand_user_path(raw))


def load_config(explicit: str | None, environ: Mapping[str, str]) -> Config:
    """The one loader: every command, the fast paths included, accepts exactly what it accepts."""
    path = config_path(explicit, environ)
    return config_from_data(read_config_data(path, missing_config_advice(explicit, environ)), path, environ)


def config_from_data(data: Mapping[str, object], path: str, environ: Mapping[str, str]) -> Config:
    """The parsed TOML of `path`, validated whole: what every command accepts. `environ` is the
    environment the configuration is used in (it can choose the STS endpoint)."""
    profiles = parse_profiles(data, path, session_name_default(), environ)
    check_target_paths(profiles, path)
    serve = parse_daemon(data, path)
    serve_containers, containers_port = parse_containers(data, path)
    return Config(Path(path), profiles, serve, serve_containers, containers_port)


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


def _configured(profile: Profile) -> list[tuple[str, str, str]]:
    """Each target of the profile: the setting that names it, the text it is named by, its section."""
    return [("env_files", raw, "") for raw in profile.env_files] + [
        ("credentials_files", raw, section) for raw, section in profile.credentials_files
    ]


_VARIABLE = re.compile(r"\$(\w+)|\$\{([^}]*)\}", re.ASCII)  # as posixpath.expandvars reads them


def validation_inputs(
    config: Config, environ: Mapping[str, str]
) -> tuple[dict[str, str | None], dict[str, str]]:
    """What validating `config` read besides the file itself: every environment variable the
    expansion of its target paths read (`expanded_variables`), set or not, and each expanded
    target path's resolved form. The same configuration is valid again only while these are
    unchanged (the ready answer records them)."""
    names: set[str] = set()
    resolved: dict[str, str] = {}
    for profile in config.profiles.values():
        for _, raw, _ in _configured(profile):
            names.update(expanded_variables(raw))
            path = expand_user_path(raw)
            resolved[path] = os.path.realpath(path)
    return {name: environ.get(name) for name in sorted(names)}, resolved


def expanded_variables(raw: str) -> list[str]:
    """The variables `expand_user_path(raw)` reads: HOME for a leading `~` (read even when unset,
    for then the password database answers), and every `$NAME` and `${NAME}` that
    os.path.expandvars meets in what os.path.expanduser gives, which is the text after HOME's
    value has been put in: a `$VAR` inside HOME, or inside a home directory, is read as well."""
    names = ["HOME"] if raw.startswith("~") else []
    return names + [a or b for a, b in _VARIABLE.findall(os.path.expanduser(raw))]


def check_target_paths(profiles: Mapping[str, Profile], source: str) -> None:
    """Target paths are absolute once expanded (the daemon's working directory is not yours),
    and one file, or one section of a credentials file, belongs to one profile: two would
    overwrite each other forever."""
    owners: dict[tuple[str, str], tuple[str, str]] = {}
    for profile in profiles.values():
        for setting, raw, section in _configured(profile):
            where = f"{source}: [profiles.{profile.name}] {setting}"
            path = expand_user_path(raw)
            if not os.path.isabs(path):
                raise ConfigError(
                    f"{where}: {raw!r} is not an absolute path once ~ and $VARIABLES are expanded "
                    f"(it gives {path!r}); write it from / or ~"
                )
            _check_path_length(where, raw, path)
            claim = (os.path.realpath(path), section)  # a symlinked target is the file it points at
            shown = raw + (f" [{section}]" if section else "")
            if claim in owners and owners[claim][0] != profile.name:
                other, other_raw = owners[claim]
                raise ConfigError(
                    f"{where}: {shown} is the same target as {other_raw} of profile {other}; one "
                    "file belongs to one profile, or the two would overwrite each other forever: "
                    "remove it from one of them"
                )
            owners.setdefault(claim, (profile.name, shown))
