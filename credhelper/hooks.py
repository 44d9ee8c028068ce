"""`on_refresh` hooks: argv, no shell, a timeout, and never a secret in their environment. Each runs
in a process group of its own (`children`), ended with credhelper."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping

from . import children
from .credentials import Credentials
from .profile import Profile

HOOK_TIMEOUT_SECONDS = 60
log = logging.getLogger("credhelper.hooks")
SECRET_VARIABLES = (
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_BEARER_TOKEN_BEDROCK",
)


def hook_environment(base: Mapping[str, str], profile: Profile, credentials: Credentials) -> dict[str, str]:
    env = {k: v for k, v in base.items() if k not in SECRET_VARIABLES}
    env["CREDHELPER_PROFILE"] = profile.name
    env["CREDHELPER_EXPIRATION"] = credentials.expiration_text
    return env


def run_hooks(profile: Profile, credentials: Credentials, environ: Mapping[str, str]) -> bool:
    """Run the profile's on_refresh command; its output goes to stderr. False when it failed."""
    if not profile.on_refresh:
        return True
    argv = [os.path.expanduser(part) for part in profile.on_refresh]
    try:
        finished = children.run(
            argv,
            HOOK_TIMEOUT_SECONDS,
            env=hook_environment(environ, profile, credentials),
            stdout=sys.stderr.fileno(),
            stderr=sys.stderr.fileno(),
        )
    except FileNotFoundError:
        log.warning("profile %s: on_refresh command %r not found; fix on_refresh", profile.name, argv[0])
        return False
    except OSError as exc:
        log.warning("profile %s: on_refresh hook could not start: %s", profile.name, exc.strerror)
        return False
    if children.stopping():
        return False  # ended with credhelper: nothing to warn about
    if finished.status is None:
        log.warning(
            "profile %s: on_refresh hook ran over %d s and was stopped", profile.name, HOOK_TIMEOUT_SECONDS
        )
        return False
    if finished.status != 0:
        log.warning("profile %s: on_refresh hook exited %d", profile.name, finished.status)
        return False
    return True
