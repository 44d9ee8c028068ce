"""`adopt-keys --to-keyring NAME`: a long-term pair moved out of a `.env` or a section of the shared
credentials file into the OS keyring (DESIGN section 13). In this order: read, stored (and read
back), verified with GetCallerIdentity, the profiles that used it switched to `source_keyring`,
and only then removed from where it was, every other byte kept. A failure before the removal
leaves the pair where it was (a keyring entry made for it is deleted again) and says so."""

from __future__ import annotations

import contextlib
import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from .adopt import AdoptRun, caller_probe, long_term_pair, profiles_targeting, refresh_targeting
from .config import Config, config_from_data, load_config
from .credentials import mask_key_id
from .errors import ConfigError, CredhelperError, UsageError
from .fileio import PRIVATE_FILE
from .formats.configtoml import switch_to_keyring
from .formats.dotenv import emptied_pair, long_term_key_ids
from .formats.ini import section_pair, without_key_pair
from .keystore import LongTermPair, delete_pair, entry_label, held_pair, store_pair
from .paths import shared_credentials_path
from .profile import Profile
from .settings import PROFILE_NAME
from .targets.credsection import CREDENTIALS_FILE_SETTING, write_credentials_file
from .targets.files import read_target_file, rewrite_file

if TYPE_CHECKING:
    from .sts import StsGateway


@dataclass(frozen=True)
class PairSource:
    """Where a long-term pair is now, and how to take it out of there."""

    label: str  # as messages name it
    pair: LongTermPair
    remove: Callable[[str | Path], None]  # lock_dir -> None; every other byte kept


def extended(error: CredhelperError, more: str) -> CredhelperError:
    """The same failure, with the same exit status, told with `more`."""
    told = CredhelperError(f"{error}; {more}")
    told.exit_code = error.exit_code
    return told


def env_source(env_file: Path) -> PairSource:
    key_id, secret = long_term_pair(env_file)

    def remove(lock_dir: str | Path) -> None:
        empty_pair_in_env(env_file, key_id, lock_dir)

    return PairSource(str(env_file), LongTermPair(key_id, secret), remove)


def empty_pair_in_env(env_file: Path, key_id: str, lock_dir: str | Path) -> None:
    """AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY emptied where the pair of `key_id` is, every
    other byte kept (the pair is in the keyring, and a profile writing the file fills them)."""

    def transform(text: str) -> str:
        return emptied_pair(text) if key_id in long_term_key_ids(text) else text

    rewrite_file(env_file, transform, lock_dir, str(env_file), "env_files")


def section_source(section: str, environ: Mapping[str, str]) -> PairSource:
    if not PROFILE_NAME.match(section):
        raise UsageError(f"--from-profile {section!r}: use letters, digits, '.', '_' or '-'")
    path = shared_credentials_path(environ)
    found = read_target_file(Path(os.path.realpath(path)), str(path), CREDENTIALS_FILE_SETTING)
    if found is None:
        raise UsageError(f"--from-profile {section}: {path} does not exist")
    key_id, secret = section_pair(found.text, path, section)

    def remove(lock_dir: str | Path) -> None:
        write_credentials_file(path, lambda text: without_key_pair(text, path, section, key_id), lock_dir)

    return PairSource(f"[{section}] of {path}", LongTermPair(key_id, secret), remove)


def store_new(name: str, pair: LongTermPair) -> bool:
    """The pair stored (and read back) in entry `name`; False when it held it already. Another
    pair there is never replaced (78)."""
    held = held_pair(name)
    if held == pair:
        return False
    if held is not None:
        raise ConfigError(
            f"{entry_label(name)} already holds another key ({mask_key_id(held.access_key_id)}); "
            "credhelper never replaces a long-term key: pick another --to-keyring name"
        )
    store_pair(name, pair)
    return True


def switched_config(
    config: Config, names: list[str], name: str, environ: Mapping[str, str]
) -> Callable[[str], str]:
    """The transform of config.toml's text that switches `names` to entry `name`, validated as
    every command will load it."""

    def transform(text: str) -> str:
        new = switch_to_keyring(text, config.path, names, name)
        config_from_data(tomllib.loads(new), str(config.path), environ)
        return new

    return transform


