"""The rotation journal of `credhelper rotate` (DESIGN section 13) and every decision made from it,
pure: records in, records or decisions out, no I/O, no clock of its own.

A rotation moves through stages, each written to the journal before the step that follows it:
`creating` (written before CreateAccessKey, with the keys IAM listed then), `created` (the new key
id, never its secret), `stored` (the new pair is where the old one lived), `verified` (the new pair
answered GetCallerIdentity). What a later run does with a journal left behind depends above all on
which key is stored now: the new one means the rotation is finished (verify, retire the old key);
the old one means the new key never got stored, so it is deleted (a key whose secret nobody holds).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

from .credentials import mask_key_id

JOURNAL_FORMAT = "credhelper-rotation/1"
CREATING, CREATED, STORED, VERIFIED = "creating", "created", "stored", "verified"
STAGES = (CREATING, CREATED, STORED, VERIFIED)
# A key IAM dates this long before the journal was written is not the interrupted rotation's.
CLOCK_SKEW_SECONDS = 300.0
# The longest one CreateAccessKey call can take: 4 attempts of a 5 s connect and a 15 s read, and
# the backoff between them (sts.CLIENT_CONFIG), well under this.
CREATE_CALL_SECONDS = 120.0
# What a journal left behind asks for.
FINISH = "finish"  # the new pair is stored: verify it (unless done), then retire the old key
UNDO = "undo"  # the new pair never got stored: delete what the rotation created
FOREIGN = "foreign"  # the stored pair is neither key: someone changed it; leave IAM alone
DAY = 86400.0


class JournalDamaged(ValueError):
    """A journal that does not read as one: left for a person, never acted on."""


@dataclass(frozen=True)
class Journal:
    source: str  # e.g. "keyring entry 'x' (service credhelper)": what it is about, for messages
    old_key_id: str
    existing: tuple[str, ...]  # the key ids IAM listed just before CreateAccessKey
    started_at: float
    stage: str = CREATING
    new_key_id: str | None = None
    deactivate: bool = False

    def __repr__(self) -> str:
        new = mask_key_id(self.new_key_id) if self.new_key_id else "-"
        return f"Journal({self.stage}, {mask_key_id(self.old_key_id)} -> {new})"

    def advanced(self, stage: str, new_key_id: str | None = None) -> Journal:
        if STAGES.index(stage) < STAGES.index(self.stage):
            raise ValueError(f"a journal goes forward only: {self.stage} -> {stage}")
        return replace(self, stage=stage, new_key_id=new_key_id or self.new_key_id)

    def to_record(self) -> dict[str, Any]:
        return {
            "format": JOURNAL_FORMAT,
            "source": self.source,
            "old_key_id": self.old_key_id,
            "existing": list(self.existing),
            "started_at": self.started_at,
            "stage": self.stage,
            "new_key_id": self.new_key_id,
            "deactivate": self.deactivate,
        }

    @classmethod
    def from_record(cls, data: object) -> Journal:
        if not isinstance(data, dict) or data.get("format") != JOURNAL_FORMAT:
            raise JournalDamaged("not a rotation journal")
        existing = data.get("existing")
        started = data.get("started_at")
        new = data.get("new_key_id")
        fields_ok = (
            isinstance(data.get("source"), str)
            and _key_id(data.get("old_key_id"))
            and isinstance(existing, list)
            and all(_key_id(k) for k in existing)
            and isinstance(started, int | float)
            and not isinstance(started, bool)
            and math.isfinite(started)
            and data.get("stage") in STAGES
            and (new is None or _key_id(new))
            and isinstance(data.get("deactivate", False), bool)
        )
        if not fields_ok:
            raise JournalDamaged("a rotation journal with a missing or impossible field")
        journal = cls(
            source=data["source"],
            old_key_id=data["old_key_id"],
            existing=tuple(existing),  # type: ignore[arg-type]
            started_at=float(started),  # type: ignore[arg-type]
            stage=data["stage"],
            new_key_id=new,
            deactivate=bool(data.get("deactivate", False)),
        )
        if journal.stage != CREATING and journal.new_key_id is None:
            raise JournalDamaged(f"a rotation journal at stage {journal.stage} without the new key id")
        return journal


def _key_id(value: object) -> bool:
    return isinstance(value, str) and mask_key_id(value) != "…"


@dataclass(frozen=True)
class IamKey:
    """One access key of the user, as ListAccessKeys gives it."""

    key_id: str
    active: bool
    created: float  # epoch seconds


@dataclass(frozen=True)
class Recovery:
    action: str  # FINISH, UNDO or FOREIGN
    delete: tuple[str, ...] = ()  # for UNDO: the key ids the interrupted rotation created
    verified: bool = False  # for FINISH: the new pair answered already


def recovery(journal: Journal, stored_key_id: str, keys: list[IamKey]) -> Recovery:
    """What to do with a journal left behind, given the key id stored now and the user's keys."""
    if journal.new_key_id is not None and stored_key_id == journal.new_key_id:
        return Recovery(FINISH, verified=journal.stage == VERIFIED)
    if stored_key_id != journal.old_key_id:
        return Recovery(FOREIGN)
    if journal.new_key_id is not None:
        listed = {key.key_id for key in keys}
        return Recovery(UNDO, tuple(k for k in (journal.new_key_id,) if k in listed))
    # Killed before the new key id was recorded: a key that was not there when the journal was
    # written, and that IAM dates within one CreateAccessKey call of it (its retries included, and
    # the clocks' skew either way), is the one it made. A key made later is someone else's: never
    # deleted here (second_keys refuses it, naming it).
    earliest = journal.started_at - CLOCK_SKEW_SECONDS
    latest = journal.started_at + CREATE_CALL_SECONDS + CLOCK_SKEW_SECONDS
    made = tuple(
        key.key_id
        for key in keys
        if key.key_id != journal.old_key_id
        and key.key_id not in journal.existing
        and earliest <= key.created <= latest
    )
    return Recovery(UNDO, made)


