"""Getting an MFA code: from `mfa_command` when set, else from the terminal, else nowhere."""

from __future__ import annotations

import re

from . import children
from .errors import AwsRefusedError, MfaCodeNeeded
from .profile import Profile

CODE = re.compile(r"^\d{6}$")
MFA_COMMAND_TIMEOUT = 30


def code_from_command(profile: Profile) -> str:
    try:
        finished = children.run(list(profile.mfa_command), MFA_COMMAND_TIMEOUT, capture=True)
    except OSError as exc:
        raise MfaCodeNeeded(
            f"profile {profile.name}: mfa_command could not give a code ({type(exc).__name__}): "
            "fix mfa_command, or run `credhelper refresh` in a terminal"
        ) from None
    if finished.status is None:
        raise MfaCodeNeeded(
            f"profile {profile.name}: mfa_command gave no code within {MFA_COMMAND_TIMEOUT} s: "
            "fix mfa_command, or run `credhelper refresh` in a terminal"
        )
    code = finished.stdout.decode("utf-8", "replace").strip()
    if finished.status != 0 or not CODE.match(code):
        raise MfaCodeNeeded(
            f"profile {profile.name}: mfa_command exited {finished.status} without printing a "
            "6-digit code: fix mfa_command, or run `credhelper refresh` in a terminal"
        )
    return code


def code_from_terminal(profile: Profile) -> str | None:
    try:
        with open("/dev/tty", "r+") as tty:
            tty.write(f"MFA code for {profile.mfa_serial} (profile {profile.name}): ")
            tty.flush()
            code = tty.readline().strip()
    except OSError:
        return None
    if not CODE.match(code):
        raise AwsRefusedError(f"profile {profile.name}: {code!r} is not a 6-digit MFA code")
    return code


def mfa_code(profile: Profile, interactive: bool) -> str:
    if profile.mfa_command:
        return code_from_command(profile)
    code = code_from_terminal(profile) if interactive else None
    if code is None:
        raise MfaCodeNeeded(
            f"profile {profile.name}: an MFA code is needed and none can be had here: run "
            f"`credhelper refresh {profile.name}` in a terminal, or set mfa_command"
        )
    return code
