"""The `.env` target kind: an app's dotenv file, its managed keys rewritten in place. Pure, apart
from the clock a Bedrock API key falls back on when the session's issue time is unknown."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from ..credentials import mask_key_id
from ..errors import LongTermKeyError, TargetError
from ..formats.bedrockkey import TOKEN_VARIABLE, bedrock_env, bedrock_key_id, is_long_term_bedrock_key
from ..formats.dotenv import (
    KEY_ID,
    EnvReading,
    ReadBackError,
    ReadBackProblem,
    lone_secret_line,
    long_term_key_ids,
    managed_values,
    merge_env_verified,
    reading_of,
    secret_for_key,
    secrets_read,
    values_read,
)
from .base import KeyPairCheck, Target

if TYPE_CHECKING:
    from ..credentials import Credentials

__all__ = ["EnvFileTarget", "LongTermKeyError", "guard_bedrock_key", "guard_long_term_keys"]


def _pair_adopted(is_adopted: KeyPairCheck, key_id: str, reading: EnvReading) -> bool:
    """Adopted with the secret either reader sees beside it: the pair is safe in a source profile
    (a reader that disagrees, such as python-dotenv keeping backticks, only misreads it)."""
    secrets: set[str | None] = set(secrets_read(reading)) or {secret_for_key(reading)}
    return any(is_adopted(key_id, secret) for secret in secrets)


def guard_long_term_keys(
    path: Path | str, text: str | EnvReading, is_adopted: KeyPairCheck, profile_hint: str
) -> None:
    """A long-term pair in the file is overwritten only once a source profile holds it."""
    adopt = f"`credhelper adopt-keys --env-file {path} --profile {profile_hint}`"
    reading = reading_of(text)
    long_term = long_term_key_ids(reading)
    for key_id in long_term:
        if not _pair_adopted(is_adopted, key_id, reading):
            raise LongTermKeyError(
                f"{path} holds a long-term access key ({mask_key_id(key_id)}) that credhelper will "
                f"not overwrite: move it to a source profile first with {adopt}, then refresh again"
            )
    line = lone_secret_line(reading)
    if line is None:
        return
    key_ids = long_term or [v.strip() for v in values_read(reading, (KEY_ID,)).get(KEY_ID, []) if v.strip()]
    if not key_ids or not all(_pair_adopted(is_adopted, key_id, reading) for key_id in key_ids):
        raise LongTermKeyError(
            f"{path}: line {line}: AWS_SECRET_ACCESS_KEY holds a secret without a temporary (ASIA…) key "
            "id beside it, likely half of a long-term key pair, which credhelper will not overwrite: "
            f"put its key id in AWS_ACCESS_KEY_ID and move the pair with {adopt}, or delete that line "
            "if you no longer need it, then refresh again"
        )


def guard_bedrock_key(path: Path | str, text: str | EnvReading) -> None:
    """A long-term Bedrock API key (anything non-empty that is not a presigned short-term one)
    is never overwritten: it cannot be moved anywhere credhelper would keep it."""
    for value in values_read(text, (TOKEN_VARIABLE,)).get(TOKEN_VARIABLE, []):
        if is_long_term_bedrock_key(value.strip()):
            raise LongTermKeyError(
                f"{path} holds a long-term Amazon Bedrock API key in {TOKEN_VARIABLE} that credhelper "
                "will not overwrite: keep it elsewhere if you still need it (or delete it in the IAM "
                "console), remove that line, then refresh again"
            )


def _bedrock_tokens(text: str | EnvReading) -> list[str]:
    return [value.strip() for value in values_read(text, (TOKEN_VARIABLE,)).get(TOKEN_VARIABLE, [])]


def holds_only_own_bedrock_keys(text: str | EnvReading) -> bool:
    """True when the file holds a short-term Bedrock API key and every non-empty one was signed
    with the key id the file holds: credhelper's own, of the session it wrote last. A person's
    line or a long-term key makes this False, so nothing of theirs is ever emptied."""
    reading = reading_of(text)
    key_ids = {value.strip() for value in values_read(reading, (KEY_ID,)).get(KEY_ID, []) if value.strip()}
    tokens = [token for token in _bedrock_tokens(reading) if token]
    return bool(tokens) and all(bedrock_key_id(token) in key_ids for token in tokens)


def holds_stale_bedrock_key(text: str, credentials: Credentials | None) -> bool:
    """A short-term Bedrock API key of a session other than `credentials`' is in the file:
    SDKs prefer it over the credentials, and it expires with its own session."""
    current = credentials.access_key_id if credentials is not None else None
    key_ids = [bedrock_key_id(token) for token in _bedrock_tokens(text)]
    return any(key_id is not None and key_id != current for key_id in key_ids)


def read_back_refusal(path: Path | str, problem: ReadBackProblem) -> TargetError:
    key = problem.key
    return TargetError(
        f"{path}: line {problem.line}: {key} would not read back as the value credhelper writes in "
        f"{problem.reader} (another binding of it, such as one written with a colon, or quotes the "
        f"readers disagree on): keep a single plain line setting {key} with '=', delete the others, "
        "then refresh again"
    )


@dataclass(frozen=True)
class EnvFileTarget(Target):
    region: str | None = None
    source_hint: str = "bedrock-developer"  # the source profile adopt-keys is told to fill
    bedrock_api_key: bool = False  # AWS_BEARER_TOKEN_BEDROCK is managed here too
    clock: Callable[[], float] = field(default=time.time, compare=False, repr=False)
    setting: ClassVar[str] = "env_files"

    def guard(self, text: str | EnvReading, adopted: KeyPairCheck) -> None:
        reading = reading_of(text)
        guard_long_term_keys(self.path, reading, adopted, self.source_hint)
        if self.bedrock_api_key:
            guard_bedrock_key(self.path, reading)

    def render(self, text: str | EnvReading, credentials: Credentials) -> str:
        """The credentials and, when enabled, a Bedrock API key of the same session: one write,
        so no reader sees a key of one session beside credentials of another."""
        values = credentials.env_values(self.region)
        if self.bedrock_api_key:
            values |= bedrock_env(self.region, credentials, self.clock())
        elif holds_only_own_bedrock_keys(text):
            values[TOKEN_VARIABLE] = ""  # the setting is off: no key of a past session lingers
        try:
            return merge_env_verified(text, values)
        except ReadBackError as error:
            raise read_back_refusal(self.path, error.problem) from None

    def guarded_render(self, text: str, credentials: Credentials, adopted: KeyPairCheck) -> str:
        """The guard and the render of one reading: each reader parses the text once."""
        reading = EnvReading(text)
        self.guard(reading, adopted)
        return self.render(reading, credentials)

    def must_be_private(self, text: str) -> bool:
        """Never for a text this kind writes: the guard refuses to write over a long-term key, so a
        `.env` holding one is not written at all (adopt-keys moves the pair out first)."""
        return False

    def state(self, text: str | None, credentials: Credentials | None) -> str:
        if text is None:
            return "missing"
        key_ids = managed_values(text).get("AWS_ACCESS_KEY_ID", [])
        if credentials is not None and key_ids and all(k == credentials.access_key_id for k in key_ids):
            return "current"
        return "stale"

    def bedrock_state(self, text: str | None, credentials: Credentials | None) -> str:
        """Whether the file's AWS_BEARER_TOKEN_BEDROCK was made from the current session. With the
        setting off, only a short-term key of another session is news ("stale"), else "none"."""
        if not self.bedrock_api_key:
            return "stale" if text is not None and holds_stale_bedrock_key(text, credentials) else "none"
        tokens = managed_values(text, (TOKEN_VARIABLE,)).get(TOKEN_VARIABLE, []) if text is not None else []
        if not tokens:
            return "missing"
        key_ids = [bedrock_key_id(token) for token in tokens]
        if credentials is not None and all(k == credentials.access_key_id for k in key_ids):
            return "current"
        return "stale"
