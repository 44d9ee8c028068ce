"""Locating and reading the configuration file (README: "Configuration reference").
Stdlib only, str paths: the credential-process hot path uses it."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping

from .errors import ConfigError
from .fileio import FileTooLarge, NotRegularFile, read_regular_file
from .paths import config_path, untrusted_reason
from .profile import default_session_name

__all__ = ["config_path", "read_config_data", "session_name_default"]


DEFAULT_PATH_ADVICE = (
    "no configuration file; create it with a [profiles.NAME] table (see the README), or pass --config PATH"
)
CONFIG_MAX_BYTES = 1 << 20


def _read_config_bytes(path: str, missing_advice: str) -> bytes:
    """Never blocks and never reads without bound: a FIFO or device given as the configuration
    would hang every command (and the daemon's reload), /dev/zero would eat the memory."""
    try:
        found = read_regular_file(path, CONFIG_MAX_BYTES, follow_symlinks=True)
    except NotRegularFile as error:
        raise ConfigError(
            f"{path}: the configuration is a {error.kind}, not a regular file; point it at a TOML file"
        ) from None
    except FileTooLarge:
        raise ConfigError(
            f"{path}: the configuration is larger than {CONFIG_MAX_BYTES} bytes; is it the right file?"
        ) from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the configuration: {exc.strerror}") from None
    if found is None:
        raise ConfigError(f"{path}: {missing_advice}")
    reason = untrusted_reason(found[1], allow_root=True, path=path)
    if reason is not None:
        raise ConfigError(
            f"{path}: credhelper does not trust this configuration: {reason}, so someone else could "
            "choose the role and where credentials go; make it your own and writable only by you "
            f"(chmod go-w {path})"
        )
    return found[0]


def read_config_data(path: str, missing_advice: str = DEFAULT_PATH_ADVICE) -> dict[str, object]:
    raw = _read_config_bytes(path, missing_advice)
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text; save the file as UTF-8") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: malformed TOML: {exc}; fix the file and try again") from None


def missing_config_advice(explicit: str | None, environ: Mapping[str, str]) -> str:
    """What to do about a missing configuration file, given how its path was chosen."""
    if explicit:
        return "no such file (given with --config); check the path, or create it with a [profiles.NAME] table"
    if environ.get("CREDHELPER_CONFIG"):
        return (
            "no such file ($CREDHELPER_CONFIG points there); fix or unset CREDHELPER_CONFIG, "
            "or create the file with a [profiles.NAME] table"
        )
    return DEFAULT_PATH_ADVICE


def session_name_default() -> str:
    user = os.environ.get("LOGNAME") or os.environ.get("USER")
    if not user:
        import pwd

        try:
            user = pwd.getpwuid(os.getuid()).pw_name
        except KeyError:
            user = "user"
    return default_session_name(user, os.uname().nodename)
