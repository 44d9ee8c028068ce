"""The interface every kind of target implements.

A kind (an app's `.env`, one section of a shared credentials file) is one class with pure
methods: what a profile claims, `guard` (refuse before any STS call or write), `render` (new text
from old) and `state` (does the text hold the current credentials?). The I/O around them is in
`targets.files`, the kinds in their own modules and the list of kinds in `targets.registry`.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from ..credentials import Credentials

# Is this long-term pair (key id, secret if known) already kept in a source profile?
KeyPairCheck = Callable[[str, "str | None"], bool]


@dataclass(frozen=True)
class Target(ABC):
    """One file (or part of one) a profile keeps supplied with credentials."""

    path: Path  # as configured, expanded
    setting: ClassVar[str]  # the profile key that names it

    @property
    def label(self) -> str:
        """How messages and `status` name the target."""
        return str(self.path)

    @property
    def real_path(self) -> Path:
        """A symlinked target is written through to the file it points at."""
        return Path(os.path.realpath(self.path))

    def claim(self) -> tuple[str, str]:
        """What the target owns; two profiles must never claim the same (after symlinks)."""
        return (str(self.real_path), "")

    def watch_paths(self) -> set[str]:
        """The configured path and, for a symlink, the file it points at."""
        configured = os.path.abspath(self.path)
        return {configured, os.path.realpath(configured)}

    @abstractmethod
    def guard(self, text: str, adopted: KeyPairCheck) -> None:
        """Raise (TargetError, LongTermKeyError) when `text` must not be rewritten. Pure."""

    @abstractmethod
    def render(self, text: str, credentials: Credentials) -> str:
        """The new text: `text` with the credentials in place, every other byte kept. Pure."""

    @abstractmethod
    def state(self, text: str | None, credentials: Credentials | None) -> str:
        """'missing', 'current' or 'stale', for `status`. Pure."""

    @abstractmethod
    def must_be_private(self, text: str) -> bool:
        """Whether a file of this kind holding `text` must be 0600: it keeps a long-term secret
        beside the credentials credhelper writes. Pure."""

    def guarded_render(self, text: str, credentials: Credentials, adopted: KeyPairCheck) -> str:
        """What a write puts in place of `text`: `guard`, then `render`. Pure. A kind whose
        questions share a parse of the text overrides it to parse once."""
        self.guard(text, adopted)
        return self.render(text, credentials)
