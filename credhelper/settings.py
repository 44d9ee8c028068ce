"""Typed reading of a profile's settings: each refusal one line naming the file, profile and key.
Pure."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from .errors import ConfigError

PROFILE_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}\Z")


class SettingsChecker:
    """Reads one `[profiles.NAME]` table's settings by type; each refusal names the file, the
    profile and the key."""

    def __init__(self, source: str, profile: str, raw: Mapping[str, Any]) -> None:
        self.source = source
        self.profile = profile
        self.raw = raw

    def fail(self, key: str, problem: str) -> ConfigError:
        return ConfigError(f"{self.source}: [profiles.{self.profile}] {key}: {problem}")

    def string(self, key: str, pattern: re.Pattern[str] | None = None, allowed: str = "") -> str | None:
        value = self.raw.get(key)
        if value is None:
            return None
        if not isinstance(value, str) or not value:
            raise self.fail(key, f"must be a non-empty string, got {value!r}")
        if pattern is not None and not pattern.match(value):
            raise self.fail(key, f"{value!r} is not valid; {allowed}")
        return value

    def integer(self, key: str, default: int, low: int, high: int, unit: str = "seconds") -> int:
        value = self.raw.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(key, f"must be a whole number of {unit}, got {value!r}")
        if not low <= value <= high:
            raise self.fail(key, f"{value} is out of range; allowed: {low}..{high}")
        return value

    def boolean(self, key: str, default: bool) -> bool:
        value = self.raw.get(key, default)
        if not isinstance(value, bool):
            raise self.fail(key, f"must be true or false (no quotes), got {value!r}")
        return value

    def argv(self, key: str) -> tuple[str, ...]:
        value = self.raw.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise self.fail(key, 'must be a list of strings (argv), e.g. ["ykman", "oath", ...]')
        self.no_null(key, value, "an argument")
        return tuple(value)

    def no_null(self, key: str, values: list[str], what: str) -> None:
        """The operating system cannot take a string holding a NUL character (as a path or an
        argument): refused here rather than failing at the first write or run."""
        for text in values:
            if "\0" in text:
                raise self.fail(key, f"{what} holds a NUL character ({text!r}); remove it")

    def sections(self, key: str) -> tuple[tuple[str, str], ...]:
        value = self.raw.get(key, [])
        example = '[{path = "~/.aws/credentials", profile = "bedrock"}]'
        if not isinstance(value, list):
            raise self.fail(key, f"must be a list of tables, e.g. {example}")
        found = []
        for entry in value:
            if not isinstance(entry, Mapping) or set(entry) != {"path", "profile"}:
                raise self.fail(key, f"each entry needs exactly path and profile, e.g. {example}")
            path, section = entry["path"], entry["profile"]
            if not isinstance(path, str) or not path:
                raise self.fail(key, f"path must be a file path, got {path!r}")
            self.no_null(key, [path], "a path")
            if not isinstance(section, str) or not PROFILE_NAME.match(section):
                raise self.fail(
                    key, f"profile {section!r} is not valid; use letters, digits, '.', '_' or '-'"
                )
            found.append((path, section))
        return tuple(found)

    def paths(self, key: str) -> tuple[str, ...]:
        value = self.raw.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise self.fail(key, 'must be a list of file paths, e.g. ["~/app/.env"]')
        self.no_null(key, value, "a path")
        return tuple(value)
