"""The shared credentials file (~/.aws/credentials): read sections, add one without touching the rest.

configparser would drop comments and reformat the file, so sections are added as text.
"""

from __future__ import annotations

import configparser
import os
import re
from collections.abc import Mapping
from pathlib import Path

from .fileio import PRIVATE_FILE, atomic_write, ensure_private_dir, read_bytes_or_none

_SECTION = re.compile(r"^\s*\[\s*([^\]]+?)\s*\]\s*(?:[#;].*)?$")
_KEY = re.compile(r"^(\s*([A-Za-z0-9_]+)\s*[=:][^\S\r\n]*)")


def shared_credentials_path(environ: Mapping[str, str]) -> Path:
    explicit = environ.get("AWS_SHARED_CREDENTIALS_FILE")
    if explicit:
        return Path(explicit).expanduser()
    return Path(os.path.expanduser("~")) / ".aws" / "credentials"


def read_sections(text: str) -> dict[str, dict[str, str]]:
    parser = configparser.RawConfigParser(strict=False, interpolation=None)
    try:
        parser.read_string(text)
    except configparser.Error:
        return {}
    return {name: dict(parser.items(name)) for name in parser.sections()}


def holds_key_pair(path: Path, key_id: str, secret: str | None) -> bool:
    """True when some section of the file holds exactly this key id (and this secret, if given)."""
    data = read_bytes_or_none(path)
    if data is None:
        return False
    for section in read_sections(data.decode("utf-8", "replace")).values():
        if section.get("aws_access_key_id") == key_id and (
            secret is None or section.get("aws_secret_access_key") == secret
        ):
            return True
    return False


def append_section(text: str, name: str, values: Mapping[str, str]) -> str:
    eol = "\r\n" if "\r\n" in text else "\n"
    block = f"[{name}]{eol}" + "".join(f"{key} = {value}{eol}" for key, value in values.items())
    if not text:
        return block
    separator = "" if text.endswith(("\n", "\r")) else eol
    return f"{text}{separator}{eol}{block}"


def _line_ending(line: str) -> str:
    return line[len(line.rstrip("\r\n")) :]


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


def write_shared_file(path: Path, text: str) -> None:
    """Always 0600: the file holds long-term keys."""
    if not path.parent.exists():
        ensure_private_dir(path.parent)
    atomic_write(path, text.encode(), PRIVATE_FILE)
