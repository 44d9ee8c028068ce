"""The shared credentials file (~/.aws/credentials): a strict reader, a byte-preserving section
writer, and the credentials-section target kind. Pure, apart from `holds_key_pair`.

configparser would drop comments and reformat the file, so sections are set as text; the text
result is then read back with configparser (as botocore reads it) and must say exactly what was
meant, or nothing is written.
"""

from __future__ import annotations

import configparser
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from .credentials import is_long_term_key_id, mask_key_id
from .envfile import LONG_TERM_KEY_ID, is_temporary_key_id
from .errors import ConfigError, LongTermKeyError, TargetError
from .targets import KeyPairCheck, Target, read_target_file, rewrite_file

if TYPE_CHECKING:
    from .credentials import Credentials

# configparser's own header rule, applied to the stripped line: `[` name `]`, the last `]` wins.
_SECTION = re.compile(r"^\s*\[(.+)\]")
_KEY = re.compile(r"^(\s*([A-Za-z0-9_]+)\s*[=:][^\S\r\n]*)")
_WRITTEN_KEYS = ("aws_access_key_id", "aws_secret_access_key", "aws_session_token")
_NO_DEFAULT_SECTION = "\0credhelper: no DEFAULT section"  # [DEFAULT] is a section like any other
Sections = dict[str, dict[str, str]]


def shared_credentials_path(environ: Mapping[str, str]) -> Path:
    explicit = environ.get("AWS_SHARED_CREDENTIALS_FILE")
    if explicit:
        return Path(explicit).expanduser()
    return Path(os.path.expanduser("~")) / ".aws" / "credentials"


def _unreadable(label: str, line: int, problem: str) -> TargetError:
    # Only the line's number: its text may be a secret.
    return TargetError(
        f"{label}: line {line}: {problem}; credhelper changes a credentials file only when it can "
        "read all of it: fix that line"
    )


def parse_sections(text: str, label: str) -> Sections:
    """Every section and its keys, read as botocore reads them; anything read with less than
    certainty (a stray line, a duplicate section or key, a line before the first section) is
    a TargetError naming the line."""
    parser = configparser.RawConfigParser(
        strict=True, interpolation=None, default_section=_NO_DEFAULT_SECTION
    )
    try:
        parser.read_string(text)
    except configparser.MissingSectionHeaderError as error:
        raise _unreadable(label, error.lineno, "a line before the first [section]") from None
    except configparser.ParsingError as error:
        raise _unreadable(
            label, error.errors[0][0], "neither a [section], a comment nor key = value"
        ) from None
    except configparser.DuplicateSectionError as error:
        raise _unreadable(label, error.lineno or 0, f"section [{error.section}] appears twice") from None
    except configparser.DuplicateOptionError as error:
        raise _unreadable(
            label, error.lineno or 0, f"key {error.option} appears twice in [{error.section}]"
        ) from None
    except configparser.Error as error:
        raise TargetError(f"{label}: does not parse ({type(error).__name__}); fix the file") from None
    return {name: dict(parser.items(name)) for name in parser.sections()}


def read_sections(text: str) -> Sections:
    """Best effort, for noticing that source keys changed; never for a guard (see parse_sections)."""
    parser = configparser.RawConfigParser(strict=False, interpolation=None)
    try:
        parser.read_string(text)
    except configparser.Error:
        return {}
    return {name: dict(parser.items(name)) for name in parser.sections()}


def holds_long_term_secret(text: str) -> bool:
    """Whether any section holds a long-term secret: a secret with a long-term key id, or with no
    session token beside it. A file that cannot be read with certainty is taken to hold one."""
    try:
        sections = parse_sections(text, "")
    except TargetError:
        return "aws_secret_access_key" in text.lower()
    return any(
        section.get("aws_secret_access_key", "").strip()
        and (
            LONG_TERM_KEY_ID.search(section.get("aws_access_key_id", ""))
            or not section.get("aws_session_token", "").strip()
        )
        for section in sections.values()
    )


CREDENTIALS_FILE_SETTING = "AWS_SHARED_CREDENTIALS_FILE"


