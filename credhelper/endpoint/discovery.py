"""Where an app finds the daemon's endpoint: the token file and endpoint.json the daemon publishes
in the runtime directory, and the record read back only when it is this user's own, private, and
left by the daemon running now (docs/architecture.md, section 6)."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

from ..endpointurl import IGNORE_VARIABLE, configured_urls_ignored, shown_url
from ..errors import ConfigError, CredhelperError
from ..fileio import (
    PRIVATE_FILE,
    atomic_write,
    read_regular_file,
    read_trusted_json,
    remove_quietly,
    trusted_private_dir,
)
from ..paths import (
    CACHE_DIR_FIX,
    CONTAINER_TOKEN_NAME,
    container_token_dir,
    container_token_path,
    daemon_lock_path,
    daemon_pid_path,
    endpoint_path,
    is_trusted,
    runtime_dir,
    token_path,
)

if TYPE_CHECKING:
    from ..profile import Profile


SMALL_FILE_MAX_BYTES = 64 * 1024  # endpoint.json: read without following a symlink
PID_FILE_MAX_BYTES = 64
RUNTIME_DIR_FIX = "remove it, or set XDG_RUNTIME_DIR to a directory of your own"
# The variables that choose a profile's STS endpoint when its configuration does not
# (profile.resolve_sts_endpoint): the daemon publishes its own values, "" for unset.
STS_VARIABLES = ("AWS_ENDPOINT_URL_STS", "AWS_ENDPOINT_URL", IGNORE_VARIABLE)


def publish_endpoint(
    token: str, url: str, environ: Mapping[str, str], cache_dir: str, containers_url: str | None = None
) -> None:
    """Write the token file (0600) and endpoint.json, which `credhelper env` reads: `url` is where
    this host's apps ask; `containers_url` (the listener on 169.254.170.2, when it runs) where
    containers do, which read the token from its own directory (`container_token_dir`)."""
    directory = runtime_dir(environ, cache_dir)
    info = {"url": url, "token_file": token_path(environ, cache_dir), "pid": str(os.getpid())}
    info.update({name: environ.get(name, "") for name in STS_VARIABLES})
    if containers_url is not None:
        info["containers_url"] = containers_url
        info["containers_token_dir"] = container_token_dir(environ, cache_dir)
    try:
        trusted_private_dir(directory, "runtime directory", RUNTIME_DIR_FIX)
        atomic_write(token_path(environ, cache_dir), token.encode(), PRIVATE_FILE)
        if containers_url is not None:
            shared = container_token_dir(environ, cache_dir)
            trusted_private_dir(shared, "token directory", RUNTIME_DIR_FIX)
            refuse_anything_else_shared(shared)
            atomic_write(container_token_path(environ, cache_dir), token.encode(), PRIVATE_FILE)
        else:
            with contextlib.suppress(OSError):  # a former daemon's; no container can use it now
                remove_quietly(container_token_path(environ, cache_dir))
        atomic_write(endpoint_path(environ, cache_dir), json.dumps(info).encode(), PRIVATE_FILE)
    except OSError as error:
        unpublish_endpoint(environ, cache_dir)
        where = error.filename or directory
        raise CredhelperError(
            f"cannot write the endpoint's token in {where}: {error.strerror}; make {directory} "
            "writable, or set XDG_RUNTIME_DIR to a writable directory of your own"
        ) from None


def refuse_anything_else_shared(directory: str) -> None:
    """The token directory is mounted into containers whole: refused (78) when it is a symlink (the
    mount would show what it points to) or holds anything but the token (and a write's own
    temporary file)."""
    if os.path.islink(directory):
        raise ConfigError(
            f"{directory}: the containers' token directory is a symlink, so a container mounting it "
            "would see where it points; remove the symlink (credhelper makes the directory)"
        )
    others = sorted(
        name
        for name in os.listdir(directory)
        if name != CONTAINER_TOKEN_NAME and not name.startswith(f".{CONTAINER_TOKEN_NAME}.credhelper-")
    )
    if others:
        raise ConfigError(
            f"{directory}: the containers' token directory holds {', '.join(others[:3])}, which a "
            "container mounting it would see; move them elsewhere"
        )


def unpublish_endpoint(environ: Mapping[str, str], cache_dir: str) -> None:
    """Remove the token files and endpoint.json, unless the directory is not this user's."""
    if not is_trusted(runtime_dir(environ, cache_dir)):
        return
    record, token = endpoint_path(environ, cache_dir), token_path(environ, cache_dir)
    for path in (record, token, container_token_path(environ, cache_dir)):
        # In an unwritable directory they stay; `credhelper env` checks the daemon's lock anyway.
        with contextlib.suppress(OSError):
            remove_quietly(path)


