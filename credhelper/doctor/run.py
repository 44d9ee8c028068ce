"""Running doctor: every check in its own thread under one deadline, and `diagnose`, which gathers
the checks of the configuration, the machine and each profile."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Mapping
from functools import partial
from typing import TYPE_CHECKING

from ..cache import Cache, cache_dir_path
from ..config import Config, load_config
from ..endpoint.discovery import read_endpoint
from ..errors import CredhelperError
from ..profile import Profile
from ..refresher import new_sts_gateway
from ..targets.delivery import adopted_checker
from ..targets.registry import profile_targets
from .checks_aws import (
    blocked_finding,
    check_aws_config,
    check_clock,
    check_role,
    check_session,
    check_shared_credentials,
    check_source,
    unreadable_aws_file,
)
from .checks_keyring import check_keyring, check_keyring_files, plaintext_pairs
from .checks_local import check_cache, check_daemon, check_endpoint, check_environment
from .checks_rotation import check_key_age
from .checks_targets import check_target_file
from .findings import FAIL, OK, Check, Finding

if TYPE_CHECKING:
    pass


def run_bounded(checks: list[tuple[str | None, str, Check]], timeout: float) -> list[Finding]:
    """Run every check at once; one that has not answered by the deadline fails with that reason."""
    results: list[list[Finding] | None] = [None] * len(checks)

    def runner(index: int, check: Check, profile: str | None, name: str) -> None:
        try:
            results[index] = check()
        except CredhelperError as error:
            results[index] = [Finding(profile, name, FAIL, str(error))]
        except Exception as error:  # a bug in a check must not hide the others
            results[index] = [
                Finding(profile, name, FAIL, f"internal error: {type(error).__name__}: {error}")
            ]

    threads = []
    for index, (profile, name, check) in enumerate(checks):
        thread = threading.Thread(target=runner, args=(index, check, profile, name), daemon=True)
        thread.start()
        threads.append(thread)
    deadline = time.monotonic() + timeout
    findings: list[Finding] = []
    for index, thread in enumerate(threads):
        thread.join(max(0.0, deadline - time.monotonic()))
        profile, name, _ = checks[index]
        found = results[index]
        if thread.is_alive() or found is None:
            findings.append(
                Finding(profile, name, FAIL, f"no answer within {timeout:g} s: check the network")
            )
        else:
            findings.extend(found)
    return findings


def profile_checks(
    profile: Profile, environ: Mapping[str, str], cache: Cache, timeout: float
) -> list[tuple[str | None, str, Check]]:
    make_gateway = new_sts_gateway
    name = profile.name
    try:
        current = cache.read_credentials(name, profile.fingerprint)
    except CredhelperError:  # a cache directory that cannot be used: the cache finding says why
        current = None
    endpoint = make_gateway().endpoint(profile)
    blocked = unreadable_aws_file(environ)
    checks: list[tuple[str | None, str, Check]] = [
        (name, "source credentials", lambda: check_source(profile, make_gateway())),
        (name, "role", lambda: check_role(profile, make_gateway(), cache)),
    ]
    if profile.source_keyring:
        checks.append((name, "keyring", lambda: check_keyring(profile)))
    if blocked is not None:
        checks = [(name, check, partial(blocked_finding, name, check, blocked)) for _, check, _ in checks]
    checks += [
        (name, "clock", lambda: check_clock(profile, endpoint, timeout)),
        (name, "session", lambda: check_session(profile)),
        (name, "credential_process", lambda: check_aws_config(profile, environ)),
        (name, "source key age", lambda: check_key_age(profile, cache, time.time())),
    ]
    adopted = adopted_checker(environ)
    for target in profile_targets(profile):
        checks.append((name, "target", partial(check_target_file, profile, target, current, adopted)))
    return checks


def failed(check: str, detail: str) -> Check:
    """A check whose failure is known before it runs."""
    return lambda: [Finding(None, check, FAIL, detail)]


def endpoint_checks(
    environ: Mapping[str, str], directory: str, config: Config
) -> list[tuple[str | None, str, Check]]:
    """The endpoint's check, when one is configured or a daemon published one; a runtime
    directory that cannot be trusted is that check's failure, not doctor's."""
    try:
        served = config.serve or read_endpoint(environ, directory) is not None
    except CredhelperError as error:
        return [(None, "endpoint", failed("endpoint", str(error)))]
    return [(None, "endpoint", lambda: check_endpoint(environ, directory, config))] if served else []


def diagnose(
    config_option: str | None, names: tuple[str, ...], environ: Mapping[str, str], timeout: float
) -> list[Finding]:
    try:
        config = load_config(config_option, environ)
        profiles = config.select(list(names))
    except CredhelperError as error:
        return [Finding(None, "configuration", FAIL, str(error))]
    findings = [Finding(None, "configuration", OK, f"{config.path}: {len(config.profiles)} profile(s)")]
    directory = cache_dir_path(environ)
    cache = Cache(directory)
    checks: list[tuple[str | None, str, Check]] = [
        (None, "environment", lambda: check_environment(environ)),
        (None, "cache", lambda: check_cache(environ)),
        (None, "credentials file", lambda: check_shared_credentials(environ)),
        (None, "long-term key", lambda: plaintext_pairs(environ)),
        (None, "keyring file", lambda: check_keyring_files(environ)),
    ]
    if os.path.isabs(directory):
        checks.append((None, "daemon", lambda: check_daemon(directory, config)))
        checks += endpoint_checks(environ, directory, config)
    else:  # the daemon's lock and (without XDG_RUNTIME_DIR) its endpoint record are in there
        unusable = f"not checked: its lock is in the cache directory {directory}"
        checks.append((None, "daemon", failed("daemon", unusable)))
    for profile in profiles:
        checks += profile_checks(profile, environ, cache, timeout)
    return findings + run_bounded(checks, timeout)