def with_key_pair(text: str, path: Path, section: str, key_id: str, secret: str, flag: str) -> str:
    """The credentials file with `[section]` holding this long-term pair, every other byte kept;
    unchanged when it holds it already. A section holding anything else is refused (78): a
    long-term key is never replaced, and temporary credentials there are a target's."""
    held = parse_sections(text, str(path)).get(section)
    if held is None:
        return append_section(text, section, {"aws_access_key_id": key_id, "aws_secret_access_key": secret})
    if held.get("aws_access_key_id") == key_id and held.get("aws_secret_access_key") == secret:
        return text
    held_id = held.get("aws_access_key_id", "")
    if (held_id and not is_long_term_key_id(held_id)) or "aws_session_token" in held:
        raise ConfigError(
            f"{path}: [{section}] holds temporary credentials ({mask_key_id(held_id)}), such as "
            "credhelper writes for a credentials_files target, not a long-term key: they expire and "
            f"are rewritten at every refresh; give another {flag} name, e.g. {section}-source"
        )
    raise ConfigError(
        f"{path}: [{section}] already holds another key; credhelper never replaces a long-term "
        f"key: pick another {flag} name"
    )


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


def key_line_number(text: str, name: str, key: str) -> int | None:
    """The line (from 1) of the last `key` in a `[name]` section, as configparser keeps it."""
    found = None
    in_section = False
    for number, line in enumerate(re.split(r"\r\n|\r|\n", text), start=1):
        header = _SECTION.match(line)
        if header:
            in_section = header.group(1) == name
        elif in_section and (match := _KEY.match(line)) and match.group(2).lower() == key:
            found = number
    return found


def append_section(text: str, name: str, values: Mapping[str, str]) -> str:
    eol = "\r\n" if "\r\n" in text else "\n"
    block = f"[{name}]{eol}" + "".join(f"{key} = {value}{eol}" for key, value in values.items())
    if not text:
        return block
    separator = "" if text.endswith(("\n", "\r")) else eol
    return f"{text}{separator}{eol}{block}"


def _line_ending(line: str) -> str:
    return line[len(line.rstrip("\r\n")) :]


def section_key_lines(text: str, name: str, keys: tuple[str, ...] = _WRITTEN_KEYS) -> list[str]:
    """The raw lines of every `[name]` section that set_section replaces."""
    found: list[str] = []
    in_section = False
    for line in re.split(r"\r\n|\r|\n", text):
        header = _SECTION.match(line)
        if header:
            in_section = header.group(1) == name
        elif in_section and (key := _KEY.match(line)) and key.group(2).lower() in keys:
            found.append(line)
    return found


def set_section(text: str, name: str, values: Mapping[str, str]) -> str:
    """Set `values` in every `[name]` section (appending the section if there is none). Lines of
    other sections, comments, and the section's other keys stay byte for byte."""
    lines = re.split(r"(?<=\n)|(?<=\r)(?!\n)", text)
    if lines and lines[-1] == "":
        lines.pop()
    eol = "\r\n" if "\r\n" in text else "\n"
    out: list[str] = []
    in_section = found = False
    missing: dict[str, str] = {}
    last_content = -1

    def close_section() -> None:
        if not missing:
            return
        at = last_content + 1
        if at > 0 and not _line_ending(out[at - 1]):
            out[at - 1] += eol
        out[at:at] = [f"{key} = {value}{eol}" for key, value in missing.items()]

    for line in lines:
        header = _SECTION.match(line.rstrip("\r\n"))
        if header:
            if in_section:
                close_section()
            in_section = header.group(1) == name
            if in_section:
                found = True
                missing = dict(values)
                last_content = len(out)
            out.append(line)
            continue
        if in_section:
            key = _KEY.match(line)
            if key and key.group(2).lower() in values:
                out.append(f"{key.group(1)}{values[key.group(2).lower()]}{_line_ending(line)}")
                missing.pop(key.group(2).lower(), None)
                last_content = len(out) - 1
                continue
            if line.strip():
                last_content = len(out)
        out.append(line)
    if in_section:
        close_section()
    merged = "".join(out)
    return merged if found else append_section(merged, name, values)


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
        places = [held.get(key, "") for key in _WRITTEN_KEYS] + section_key_lines(text, self.section)
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
