"""The registry of target kinds: which kinds a profile's settings name, and the targets they make.

The one list of kinds. `delivery`, `check_target`, the keeper and the daemon's watcher ask the
interface (`interfaces.Target`) for everything else, so a new kind is a module of its own and
one entry here.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from ..interfaces import Target
from ..paths import expand_user_path
from .credsection import CredentialsSectionTarget
from .envfile import EnvFileTarget

if TYPE_CHECKING:
    from ..profile import Profile


def expand_path(raw: str) -> Path:
    return Path(expand_user_path(raw))


def profile_targets(profile: Profile) -> list[Target]:
    """Every target of a profile, each kind in its own module."""
    hint = profile.source_profile or "bedrock-developer"
    found: list[Target] = [
        EnvFileTarget(
            expand_path(raw), region=profile.region, source_hint=hint, bedrock_api_key=profile.bedrock_api_key
        )
        for raw in profile.env_files
    ]
    found += [
        CredentialsSectionTarget(expand_path(raw), section=section)
        for raw, section in profile.credentials_files
    ]
    return found


def keeps_credentials_section(profile: Profile, path: Path, section: str) -> bool:
    """Whether `profile` keeps `[section]` of the shared credentials file `path` as a target."""
    real = os.path.realpath(path)
    return any(
        isinstance(target, CredentialsSectionTarget)
        and target.section == section
        and str(target.real_path) == real
        for target in profile_targets(profile)
    )