@dataclass
class KeyringAdoption:
    key_id: str
    source: str
    caller_arn: str
    stored: bool  # False: the entry held the pair already
    switched: list[str]


def adopt_to_keyring(
    name: str,
    source: PairSource,
    users: list[Profile],
    template: Profile | None,
    config: Config | None,
    gateway: StsGateway,
    environ: Mapping[str, str],
    lock_dir: str | Path,
) -> KeyringAdoption:
    """Store, verify, switch `users` (the profiles that used the pair), then remove the pair.
    `template` gives the STS endpoint the pair is verified at."""
    if not PROFILE_NAME.match(name):
        raise UsageError(f"--to-keyring {name!r}: use letters, digits, '.', '_' or '-'")
    pair = source.pair
    still = f"the long-term key {mask_key_id(pair.access_key_id)} is still in {source.label}"
    names = [p.name for p in users if p.source_keyring != name]
    transform = switched_config(config, names, name, environ) if config and names else None
    stored = False
    try:
        if transform is not None and config is not None:
            transform(config.path.read_text(encoding="utf-8"))  # refused now, before anything changes
        stored = store_new(name, pair)
        caller = gateway.caller_arn(caller_probe(name, template, environ, source_keyring=name))
        if transform is not None and config is not None:
            rewrite_file(
                config.path, transform, lock_dir, str(config.path), "the file", new_file_mode=PRIVATE_FILE
            )
    except CredhelperError as error:
        raise extended(error, _undo_entry(name, stored) + still) from None
    except OSError as error:
        raise extended(
            CredhelperError(f"{config.path if config else name}: {error.strerror}"),
            _undo_entry(name, stored) + still,
        ) from None
    except BaseException:  # interrupted, or a bug: the key is still where it was; so is the keyring
        _undo_entry(name, stored)
        raise
    try:
        source.remove(lock_dir)
    except CredhelperError as error:
        raise extended(
            error,
            f"{mask_key_id(pair.access_key_id)} is in {entry_label(name)} and works, but is still in "
            f"{source.label}: remove it from there yourself",
        ) from None
    return KeyringAdoption(pair.access_key_id, source.label, caller, stored, names)


def _undo_entry(name: str, stored: bool) -> str:
    if not stored:
        return ""
    with contextlib.suppress(CredhelperError):
        delete_pair(name)
        return f"{entry_label(name)} was removed again; "
    return f"{entry_label(name)} could not be removed again; "


def run_to_keyring(
    name: str, env_file: Path | None, from_profile: str | None, run: AdoptRun
) -> None:
    """`adopt-keys --to-keyring NAME` with `--env-file F` or `--from-profile P`, told as it goes."""
    config, environ, echo = run.config, run.environ, run.echo
    profiles = list(config.profiles.values()) if config else []
    if env_file is not None:
        source = env_source(env_file)
        users = [p for p in profiles_targeting(config, env_file) if p.source_keyring in (None, name)]
    else:
        assert from_profile is not None
        source = section_source(from_profile, environ)
        users = [p for p in profiles if p.source_profile == from_profile]
    template = users[0] if users else (profiles[0] if profiles else None)
    done = adopt_to_keyring(name, source, users, template, config, run.gateway, environ, run.cache.ensure())
    where = "is now" if done.stored else "was already"
    echo(
        f"{mask_key_id(done.key_id)} {where} in {entry_label(name)} of the OS keyring and works: "
        f"{done.caller_arn}"
    )
    for profile in done.switched:
        echo(f'profile {profile} now reads it: source_keyring = "{name}" in {config.path if config else ""}')
    echo(f"removed from {source.label}")
    if env_file is not None:
        try:
            reloaded = load_config(str(config.path), environ) if config else None
            refresh_targeting(env_file, name, "source_keyring", replace(run, config=reloaded))
        except CredhelperError as error:
            raise extended(
                error,
                f"the key is safe in {entry_label(name)}; {env_file} has empty AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY until `credhelper refresh` succeeds",
            ) from None
    elif not users:
        echo(
            f"no credhelper profile used [{from_profile}]: in the profiles that should use this key, "
            f'write source_keyring = "{name}" (in place of source_profile)'
        )
