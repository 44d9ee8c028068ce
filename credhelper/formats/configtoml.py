"""Edits of credhelper's own `config.toml` text that keep every other byte: a profile's source
switched to the OS keyring (`adopt-keys --to-keyring`). Text in, text out, no I/O.

A TOML writer would drop comments and reformat the file, so the lines are edited as text; the
result is then parsed and must equal the old configuration with exactly that change, or nothing is
written.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Collection
from pathlib import Path
from typing import Any

from ..errors import ConfigError

# `[profiles.NAME]` or `[profiles."NAME"]`, with the spaces TOML allows around the dot and brackets.
_TABLE = re.compile(
    r"""^[ \t]*\[[ \t]*profiles[ \t]*\.[ \t]*(?:"([^"\\]*)"|'([^']*)'|([A-Za-z0-9_-]+))[ \t]*\]"""
)
_ANY_TABLE = re.compile(r"^[ \t]*\[")
_SOURCE = re.compile(
    r"""^([ \t]*)(?:source_profile|"source_profile"|'source_profile')([ \t]*=[ \t]*)"""
    r"""("(?:[^"\\\r\n]|\\.)*"|'[^'\r\n]*')"""
)
_KEY_LINE = re.compile(r"""^[ \t]*(?:source_keyring|"source_keyring"|'source_keyring')[ \t]*=""")


def _lines(text: str) -> list[str]:
    lines = re.split(r"(?<=\n)", text)
    return lines[:-1] if lines and lines[-1] == "" else lines


def _eol(text: str) -> str:
    end = text.find("\n")
    return "\r\n" if end > 0 and text[end - 1] == "\r" else "\n"


def switch_to_keyring(text: str, path: Path | str, profiles: Collection[str], name: str) -> str:
    """The configuration with each of `profiles` reading its long-term key from keyring entry
    `name`: its `source_profile = "..."` line becomes `source_keyring = "NAME"` (a comment after it
    kept), or, with neither key, the line is added under the table's header. A profile already
    reading entry `name` is left as it is. Refused (78) when the edit cannot be made with certainty
    (a profile written as a dotted key or an inline table, say)."""
    try:
        before: dict[str, Any] = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: malformed TOML: {error}; fix the file first") from None
    wanted = json.dumps(name)
    lines = _lines(text)
    table: str | None = None
    header_at: dict[str, int] = {}
    switched: set[str] = set()
    for index, line in enumerate(lines):
        if _ANY_TABLE.match(line):
            match = _TABLE.match(line)
            table = next((group for group in match.groups() if group is not None), None) if match else None
            if table is not None:
                header_at.setdefault(table, index)
            continue
        if table is None or table not in profiles:
            continue
        if source := _SOURCE.match(line):
            lines[index] = f"{source.group(1)}source_keyring{source.group(2)}{wanted}{line[source.end() :]}"
            switched.add(table)
        elif _KEY_LINE.match(line):
            switched.add(table)  # already reads a keyring entry: checked below
    expected = json.loads(json.dumps(before))
    for profile in profiles:
        settings = expected.get("profiles", {}).get(profile)
        if not isinstance(settings, dict):
            raise ConfigError(f"{path}: no [profiles.{profile}] table to switch to source_keyring")
        settings.pop("source_profile", None)
        settings["source_keyring"] = name
        if profile not in switched and profile in header_at:
            at = header_at[profile]
            lines.insert(at + 1, f"source_keyring = {wanted}{_eol(text)}")
            header_at = {key: i + 1 if i > at else i for key, i in header_at.items()}
    new = "".join(lines)
    try:
        after = tomllib.loads(new)
    except tomllib.TOMLDecodeError:
        after = None
    if after != expected:
        raise ConfigError(
            f"{path}: cannot switch {', '.join(sorted(profiles))} to source_keyring = {wanted} with "
            "certainty (a profile written as a dotted key or an inline table?): replace its "
            f"source_profile with source_keyring = {wanted} yourself"
        )
    return new
