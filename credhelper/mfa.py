"""Getting an MFA code: from `mfa_command` when set, else from the terminal, else nowhere."""

from __future__ import annotations

import os
import re
from typing import TextIO

from . import children
from .errors import AwsRefusedError, MfaCodeNeeded
from .profile import Profile

CODE = re.compile(r"^\d{6}$")
MFA_COMMAND_TIMEOUT = 30
TERMINAL = "/dev/tty"


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


def _terminal(writing: bool) -> TextIO:
    """The controlling terminal, one way. Opened, never created: on a system without /dev/tty, a
    plain open for writing would make a regular file there."""
    fd = os.open(TERMINAL, (os.O_WRONLY if writing else os.O_RDONLY) | os.O_NOCTTY)
    try:
        if writing:
            return open(fd, "w", encoding="utf-8", errors="replace")
        return open(fd, encoding="utf-8", errors="replace")
    except BaseException:
        os.close(fd)
        raise


def code_from_terminal(profile: Profile) -> str | None:
    """A code typed at the controlling terminal, or None when there is none to ask. The terminal is
    opened twice, once to write the prompt and once to read the answer: a terminal cannot seek, and
    Python refuses to open one read-write text file over something that cannot."""
    try:
        with _terminal(writing=True) as prompt, _terminal(writing=False) as answer:
            prompt.write(f"MFA code for {profile.mfa_serial} (profile {profile.name}): ")
            prompt.flush()
            typed = answer.readline()
            if not typed:
                prompt.write("\n")  # Ctrl-D leaves the cursor after the prompt
    except OSError:
        return None  # no controlling terminal (a daemon, an SDK started without one)
    again = f"run `credhelper refresh {profile.name}` again and type the code your MFA device shows"
    if not typed:
        raise MfaCodeNeeded(f"profile {profile.name}: no MFA code was typed (end of input): {again}")
    code = typed.strip()
    if not CODE.match(code):  # what was typed is not repeated: it may be a password typed too soon
        raise AwsRefusedError(f"profile {profile.name}: what was typed is not a 6-digit MFA code: {again}")
    return code


def code_needed(profile: Profile, asking: bool, asker: int | None = None) -> MfaCodeNeeded:
    """The failure of a process that needs a code and cannot ask for one: another process is
    asking a person for it (`asking`, its pid `asker` when known), or nobody can be asked here."""
    if asking:
        who = f"process {asker}" if asker is not None else "another credhelper process"
        return MfaCodeNeeded(
            f"profile {profile.name}: an MFA code is needed and {who} is asking for it on its "
            "terminal now: type the code there, then try again"
        )
    return MfaCodeNeeded(
        f"profile {profile.name}: an MFA code is needed and none can be had here: run "
        f"`credhelper refresh {profile.name}` in a terminal, or set mfa_command"
    )
