"""The INI text of a shared credentials file (~/.aws/credentials): a strict reader, a best-effort
reader, a byte-preserving section writer, and the questions adopt-keys, init and the credentials
section target ask of the text. Text in, text out, no I/O.

configparser would drop comments and reformat the file, so sections are set as text; the text
result is then read back with configparser (as botocore reads it) and must say exactly what was
meant, or nothing is written.
"""

from __future__ import annotations

import configparser
import re
from collections.abc import Mapping
from pathlib import Path

from ..credentials import is_long_term_key_id, mask_key_id
from ..errors import ConfigError, TargetError, UsageError
from .dotenv import LONG_TERM_KEY_ID

# configparser's own header rule, applied to the stripped line: `[` name `]`, the last `]` wins.
_SECTION = re.compile(r"^\s*\[(.+)\]")
_KEY = re.compile(r"^(\s*([A-Za-z0-9_]+)\s*[=:][^\S\r\n]*)")
# The keys a credentials section target sets.
WRITTEN_KEYS = ("aws_access_key_id", "aws_secret_access_key", "aws_session_token")
_NO_DEFAULT_SECTION = "\0credhelper: no DEFAULT section"  # [DEFAULT] is a section like any other
Sections = dict[str, dict[str, str]]


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
        problem = "a line before the first [section]"
        if error.lineno == 1 and text.startswith("\ufeff"):  # botocore reads the file as plain UTF-8
            problem = "a byte-order mark before the first [section], which SDKs cannot read"
        raise _unreadable(label, error.lineno, problem) from None
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


def section_key_lines(text: str, name: str, keys: tuple[str, ...] = WRITTEN_KEYS) -> list[str]:
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


PAIR_KEYS = ("aws_access_key_id", "aws_secret_access_key")


def section_pair(text: str, path: Path, section: str) -> tuple[str, str]:
    """The long-term pair `[section]` holds: (key id, secret); anything else is a usage error
    saying what the section holds instead (never its secret)."""
    held = parse_sections(text, str(path)).get(section)
    if held is None:
        raise UsageError(f"--from-profile {section}: {path} has no [{section}] section")
    key_id, secret = (held.get(key, "").strip() for key in PAIR_KEYS)
    if not is_long_term_key_id(key_id) or "aws_session_token" in held:
        found = f"a temporary key {mask_key_id(key_id)}" if key_id else "no aws_access_key_id"
        raise UsageError(
            f"--from-profile {section}: [{section}] of {path} holds {found}, not a long-term (AKIA…) "
            "key; nothing to move"
        )
    if not secret:
        raise UsageError(f"--from-profile {section}: [{section}] of {path} has no aws_secret_access_key")
    return key_id, secret


def without_key_pair(text: str, path: Path, section: str, key_id: str) -> str:
    """The credentials file without the pair of `[section]` (key id `key_id`): its two key lines
    removed, or the whole section when nothing but them and blank lines is in it; every other byte
    kept. Read back as botocore reads it, the result must be the old file less exactly that, or
    nothing is changed (78)."""
    sections = parse_sections(text, str(path))
    held = sections.get(section)
    if held is None or held.get("aws_access_key_id", "").strip() != key_id:
        raise ConfigError(f"{path}: [{section}] no longer holds {mask_key_id(key_id)}; nothing was removed")
    lines = re.split(r"(?<=\n)|(?<=\r)(?!\n)", text)
    start = next(i for i, line in enumerate(lines) if (h := _SECTION.match(line)) and h.group(1) == section)
    end = next((i for i in range(start + 1, len(lines)) if _SECTION.match(lines[i])), len(lines))
    body, removing = [], False
    for line in lines[start + 1 : end]:
        key = _KEY.match(line)
        if key:
            removing = key.group(2).lower() in PAIR_KEYS
        elif not (line[:1].isspace() and line.strip() and removing):  # a continuation line
            removing = False
        if not removing:
            body.append(line)
    if all(not line.strip() for line in body):
        if end == len(lines):  # the last section: drop the blank lines that set it apart too
            while start > 0 and not lines[start - 1].strip():
                start -= 1
        new = "".join(lines[:start] + lines[end:])
        expected = {name: keys for name, keys in sections.items() if name != section}
    else:
        new = "".join(lines[: start + 1] + body + lines[end:])
        rest = {key: value for key, value in held.items() if key not in PAIR_KEYS}
        expected = {name: rest if name == section else keys for name, keys in sections.items()}
    if parse_sections(new, str(path)) != expected:
        raise ConfigError(
            f"{path}: [{section}] cannot be removed with certainty (an unusual layout); remove its "
            "aws_access_key_id and aws_secret_access_key lines yourself"
        )
    return new


def with_rotated_pair(
    text: str, path: Path, section: str, old_key_id: str, new_key_id: str, secret: str
) -> str:
    """The credentials file with `[section]`'s pair replaced by the new one (rotate), every other
    byte kept; unchanged when it holds the new pair already. A section that holds neither the
    old key nor the new one was changed by someone since rotate read it: refused (78)."""
    held = parse_sections(text, str(path)).get(section) or {}
    held_id = held.get("aws_access_key_id", "")
    if held_id == new_key_id and held.get("aws_secret_access_key") == secret:
        return text
    if held_id != old_key_id or "aws_session_token" in held:
        raise ConfigError(
            f"{path}: [{section}] no longer holds {mask_key_id(old_key_id)}, the key being rotated: "
            "someone changed it meanwhile; run rotate again"
        )
    return set_section(text, section, {"aws_access_key_id": new_key_id, "aws_secret_access_key": secret})
