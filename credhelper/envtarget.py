"""The `.env` target kind: an app's dotenv file, its managed keys rewritten in place. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from .credentials import mask_key_id
from .envfile import long_term_key_ids, managed_values, merge_env, secret_for_key
from .errors import LongTermKeyError
from .targets import KeyPairCheck, Target

if TYPE_CHECKING:
    from .credentials import Credentials

__all__ = ["EnvFileTarget", "LongTermKeyError", "guard_long_term_keys"]


def guard_long_term_keys(path: Path | str, text: str, is_adopted: KeyPairCheck, profile_hint: str) -> None:
    """A long-term pair in the file is overwritten only once a source profile holds it."""
    for key_id in long_term_key_ids(text):
        if not is_adopted(key_id, secret_for_key(text)):
            raise LongTermKeyError(
                f"{path} holds a long-term access key ({mask_key_id(key_id)}) that credhelper will "
                f"not overwrite: move it to a source profile first with `credhelper adopt-keys "
                f"--env-file {path} --profile {profile_hint}`, then refresh again"
            )


@dataclass(frozen=True)
class EnvFileTarget(Target):
    region: str | None = None
    source_hint: str = "bedrock-developer"  # the source profile adopt-keys is told to fill
    setting: ClassVar[str] = "env_files"

    def guard(self, text: str, adopted: KeyPairCheck) -> None:
        guard_long_term_keys(self.path, text, adopted, self.source_hint)

    def render(self, text: str, credentials: Credentials) -> str:
        return merge_env(text, credentials.env_values(self.region))

    def state(self, text: str | None, credentials: Credentials | None) -> str:
        if text is None:
            return "missing"
        key_ids = managed_values(text).get("AWS_ACCESS_KEY_ID", [])
        if credentials is not None and key_ids and all(k == credentials.access_key_id for k in key_ids):
            return "current"
        return "stale"
