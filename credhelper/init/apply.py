"""Applying `credhelper init`'s plan: every change written through `targets.rewrite_file` (the
directories it needs made), undone when a later step fails, then the credentials verified and
supplied and the systemd user service started."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ..credentials import mask_key_id
from ..errors import ConfigError, CredhelperError
from ..fileio import PRIVATE_DIR, read_bytes_or_none
from ..keyringadopt import empty_pair_in_env, store_new
from ..keystore import delete_pair, entry_label, held_pair, keyring_condition
from ..paths import shared_credentials_path
from ..policy import Want
from ..refresher import Refresher
from ..supply import supply
from ..targets.files import rewrite_file
from ..unit import UNIT_NAME
from .plan import FileChange, InitRequest, KeyringView, Plan, keyring_announcement, plan_init


def _make_dirs(directory: Path, created: list[Path]) -> None:
    missing: list[Path] = []
    while not directory.exists():
        missing.append(directory)
        directory = directory.parent
    for path in reversed(missing):
        os.mkdir(path, PRIVATE_DIR)
        created.append(path)


def _write(change: FileChange, expected: str, new: str, lock_dir: str | Path) -> None:
    """`expected` becomes `new` in the file, through the one writer of files that may hold a
    secret (symlinks written through, a secret-holding file 0600); a file that is no longer
    `expected` (changed since it was read) is refused."""

    def transform(text: str) -> str:
        if text != expected:
            raise ConfigError(f"{change.path}: changed while init ran; run init again")
        return new

    rewrite_file(
        change.path,
        transform,
        lock_dir,
        str(change.path),
        "the file",
        holds_secret=change.holds_secret,
        new_file_mode=change.new_file_mode,
    )


def _remove_created(change: FileChange) -> None:
    """Remove a file init created, if it still holds what init wrote (through a symlink: the
    file it points at; the link stays, as it was)."""
    real = Path(os.path.realpath(change.path))
    found = read_bytes_or_none(real)
    if found is not None and found == change.new.encode("utf-8"):
        real.unlink()


@dataclass
class Applied:
    """What has been written so far, so it can be put back."""

    lock_dir: str | Path
    changes: list[FileChange] = field(default_factory=list)
    directories: list[Path] = field(default_factory=list)

    def undo(self) -> list[str]:
        """Put every file back; returns what could not be put back (to tell the user)."""
        failed: list[str] = []
        for change in reversed(self.changes):
            try:
                if change.old is None:
                    _remove_created(change)
                else:
                    _write(change, change.new, change.old.decode("utf-8"), self.lock_dir)
            except (OSError, CredhelperError) as error:
                failed.append(f"{change.path} ({getattr(error, 'strerror', None) or error})")
        for directory in reversed(self.directories):
            with contextlib.suppress(OSError):
                directory.rmdir()
        self.changes.clear()
        self.directories.clear()
        return failed


def apply_changes(changes: list[FileChange], lock_dir: str | Path) -> Applied:
    applied = Applied(lock_dir)
    for change in changes:
        try:
            _make_dirs(change.path.parent, applied.directories)
            old = change.old.decode("utf-8") if change.old is not None else ""
            _write(change, old, change.new, lock_dir)
        except BaseException as error:
            left = applied.undo()
            if not isinstance(error, OSError | CredhelperError):
                raise
            detail = error.strerror if isinstance(error, OSError) else str(error)
            told = CredhelperError(
                f"{change.path}: cannot write: {detail}; "
                + (f"could not put back: {', '.join(left)}" if left else "every file was put back as it was")
            )
            if isinstance(error, CredhelperError):
                told.exit_code = error.exit_code
            raise told from None
        applied.changes.append(change)
    return applied


def extended(error: CredhelperError, more: str) -> CredhelperError:
    """The same failure, with the same exit status, told with `more` (some errors, such as
    LockTimeout, cannot be rebuilt from a message alone)."""
    told = CredhelperError(f"{error}; {more}")
    told.exit_code = error.exit_code
    return told


def undo_and_raise(applied: Applied, error: CredhelperError) -> CredhelperError:
    left = applied.undo()
    where = f"could not put back: {', '.join(left)}" if left else "every file was put back as it was"
    return extended(error, where)


def run_commands(
    commands: list[list[str]], runner: Callable[[list[str]], tuple[int, str]]
) -> tuple[bool, str]:
    for command in commands:
        code, output = runner(command)
        if code != 0:
            return False, f"`{' '.join(command)}` failed: {output.strip() or f'exit {code}'}"
    return True, ""


SYSTEMD_COMMANDS = [
    ["systemctl", "--user", "daemon-reload"],
    ["systemctl", "--user", "enable", "--now", UNIT_NAME],
]


def source_hint(error: CredhelperError, source_profile: str, keyring: bool = False) -> CredhelperError:
    holder = (
        f"keyring entry {source_profile!r} must hold a working pair"
        if keyring
        else f"--source-profile {source_profile} must name a profile with working keys"
    )
    return extended(
        error,
        f"no long-term key was found in the .env files, so {holder} (or paste the IAM user's pair "
        "into the .env and run init again)",
    )


def look_at_keyring(request: InitRequest) -> KeyringView | None:
    """The keyring's state and the entry --source-profile holds, unless --no-keyring; never a
    prompt (a locked keyring is only looked at)."""
    if request.keyring is False:
        return None
    condition = keyring_condition()
    if condition.state != "unlocked":
        return KeyringView(condition.state, condition.detail)
    return KeyringView(condition.state, condition.detail, held_pair(request.source_profile))


def store_in_keyring(plan: Plan, name: str) -> bool:
    """The plan's pair stored in entry `name` and read back (True), before any file is written."""
    return plan.keyring_pair is not None and store_new(name, plan.keyring_pair)


