"""`adopt-keys`: move a long-term key pair out of an app's `.env` into a source profile."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .cache import Cache
    from .sts import StsGateway

from .config import Config
from .credentials import mask_key_id
from .errors import CredhelperError, TargetError, UsageError
from .fileio import make_private_dir
from .formats.dotenv import long_term_key_ids, secret_for_key
from .formats.ini import with_key_pair
from .paths import shared_credentials_path
from .profile import Profile, resolve_sts_endpoint
from .settings import PROFILE_NAME
from .targets.credsection import CREDENTIALS_FILE_SETTING, write_credentials_file
from .targets.envfile import EnvFileTarget
from .targets.files import read_target, read_target_file
from .targets.registry import profile_targets


@dataclass(frozen=True)
class Adoption:
    key_id: str
    credentials_file: Path
    caller_arn: str
    already_there: bool


def long_term_pair(env_file: Path) -> tuple[str, str]:
    """The one long-term pair the `.env` holds, or a usage error saying what is wrong."""
    found = read_target(EnvFileTarget(env_file))
    if found is None:
        raise UsageError(f"{env_file}: no such file; pass the .env that holds the long-term key")
    key_ids = long_term_key_ids(found.text)
    secret = secret_for_key(found.text)
    if not key_ids:
        raise UsageError(f"{env_file}: no long-term key (AKIA…) in AWS_ACCESS_KEY_ID; nothing to adopt")
    if len(set(key_ids)) > 1:
        raise UsageError(f"{env_file}: holds more than one long-term key; keep one pair and retry")
    if not secret:
        raise UsageError(f"{env_file}: AWS_SECRET_ACCESS_KEY is empty; the pair is incomplete")
    return key_ids[0], secret


def adopt_keys(
    env_file: Path,
    source_profile: str,
    environ: Mapping[str, str],
    verify: Callable[[str], str],
    lock_dir: str | Path,
) -> Adoption:
    """Copy the pair into [source_profile] of the shared credentials file (written through a
    symlink, every other byte kept), then prove it works.

    `verify(profile)` returns the caller ARN for the profile, or raises. If it raises, the
    credentials file is put back as it was; the `.env` is never changed here.
    """
    if not PROFILE_NAME.match(source_profile):
        raise UsageError(f"--profile {source_profile!r}: use letters, digits, '.', '_' or '-'")
    key_id, secret = long_term_pair(env_file)
    path = shared_credentials_path(environ)
    label = str(path)
    real = Path(os.path.realpath(path))
    if not real.parent.exists():
        make_private_dir(real.parent)
    before = read_target_file(real, label, CREDENTIALS_FILE_SETTING)
    written: list[str] = []
    originals: list[str] = []

    def add_section(text: str) -> str:
        originals.append(text)
        written.append(with_key_pair(text, path, source_profile, key_id, secret, "--profile"))
        return written[-1]

    if not write_credentials_file(path, add_section, lock_dir):
        return Adoption(key_id, path, verify(source_profile), already_there=True)
    try:
        caller = verify(source_profile)
    except CredhelperError:
        _put_back(path, real, originals[-1] if before is not None else None, written[-1], lock_dir)
        raise
    return Adoption(key_id, path, caller, already_there=False)


def _put_back(path: Path, real: Path, original: str | None, written: str, lock_dir: str | Path) -> None:
    """Undo the adoption, unless someone changed the file since."""

    def restore(text: str) -> str:
        return original if text == written and original is not None else text

    if original is None:
        current = read_target_file(real, str(path), CREDENTIALS_FILE_SETTING)
        if current is not None and current.text == written:
            real.unlink()
        return
    with contextlib.suppress(TargetError):  # changed into something unreadable: leave it to its author
        write_credentials_file(path, restore, lock_dir)


def source_verifier(
    gateway: StsGateway, config: Config | None, environ: Mapping[str, str]
) -> Callable[[str], str]:
    """GetCallerIdentity as the source profile, at the STS endpoint of a credhelper profile that
    uses it (else of any profile, else the default)."""

    def verify(source_profile: str) -> str:
        profiles = list(config.profiles.values()) if config else []
        users = [p for p in profiles if p.source_profile == source_profile] or profiles
        template = users[0] if users else None
        probe = caller_probe(source_profile, template, environ, source_profile=source_profile)
        return gateway.caller_arn(probe)

    return verify


def profiles_targeting(config: Config | None, env_file: Path) -> list[Profile]:
    """Every profile that writes this `.env`, whatever its source: each must now write over the
    long-term pair, or the pair stays in the file."""
    real = EnvFileTarget(env_file).real_path
    return [
        profile
        for profile in (config.profiles.values() if config else [])
        if any(
            isinstance(target, EnvFileTarget) and target.real_path == real
            for target in profile_targets(profile)
        )
    ]


def profile_to_add(source_profile: str, env_file: Path, taken: set[str], key: str = "source_profile") -> str:
    """The configuration a user adds so that a profile writes over the pair left in the `.env`
    (`key`: source_keyring, when the pair is in the keyring)."""
    name = next(n for n in ("bedrock", *(f"bedrock-{i}" for i in range(2, 100))) if n not in taken)
    return "\n".join(
        [
            f"[profiles.{name}]",
            'role_arn = "arn:aws:iam::<account>:role/BedrockAccessRole"',
            f'{key} = "{source_profile}"',
            f'env_files = ["{os.path.abspath(env_file)}"]',
        ]
    )


@dataclass(frozen=True)
class AdoptRun:
    """What each way of adopt-keys works with: the configuration (None when there is none yet),
    the cache, the STS gateway, the environment and where to tell the person what happened."""

    config: Config | None
    cache: Cache
    gateway: StsGateway
    environ: Mapping[str, str]
    echo: Callable[[str], None]


def adopt_into_profile(env_file: Path, source_profile: str, run: AdoptRun) -> None:
    """`adopt-keys --env-file F --profile P`: the pair moved into [P], verified, then every
    profile that writes the `.env` refreshed over it (else the profile to add is printed)."""
    verifier = source_verifier(run.gateway, run.config, run.environ)
    adoption = adopt_keys(env_file, source_profile, run.environ, verifier, run.cache.ensure())
    where = "was already" if adoption.already_there else "is now"
    run.echo(
        f"{mask_key_id(adoption.key_id)} {where} in [{source_profile}] of {adoption.credentials_file} "
        f"and works: {adoption.caller_arn}"
    )
    refresh_targeting(env_file, source_profile, "source_profile", run)


def refresh_targeting(env_file: Path, source: str, key: str, run: AdoptRun) -> None:
    """Every profile that writes the `.env` writes temporary credentials over it now; with none,
    what to add to the configuration is printed."""
    from .refresher import Refresher
    from .supply import refresh_and_deliver

    config = run.config
    targeting = profiles_targeting(config, env_file)
    if not targeting:
        run.echo(
            f"The long-term pair is still in {env_file}: no credhelper profile writes that file. "
            f"Add this profile to {config.path if config else 'the configuration'}, then run "
            "`credhelper refresh` to replace the pair with temporary credentials:"
            if key == "source_profile"
            else f"No credhelper profile writes {env_file}. To keep it supplied, add this profile to "
            f"{config.path if config else 'the configuration'}, then run `credhelper refresh`:"
        )
        run.echo(profile_to_add(source, env_file, set(config.profiles) if config else set(), key))
        return
    refresher = Refresher(run.cache, lambda: run.gateway, interactive=True)
    for profile in targeting:
        supplied = refresh_and_deliver(refresher, profile, run.environ)
        credentials, report = supplied.credentials, supplied.report
        if report.errors:
            raise report.errors[0]
        run.echo(
            f"{env_file} now holds temporary credentials of profile {profile.name}, "
            f"expiring {credentials.expiration_text}"
        )


def adoption_problem(
    env_file: Path | None, source_profile: str | None, to_keyring: str | None, from_profile: str | None
) -> str | None:
    """What is wrong with adopt-keys' options (a usage error), or None."""
    if to_keyring is None:
        if from_profile is not None:
            return "--from-profile needs --to-keyring NAME: it moves a pair into the OS keyring"
        missing = [
            flag for flag, value in (("--env-file", env_file), ("--profile", source_profile)) if not value
        ]
        return f"missing {' and '.join(missing)} (or use --to-keyring NAME)" if missing else None
    if source_profile is not None:
        return "--profile names a ~/.aws/credentials section to write; with --to-keyring, leave it out"
    if env_file is not None and from_profile is not None:
        return "--env-file and --from-profile both name where the pair is now: give one of them"
    if env_file is None and from_profile is None:
        return "--to-keyring needs one of --env-file FILE or --from-profile PROFILE: where the pair is now"
    return None


def caller_probe(
    name: str,
    template: Profile | None,
    environ: Mapping[str, str],
    source_profile: str | None = None,
    source_keyring: str | None = None,
) -> Profile:
    """A profile reading its long-term pair from `source_profile` or `source_keyring`, at the STS
    endpoint of `template` (else the default), for GetCallerIdentity: no role is assumed."""
    return Profile(
        name=name,
        role_arn="arn:aws:iam::000000000000:role/none",  # not called: only the caller is asked for
        role_session_name="credhelper",
        region=template.region if template else None,
        sts_endpoint=template.sts_endpoint if template else resolve_sts_endpoint(None, None, environ),
        source_profile=source_profile,
        source_keyring=source_keyring,
    )
