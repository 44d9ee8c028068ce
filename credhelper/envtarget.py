"""The `.env` target kind: an app's dotenv file, its managed keys rewritten in place. Pure, apart
from the clock a Bedrock API key falls back on when the session's issue time is unknown."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from .bedrockkey import TOKEN_VARIABLE, bedrock_env, bedrock_key_id, is_long_term_bedrock_key
from .credentials import mask_key_id
from .envfile import long_term_key_ids, managed_values, merge_env, secret_for_key
from .errors import LongTermKeyError
from .targets import KeyPairCheck, Target

if TYPE_CHECKING:
    from .credentials import Credentials

__all__ = ["EnvFileTarget", "LongTermKeyError", "guard_bedrock_key", "guard_long_term_keys"]


def guard_long_term_keys(path: Path | str, text: str, is_adopted: KeyPairCheck, profile_hint: str) -> None:
    """A long-term pair in the file is overwritten only once a source profile holds it."""
    for key_id in long_term_key_ids(text):
        if not is_adopted(key_id, secret_for_key(text)):
            raise LongTermKeyError(
                f"{path} holds a long-term access key ({mask_key_id(key_id)}) that credhelper will "
                f"not overwrite: move it to a source profile first with `credhelper adopt-keys "
                f"--env-file {path} --profile {profile_hint}`, then refresh again"
            )


def guard_bedrock_key(path: Path | str, text: str) -> None:
    """A long-term Bedrock API key (anything non-empty that is not a presigned short-term one)
    is never overwritten: it cannot be moved anywhere credhelper would keep it."""
    for value in managed_values(text, (TOKEN_VARIABLE,)).get(TOKEN_VARIABLE, []):
        if is_long_term_bedrock_key(value):
            raise LongTermKeyError(
                f"{path} holds a long-term Amazon Bedrock API key in {TOKEN_VARIABLE} that credhelper "
                "will not overwrite: keep it elsewhere if you still need it (or delete it in the IAM "
                "console), remove that line, then refresh again"
            )


@dataclass(frozen=True)
class EnvFileTarget(Target):
    region: str | None = None
    source_hint: str = "bedrock-developer"  # the source profile adopt-keys is told to fill
    bedrock_api_key: bool = False  # AWS_BEARER_TOKEN_BEDROCK is managed here too
    clock: Callable[[], float] = field(default=time.time, compare=False, repr=False)
    setting: ClassVar[str] = "env_files"

    def guard(self, text: str, adopted: KeyPairCheck) -> None:
        guard_long_term_keys(self.path, text, adopted, self.source_hint)
        if self.bedrock_api_key:
            guard_bedrock_key(self.path, text)

    def render(self, text: str, credentials: Credentials) -> str:
        """The credentials and, when enabled, a Bedrock API key of the same session: one write,
        so no reader sees a key of one session beside credentials of another."""
        values = credentials.env_values(self.region)
        if self.bedrock_api_key:
            values |= bedrock_env(self.region, credentials, self.clock())
        return merge_env(text, values)

    def state(self, text: str | None, credentials: Credentials | None) -> str:
        if text is None:
            return "missing"
        key_ids = managed_values(text).get("AWS_ACCESS_KEY_ID", [])
        if credentials is not None and key_ids and all(k == credentials.access_key_id for k in key_ids):
            return "current"
        return "stale"

    def bedrock_state(self, text: str | None, credentials: Credentials | None) -> str:
        """Whether the file's AWS_BEARER_TOKEN_BEDROCK was made from the current session."""
        tokens = managed_values(text, (TOKEN_VARIABLE,)).get(TOKEN_VARIABLE, []) if text is not None else []
        if not tokens:
            return "missing"
        key_ids = [bedrock_key_id(token) for token in tokens]
        if credentials is not None and all(k == credentials.access_key_id for k in key_ids):
            return "current"
        return "stale"