def forget_stored(name: str, stored: bool) -> None:
    if stored:
        with contextlib.suppress(CredhelperError):
            delete_pair(name)


def execute_init(
    request: InitRequest,
    environ: Mapping[str, str],
    echo: Callable[[str], None],
    refresher: Refresher,
    systemctl: Callable[[list[str]], tuple[int, str]] | None,
    keyring: KeyringView | None = None,
) -> None:
    """Plan, apply, verify, refresh; `systemctl` is None when no user manager answers; `keyring`
    what look_at_keyring found."""
    plan = plan_init(request, environ, keyring)
    gateway = refresher.gateway
    name = request.source_profile
    if plan.keyring_by_default:
        echo(keyring_announcement(name).rstrip("\n"))
    if plan.adopt is None:
        try:
            gateway.caller_arn(plan.profile)
        except CredhelperError as error:
            raise source_hint(error, request.source_profile, plan.keyring) from None
    stored = store_in_keyring(plan, name)
    try:
        applied = apply_changes(plan.changes, refresher.cache.ensure())
    except BaseException:
        forget_stored(name, stored)
        raise
    try:
        caller = gateway.caller_arn(plan.profile) if plan.adopt is not None else None
        refresher.obtain(plan.profile, plan.profile.handout_seconds)
    except CredhelperError as error:
        forget_stored(name, stored)
        raise undo_and_raise(applied, error) from None
    except BaseException:  # interrupted, or a bug: still leave the files as they were
        forget_stored(name, stored)
        applied.undo()
        raise
    if plan.adopt is not None and plan.keyring:
        echo(
            f"{mask_key_id(plan.adopt.key_id)} moved to {entry_label(name)} of the OS keyring "
            f"and works: {caller}"
        )
        # Outside the undo: the pair is stored and verified; the .env's copy goes, so that the
        # refresh below can write over it (and no file holds the long-term secret).
        empty_pair_in_env(plan.adopt.env_file, plan.adopt.key_id, refresher.cache.ensure())
    elif plan.adopt is not None:
        echo(
            f"{mask_key_id(plan.adopt.key_id)} moved to [{request.source_profile}] of "
            f"{shared_credentials_path(environ)} and works: {caller}"
        )
    for change in plan.changes:
        echo(f"{'created' if change.created else 'updated'} {change.path}")
    if not plan.changes:
        echo(f"profile {request.profile}: already set up; no file changed")
    # Outside the undo: once a `.env` is rewritten, the adopted pair must stay where it was moved.
    report = supply(refresher, plan.profile, Want(plan.profile.handout_seconds), environ).report
    if report.errors:
        raise extended(
            report.errors[0],
            f"the configuration is written: fix this, then run `credhelper refresh {request.profile}`",
        )
    for path in report.written:
        echo(f"wrote temporary credentials to {path}")
    if request.systemd:
        start_service(systemctl, echo)


def start_service(
    systemctl: Callable[[list[str]], tuple[int, str]] | None, echo: Callable[[str], None]
) -> None:
    commands = " && ".join(" ".join(command) for command in SYSTEMD_COMMANDS)
    if systemctl is None:
        echo(f"no systemd user manager answered; to start the service, run: {commands}")
        return
    ok, problem = run_commands(SYSTEMD_COMMANDS, systemctl)
    if ok:
        echo(f"systemd user service {UNIT_NAME} enabled and started")
    else:
        echo(f"warning: {problem}; start the service yourself: {commands}")
