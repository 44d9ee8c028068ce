"""Failures that end a command: each carries its documented exit status and one line for the user."""


class CredhelperError(Exception):
    """A failure the user can act on. The message is one line: what is wrong and how to fix it."""

    exit_code = 1


class UsageError(CredhelperError):
    exit_code = 2


class ConfigError(CredhelperError):
    exit_code = 78


class AwsRefusedError(CredhelperError):
    """AWS said no: AccessDenied, InvalidClientTokenId, expired source credentials, no MFA code."""

    exit_code = 77


class StsUnavailableError(CredhelperError):
    """STS could not be reached, or kept throttling after retries."""

    exit_code = 75


EXIT_FAILURE = 1
