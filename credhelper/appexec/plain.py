"""Plain `credhelper exec`: becoming the command, with its environment (`environment`). On a warm
cache it runs from here without the CLI framework (`main_exec_fast`, called by `credhelper.main`),
so wrapping a command costs little more than an interpreter start; anything else falls through to
the full CLI. Keep its imports few and light."""

from __future__ import annotations

import errno
import os
import sys
import time
from collections.abc import Mapping, Sequence
from typing import NoReturn

from ..cache import Cache
from ..config import load_config
from ..errors import CommandNotExecutable, CommandNotFound, CredhelperError
from ..fastpath import parse_leading_options
from ..paths import cache_dir_path
from ..signals import as_a_shell_leaves_them
from .environment import child_environment, credential_values


def not_runnable(command: str, error: OSError | ValueError) -> CredhelperError:
    """An empty command name, or one with a NUL in it (ValueError from execve), is not found, as
    in a shell: 127."""
    if isinstance(error, ValueError) or error.errno in (errno.ENOENT, errno.ENOTDIR):
        if not command:
            return CommandNotFound("'': command not found; give the command to run after --")
        return CommandNotFound(f"{command}: command not found; check its name and PATH")
    return CommandNotExecutable(f"{command}: cannot run it: {error.strerror}; check that it is an executable")


def replace_process(command: Sequence[str], env: dict[str, str]) -> NoReturn:
    """Become `command`, with the signal state a shell would give it: ignored signals stay
    ignored across execve, and Python ignores SIGPIPE and SIGXFSZ for itself."""
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        with as_a_shell_leaves_them():
            os.execvpe(command[0], list(command), env)
    except (OSError, ValueError) as error:
        raise not_runnable(command[0], error) from None


def parse_plain_exec_argv(argv: Sequence[str]) -> tuple[str | None, str, list[str]] | None:
    """(config path, profile, command) for `[--config P] [--log-level L] exec PROFILE -- COMMAND...`."""
    parsed = parse_leading_options(argv)
    if parsed is None:
        return None
    config, rest = parsed
    if len(rest) < 4 or rest[0] != "exec" or rest[1].startswith("-") or rest[2] != "--":
        return None
    return config, rest[1], rest[3:]


def main_exec_fast(argv: Sequence[str], environ: Mapping[str, str]) -> None:
    """Become the command when the cache holds credentials for the whole handout window; return
    (for the full CLI to take over) on anything else, a failure included."""
    parsed = parse_plain_exec_argv(argv)
    if parsed is None:
        return
    explicit_config, name, command = parsed
    try:
        profile = load_config(explicit_config, environ).select([name])[0]
        if profile.warnings:
            return  # the full CLI says them
        credentials = Cache(cache_dir_path(environ)).read_credentials(profile.name, profile.fingerprint)
    except Exception:
        return  # the full CLI says what is wrong
    now = time.time()
    if credentials is None or credentials.seconds_left(now) < profile.handout_seconds:
        return
    try:
        values = credential_values(credentials, profile, now, logged=False)
        replace_process(command, child_environment(environ, values))
    except CredhelperError:
        return  # not found or not executable: the full CLI says so