def read_endpoint(environ: Mapping[str, str], cache_dir: str) -> dict[str, str] | None:
    """The endpoint record, read only from a runtime directory and a file that are this user's
    own and private (paths.untrusted_reason): else someone could send apps to their endpoint."""
    if not trusted_private_dir(runtime_dir(environ, cache_dir), "runtime directory", RUNTIME_DIR_FIX, False):
        return None
    record = endpoint_path(environ, cache_dir)
    info = read_trusted_json(record, "endpoint record", RUNTIME_DIR_FIX, SMALL_FILE_MAX_BYTES)
    if info is None or not all(isinstance(info.get(k), str) for k in ("url", "token_file")):
        return None
    return info


def daemon_lock_held(cache_dir: str) -> bool:
    """Whether a daemon holds its lock now: if this process can take it, none runs."""
    try:
        fd = os.open(daemon_lock_path(cache_dir), os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        os.close(fd)  # releases the lock if it was taken
    return False


def recorded_daemon_pid(cache_dir: str) -> str | None:
    """What the daemon wrote in its pid file (stripped), or None when there is no pid file.
    Never blocks or follows a symlink; a file that is not a small regular file raises OSError."""
    found = read_regular_file(daemon_pid_path(cache_dir), PID_FILE_MAX_BYTES)
    return found[0].decode(errors="replace").strip() if found is not None else None


def _alive(pid_text: str) -> bool:
    if not pid_text.isdigit():
        return False
    try:
        os.kill(int(pid_text), 0)
    except OSError:  # gone, or another user's process: not our daemon either way
        return False
    return True


def live_endpoint(environ: Mapping[str, str], cache_dir: str) -> dict[str, str] | None:
    """The endpoint of the daemon running now, or None: never one a dead daemon left behind."""
    trusted_private_dir(cache_dir, "cache directory", CACHE_DIR_FIX, create=False)  # the daemon's lock
    info = read_endpoint(environ, cache_dir)
    if info is None or not daemon_lock_held(cache_dir) or not _alive(str(info.get("pid", ""))):
        return None
    try:
        recorded = recorded_daemon_pid(cache_dir)
    except OSError:
        return None
    if recorded is not None and recorded != info["pid"]:
        return None
    return info


def running_endpoint(
    environ: Mapping[str, str], cache_dir: str, profile: Profile, containers: bool = False
) -> dict[str, str]:
    """The endpoint of the daemon running now (`live_endpoint`), for `profile` as loaded in
    `environ`; an error saying how to start one when none runs, or what differs when the daemon
    gets this profile's credentials from another STS endpoint (`daemon_sts_endpoint`). With
    `containers`, one that serves containers too (its record has `containers_url`)."""
    info = live_endpoint(environ, cache_dir)
    keys = ("containers_url", "containers_token_dir")
    if containers and not all(isinstance((info or {}).get(key), str) for key in keys):
        raise CredhelperError(
            "no running daemon serves containers: set serve_containers = true in a [daemon] table "
            "(or run `credhelper run --serve-containers`), check that `credhelper containers setup` "
            "was done, reload or restart the daemon, then run this again"
        )
    if info is None:
        raise CredhelperError(
            "no credentials endpoint is running: start `credhelper run --serve` "
            "(or set serve in a [daemon] table), then run this again"
        )
    served = daemon_sts_endpoint(info, profile)
    if served is None:
        raise CredhelperError(
            f"the running daemon (pid {info['pid']}) does not say which STS endpoint it gets "
            "credentials from (it predates this credhelper): restart it, then run this again"
        )
    if served != profile.sts_endpoint:
        raise CredhelperError(
            f"the running daemon gets profile {profile.name}'s credentials from {shown_url(served)}, "
            f"but {chosen_by(environ)} here chooses {shown_url(profile.sts_endpoint)}, and credentials "
            "of one STS are never handed out for another: give the daemon and this shell the same "
            f"AWS_ENDPOINT_URL_STS, AWS_ENDPOINT_URL and {IGNORE_VARIABLE}, or use "
            f"`credhelper env {profile.name} --static`"
        )
    return info


def daemon_sts_endpoint(info: Mapping[str, object], profile: Profile) -> str | None:
    """The STS endpoint the daemon that published `info` resolves for `profile`: the one rule
    (profile.resolve_sts_endpoint) applied to the daemon's variables; None when the record does
    not hold them."""
    from ..profile import resolve_sts_endpoint

    variables: dict[str, str] = {}
    for name in STS_VARIABLES:
        # A daemon from before IGNORE_VARIABLE was honoured did not record it, and resolved as if unset.
        value = info.get(name, "" if name == IGNORE_VARIABLE else None)
        if not isinstance(value, str):
            return None
        variables[name] = value
    return resolve_sts_endpoint(profile.sts_endpoint_url, profile.region, variables)


def chosen_by(environ: Mapping[str, str]) -> str:
    """What chose the STS endpoint of a profile without `sts_endpoint_url` in `environ`."""
    if configured_urls_ignored(environ):
        return f"the region's default (${IGNORE_VARIABLE} is true)"
    name = next((name for name in STS_VARIABLES[:2] if environ.get(name)), None)
    return f"${name}" if name else "the region's default (no AWS_ENDPOINT_URL_STS or AWS_ENDPOINT_URL)"
