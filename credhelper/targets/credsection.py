"""The credentials-section target kind: one `[section]` of a shared credentials file, for SDKs
that read a profile from it; and every write and question of that file that needs to read it
(adopt-keys, init, their undo, the daemon's adopted-pair check).

The INI text itself (the strict reader, the byte-preserving section writer) is
`credhelper.formats.ini`; the file is located by `credhelper.paths.shared_credentials_path`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from ..credentials import mask_key_id
from ..errors import LongTermKeyError, TargetError
from ..formats.dotenv import LONG_TERM_KEY_ID, is_temporary_key_id
from ..formats.ini import (
    WRITTEN_KEYS,
    holds_long_term_secret,
    key_line_number,
    parse_sections,
    section_key_lines,
    set_section,
)
from .base import KeyPairCheck, Target
from .files import read_target_file, rewrite_file

if TYPE_CHECKING:
    from ..credentials import Credentials

CREDENTIALS_FILE_SETTING = "AWS_SHARED_CREDENTIALS_FILE"


def write_credentials_file(path: Path, transform: Callable[[str], str], lock_dir: str | Path) -> bool:
    """Every change credhelper makes to the shared credentials file (adopt-keys, init, their undo):
    through the one writer, so it is written through a symlink and ends 0600 holding a long-term
    key. False when it held the text already."""
    return rewrite_file(
        path, transform, lock_dir, str(path), CREDENTIALS_FILE_SETTING, holds_secret=holds_long_term_secret
    )


def holds_key_pair(path: Path, key_id: str, secret: str | None) -> bool:
    """True when some section of the file holds exactly this key id (and this secret, if given).
    A file that cannot be read with certainty is an error, never a no."""
    found = read_target_file(Path(os.path.realpath(path)), str(path), CREDENTIALS_FILE_SETTING)
    if found is None:
        return False
    for section in parse_sections(found.text, str(path)).values():
        if section.get("aws_access_key_id") == key_id and (
            secret is None or section.get("aws_secret_access_key") == secret
        ):
            return True
    return False


@dataclass(frozen=True)
class CredentialsSectionTarget(Target):
    """One `[section]` of a shared credentials file, for SDKs that read a profile from it."""

    section: str = "default"
    setting: ClassVar[str] = "credentials_files"

    @property
    def label(self) -> str:
        return f"{self.path} [{self.section}]"

    def claim(self) -> tuple[str, str]:
        return (str(self.real_path), self.section)

    def guard(self, text: str, adopted: KeyPairCheck) -> None:
        """A long-term key id anywhere credhelper would write (a value, however quoted, or a raw
        line it replaces) is refused; only the id is shown, never the text around it."""
        held = parse_sections(text, str(self.path)).get(self.section, {})
        places = [held.get(key, "") for key in WRITTEN_KEYS] + section_key_lines(text, self.section)
        for place in places:
            if found := LONG_TERM_KEY_ID.search(place):
                raise LongTermKeyError(
                    f"{self.path}: [{self.section}] holds a long-term access key "
                    f"({mask_key_id(found.group(0))}) that credhelper will not overwrite: name another "
                    "section in credentials_files"
                )
        self._guard_lone_secret(text, held, adopted)

    def _guard_lone_secret(self, text: str, held: Mapping[str, str], adopted: KeyPairCheck) -> None:
        """A secret beside no temporary key id is half of a long-term pair (or all that is left
        of one): overwritten only once a source profile holds the pair."""
        secret = held.get("aws_secret_access_key", "").strip()
        key_id = held.get("aws_access_key_id", "").strip()
        if not secret or is_temporary_key_id(key_id) or (key_id and adopted(key_id, secret)):
            return
        line = key_line_number(text, self.section, "aws_secret_access_key")
        raise LongTermKeyError(
            f"{self.path}: line {line}: [{self.section}] aws_secret_access_key holds a secret without "
            "a temporary (ASIA…) key id beside it, likely half of a long-term key pair, which "
            "credhelper will not overwrite: move the pair to a source profile, or delete that line if "
            "you no longer need it (or name another section in credentials_files), then refresh again"
        )

    def render(self, text: str, credentials: Credentials) -> str:
        values = credentials.credentials_file_values()
        before = parse_sections(text, str(self.path))
        merged = set_section(text, self.section, values)
        expected = dict(before)
        expected[self.section] = {**before.get(self.section, {}), **values}
        if parse_sections(merged, str(self.path)) != expected:
            raise TargetError(
                f"{self.label}: credhelper cannot set this section with certainty (a value continued "
                "on an indented line, or a key spelt unusually); write each of its keys on one line"
            )
        return merged

    def must_be_private(self, text: str) -> bool:
        return holds_long_term_secret(text)

    def state(self, text: str | None, credentials: Credentials | None) -> str:
        held = parse_sections(text, str(self.path)).get(self.section) if text is not None else None
        if held is None:
            return "missing"
        if credentials is not None and held.get("aws_access_key_id") == credentials.access_key_id:
            return "current"
        return "stale"