@dataclass(frozen=True)
class SecondKeys:
    """The user's keys besides the stored one: inactive ones credhelper itself deactivated
    (`retired`: deleted before a new key is made, IAM allows two) and any other (`unknown`: refused)."""

    retired: tuple[str, ...]
    unknown: tuple[IamKey, ...]


def second_keys(keys: list[IamKey], stored_key_id: str, deactivated: set[str]) -> SecondKeys:
    others = [key for key in keys if key.key_id != stored_key_id]
    retired = tuple(k.key_id for k in others if k.key_id in deactivated and not k.active)
    unknown = tuple(k for k in others if k.key_id not in retired)
    return SecondKeys(retired, unknown)


def age_text(created: float, now: float) -> str:
    """`12 days old`, `3 hours old`: a key's age as a person reads it."""
    seconds = max(0.0, now - created)
    if seconds >= 2 * DAY:
        return f"{int(seconds // DAY)} days old"
    if seconds >= 2 * 3600:
        return f"{int(seconds // 3600)} hours old"
    return f"{int(seconds // 60)} minutes old"


def age_days(created: float, now: float) -> int:
    return int(max(0.0, now - created) // DAY)


def unknown_key_refusal(source: str, key: IamKey, now: float) -> str:
    state = "active" if key.active else "inactive"
    return (
        f"{source}: the IAM user has a second access key, {mask_key_id(key.key_id)} ({state}, "
        f"{age_text(key.created, now)}), that credhelper did not make; IAM allows two, so rotate "
        "cannot make a new one: delete that key yourself if nothing uses it "
        "(`aws iam delete-access-key --access-key-id ...`), then run rotate again"
    )


def rotation_due(
    created: float | None, rotate_after_days: int | None, last_try: float | None, now: float
) -> bool:
    """The daemon's question: is the source key older than `rotate_after_days`, with no attempt
    in the last day?"""
    if created is None or rotate_after_days is None:
        return False
    if last_try is not None and now - last_try < DAY:
        return False
    return now - created >= rotate_after_days * DAY
