"""doctor's checks of every file a profile keeps fresh, through the same read, guard and state as
every write: the file itself, its mode, a long-term key, the current credentials, the Bedrock API
key, and whether git would publish it."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

from ..credentials import Credentials, mask_key_id
from ..errors import CredhelperError, LongTermKeyError
from ..interfaces import KeyPairCheck, Target
from ..profile import Profile
from ..targets.envfile import EnvFileTarget
from ..targets.files import placeholder_credentials, read_target
from .checks_keyring import keyring_route
from .findings import FAIL, OK, WARN, Finding, mode_finding


def git_finding(profile: str, path: Path) -> Finding:
    name = "git"
    if shutil.which("git") is None:
        return Finding(profile, name, OK, "git is not installed")
    directory = str(path.parent)

    def git(*args: str) -> int:
        done = subprocess.run(
            ["git", "-C", directory, *args],
            capture_output=True,
            timeout=10,
            stdin=subprocess.DEVNULL,
        )
        return done.returncode

    if git("rev-parse", "--is-inside-work-tree") != 0:
        return Finding(profile, name, OK, f"{path} is not in a git repository")
    if git("ls-files", "--error-unmatch", "--", path.name) == 0:
        return Finding(
            profile,
            name,
            FAIL,
            f"{path} is tracked by git: `git rm --cached {path.name}`, add it to "
            ".gitignore, commit, and deactivate any key it ever held that was pushed",
        )
    if git("check-ignore", "-q", "--", path.name) != 0:
        return Finding(
            profile,
            name,
            WARN,
            f"{path} is not ignored by git (one `git add .` from a leak): add {path.name} to .gitignore",
        )
    return Finding(profile, name, OK, f"{path} is ignored by git")


def check_target_file(
    profile: Profile, target: Target, current: Credentials | None, adopted: KeyPairCheck
) -> list[Finding]:
    """A target through the same read, guard and state as every write: a new kind is checked too."""
    name = profile.name
    try:
        found = read_target(target)
    except CredhelperError as error:  # a FIFO, over 1 MiB, not UTF-8, its directory missing
        return [Finding(name, "target", FAIL, str(error))]
    if found is None:
        return [
            Finding(name, "target", FAIL, f"{target.label}: does not exist: run `credhelper refresh {name}`")
        ]
    findings = [
        Finding(name, "target", OK, f"{target.label} is a regular file"),
        mode_finding(name, "target mode", target.real_path, found.mode, target.must_be_private(found.text)),
    ]
    try:
        target.guard(found.text, adopted)
        target.render(found.text, placeholder_credentials())  # what the write would refuse, too
    except LongTermKeyError as error:
        route = keyring_route(profile, target.path) if isinstance(target, EnvFileTarget) else ""
        findings.append(Finding(name, "long-term key", FAIL, f"{error}{route}"))
    except CredhelperError as error:  # e.g. a credentials file that cannot be read with certainty
        return [*findings, Finding(name, "target", FAIL, str(error))]
    else:
        detail = f"{target.label} holds no long-term key credhelper would refuse to overwrite"
        findings.append(Finding(name, "long-term key", OK, detail))
    findings.append(current_finding(name, target.label, target.state(found.text, current), current))
    if isinstance(target, EnvFileTarget):
        findings += bedrock_findings(name, target, target.bedrock_state(found.text, current))
    findings.append(git_finding(name, target.path))
    return findings


def bedrock_findings(profile: str, target: EnvFileTarget, state: str) -> list[Finding]:
    """The target's AWS_BEARER_TOKEN_BEDROCK, which SDKs prefer over the credentials beside it."""
    name = "bedrock api key"
    if state == "current":
        return [Finding(profile, name, OK, f"{target.label} holds a Bedrock API key of the current session")]
    if state == "stale":
        return [
            Finding(
                profile,
                name,
                FAIL,
                f"{target.label} holds a short-term Bedrock API key of another session, which SDKs "
                f"prefer and which expires with it: run `credhelper refresh {profile}`, or delete "
                "that line if it stays",
            )
        ]
    if state == "missing":
        return [
            Finding(
                profile,
                name,
                FAIL,
                f"{target.label} holds no Bedrock API key: run `credhelper refresh {profile}`",
            )
        ]
    return []


def current_finding(profile: str, where: str, state: str, current: Credentials | None) -> Finding:
    if current is None or current.is_expired(time.time()):
        return Finding(
            profile, "credentials", FAIL, f"no valid credentials cached: run `credhelper refresh {profile}`"
        )
    if state == "current":
        return Finding(
            profile,
            "credentials",
            OK,
            f"{where} holds the current credentials ({mask_key_id(current.access_key_id)})",
        )
    return Finding(
        profile,
        "credentials",
        FAIL,
        f"{where} does not hold the current credentials: run "
        f"`credhelper refresh {profile}` (and keep `credhelper run` going)",
    )
