"""doctor's check of the long-term source key's age, as `rotate` last recorded it (its CreateDate
from IAM, in the profile's state): a warning at 90 days, whatever `rotate_after_days` says. No
finding when rotate has not recorded one: doctor makes no IAM call."""

from __future__ import annotations

from ..cache import Cache
from ..profile import Profile
from ..rotation import age_days
from .findings import OK, WARN, Finding

WARN_DAYS = 90


def check_key_age(profile: Profile, cache: Cache, now: float) -> list[Finding]:
    state = cache.read_state(profile.name)
    created = state.get("source_key_created")
    if created is None:
        return []
    days = age_days(created, now)
    key = state.get("source_key_id") or "the source key"
    if days >= WARN_DAYS:
        return [
            Finding(
                profile.name,
                "source key age",
                WARN,
                f"{key} is {days} days old ({WARN_DAYS} or more): run `credhelper rotate {profile.name}`",
            )
        ]
    return [Finding(profile.name, "source key age", OK, f"{key} is {days} days old")]
