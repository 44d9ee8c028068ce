"""Failures that end a command: each carries its documented exit status and one line for the user.

Stdlib only and import-free: the credential-process hot path raises some of these.
"""

from __future__ import annotations

EXIT_FAILURE = 1


class CredhelperError(Exception):
    """A failure the user can act on. The message is one line: what is wrong and how to fix it."""

    exit_code = EXIT_FAILURE
    # The daemon's next try after this failure comes within this many seconds, whatever the
    # backoff of failures in a row would say; None: the backoff decides.
    retry_within: float | None = None


class UsageError(CredhelperError):
    exit_code = 2


class ConfigError(CredhelperError):
    exit_code = 78


class TargetError(ConfigError):
    """A target unusable as configured: not a regular file, too large, not UTF-8, a directory
    missing, a credentials file that does not parse."""


class LongTermKeyError(TargetError):
    """A target holds a long-term key that credhelper will not overwrite."""


class AwsRefusedError(CredhelperError):
    """AWS said no: AccessDenied, InvalidClientTokenId, expired source credentials, no MFA code."""

    exit_code = 77


class MfaCodeNeeded(AwsRefusedError):
    """The role needs an MFA code and none can be had here (no terminal, no working mfa_command)."""


class StsUnavailableError(CredhelperError):
    """STS could not be reached, or kept throttling after retries."""

    exit_code = 75


class CommandNotExecutable(CredhelperError):
    """exec: the command exists but cannot be run (permission, not an executable), as in a shell."""

    exit_code = 126


class CommandNotFound(CredhelperError):
    """exec: no such command, as in a shell."""

    exit_code = 127


class LockTimeout(CredhelperError):
    """Another process has held a credhelper lock for longer than the caller would wait."""

    def __init__(self, path: str, holder: int | None, waited: float, message: str | None = None) -> None:
        who = f"process {holder}" if holder is not None else "another process"
        super().__init__(
            message or f"{who} has held the lock {path} for over {waited:.0f} s: if it is stuck, stop it"
        )
        self.path = path
        self.holder = holder


class FileSystemError(CredhelperError):
    """A write or read failing at the OS level: permission, disk full, read-only file system."""

    @classmethod
    def from_os_error(cls, error: OSError, doing: str) -> FileSystemError:
        where = f" {error.filename}" if error.filename else ""
        reason = error.strerror or type(error).__name__
        return cls(f"cannot {doing}{where}: {reason}: free space or fix the permissions, then try again")


class TargetWriteError(FileSystemError):
    """The operating system refused a target's read or write: permission, disk full, read-only."""


class TargetBeingWritten(TargetWriteError):
    """Another process has the target open for writing: written once it closes the file."""


class InternalError(CredhelperError):
    """A bug: an exception nobody expected, kept to one line."""

    @classmethod
    def from_exception(cls, error: BaseException) -> InternalError:
        return cls(
            f"internal error: {type(error).__name__}: {error} (run with --log-level debug for details)"
        )


def as_credhelper_error(error: Exception, doing: str) -> CredhelperError:
    """Every failure as one of the types above, so one backoff and one exit path handle them all."""
    if isinstance(error, CredhelperError):
        return error
    if isinstance(error, OSError):
        return FileSystemError.from_os_error(error, doing)
    return InternalError.from_exception(error)
