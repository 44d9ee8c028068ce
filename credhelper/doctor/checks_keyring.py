"""doctor's checks of the OS keyring (DESIGN section 13): whether it answers and is unlocked for each
profile with `source_keyring` (looked at, never unlocked: no prompt), a GNOME keyring under HOME
stored without a password, and where a long-term secret is still in plain text, with the command
that moves it into the keyring."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from ..credentials import is_long_term_key_id, mask_key_id
from ..errors import CredhelperError
from ..formats.ini import parse_sections
from ..keystore import KeyringCondition, entry_label, keyring_condition, unencrypted_keyrings
from ..paths import shared_credentials_path
from ..profile import Profile
from ..targets.credsection import CREDENTIALS_FILE_SETTING
from ..targets.files import read_target_file
from .findings import FAIL, OK, WARN, Finding


def check_keyring(profile: Profile, condition: KeyringCondition | None = None) -> list[Finding]:
    """The keyring a `source_keyring` profile reads its key from: answers and unlocked, or the fix."""
    condition = condition or keyring_condition()
    entry = entry_label(str(profile.source_keyring))
    if condition.state == "unlocked":
        return [
            Finding(profile.name, "keyring", OK, f"{condition.backend} answers and is unlocked ({entry})")
        ]
    what = "is locked" if condition.state == "locked" else "does not answer"
    return [
        Finding(
            profile.name,
            "keyring",
            FAIL,
            f"the OS keyring {what}, so no new session can be made from {entry} (valid credentials "
            f"are still handed out): {condition.detail}",
        )
    ]


def check_keyring_files(environ: Mapping[str, str]) -> list[Finding]:
    """A GNOME keyring stored without a password: anyone who can read the file reads every secret."""
    home = environ.get("HOME") or os.path.expanduser("~")
    return [
        Finding(
            None,
            "keyring file",
            WARN,
            f"{path} is a keyring stored without a password: its secrets (a long-term key in it "
            "included) are plain text to anyone who reads the file; give it a password (Seahorse: "
            "right-click the keyring, Change Password), or keep no long-term key in it",
        )
        for path in unencrypted_keyrings(home)
    ]


def plaintext_pairs(environ: Mapping[str, str]) -> list[Finding]:
    """Each section of the shared credentials file holding a long-term pair in plain text, and how
    to move it into the OS keyring: a warning when a keyring is unlocked to take it, else said."""
    path = shared_credentials_path(environ)
    try:
        found = read_target_file(Path(os.path.realpath(path)), str(path), CREDENTIALS_FILE_SETTING)
        sections = parse_sections(found.text, str(path)) if found is not None else {}
    except CredhelperError:
        return []  # the credentials file's other findings say what is wrong with it
    held = [
        (name, keys["aws_access_key_id"].strip())
        for name, keys in sections.items()
        if is_long_term_key_id(keys.get("aws_access_key_id", "").strip())
        and keys.get("aws_secret_access_key", "").strip()
    ]
    if not held:
        return []
    condition = keyring_condition()
    status = WARN if condition.state == "unlocked" else OK
    findings = []
    for name, key_id in held:
        move = f"`credhelper adopt-keys --to-keyring {name} --from-profile {name}`"
        if condition.state == "unlocked":
            detail = f"move it into the OS keyring ({condition.backend}, unlocked) with {move}"
        else:
            detail = f"no OS keyring is unlocked to move it into (see docs/keyring.md); then: {move}"
        findings.append(
            Finding(
                None,
                "long-term key",
                status,
                f"[{name}] of {path} holds a long-term key ({mask_key_id(key_id)}) in plain text: {detail}",
            )
        )
    return findings


def keyring_route(profile: Profile, env_file: Path) -> str:
    """What a long-term key found in a `.env` could become: a keyring entry."""
    name = profile.source_keyring or profile.source_profile or f"{profile.name}-source"
    return (
        f"; or keep it in the OS keyring, out of every file: "
        f"`credhelper adopt-keys --to-keyring {name} --env-file {env_file}`"
    )
