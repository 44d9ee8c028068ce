"""The rotation journal and the decisions made from it (credhelper/rotation.py), as tables: which
key is stored now decides whether an interrupted rotation is finished or undone."""

from __future__ import annotations

import pytest

from credhelper.rotation import (
    CREATED,
    CREATING,
    FINISH,
    FOREIGN,
    STORED,
    UNDO,
    VERIFIED,
    IamKey,
    Journal,
    JournalDamaged,
    age_text,
    recovery,
    rotation_due,
    second_keys,
    unknown_key_refusal,
)

OLD, NEW, OTHER = "AKIAOLDKEY00EXAMPLE1", "AKIANEWKEY00EXAMPLE2", "AKIAOTHERKEYEXAMPLE3"
START = 1_000_000.0


def journal(stage: str = CREATING, new: str | None = None) -> Journal:
    return Journal("keyring entry 'x'", OLD, (OLD,), START, stage=stage, new_key_id=new)


def key(key_id: str, created: float = START + 1, active: bool = True) -> IamKey:
    return IamKey(key_id, active, created)


@pytest.mark.parametrize(
    ("stage", "new", "stored", "keys", "action", "delete", "verified"),
    [
        # killed before CreateAccessKey answered: a key made after the journal is the rotation's
        (CREATING, None, OLD, [key(OLD, 0), key(NEW)], UNDO, (NEW,), False),
        (CREATING, None, OLD, [key(OLD, 0)], UNDO, (), False),
        # a key IAM dates well before the journal is not the rotation's: never deleted
        (CREATING, None, OLD, [key(OLD, 0), key(OTHER, START - 3600)], UNDO, (), False),
        # nor one it dates after any CreateAccessKey call of the rotation could have ended: a person
        # made it after a rotate that failed
        (CREATING, None, OLD, [key(OLD, 0), key(OTHER, START + 3600)], UNDO, (), False),
        # the new id recorded, the store never happened: delete exactly that key
        (CREATED, NEW, OLD, [key(OLD, 0), key(NEW), key(OTHER)], UNDO, (NEW,), False),
        (CREATED, NEW, OLD, [key(OLD, 0)], UNDO, (), False),  # deleted already
        # stored (the journal may lag the store by one step): finish
        (CREATED, NEW, NEW, [key(OLD, 0), key(NEW)], FINISH, (), False),
        (STORED, NEW, NEW, [key(OLD, 0), key(NEW)], FINISH, (), False),
        (VERIFIED, NEW, NEW, [key(NEW)], FINISH, (), True),
        # someone stored another pair meanwhile: IAM is left alone
        (STORED, NEW, OTHER, [key(OLD, 0), key(NEW)], FOREIGN, (), False),
        (CREATING, None, OTHER, [key(OLD, 0), key(NEW)], FOREIGN, (), False),
    ],
)
def test_recovery(
    stage: str,
    new: str | None,
    stored: str,
    keys: list[IamKey],
    action: str,
    delete: tuple[str, ...],
    verified: bool,
) -> None:
    decided = recovery(journal(stage, new), stored, keys)
    assert (decided.action, decided.delete, decided.verified) == (action, delete, verified)


def test_a_journal_round_trips_and_holds_no_secret() -> None:
    written = journal(CREATED, NEW)
    record = written.to_record()
    assert Journal.from_record(record) == written
    assert set(record) == {
        "format",
        "source",
        "old_key_id",
        "existing",
        "started_at",
        "stage",
        "new_key_id",
        "deactivate",
    }
    assert "AKIA…PLE2" in repr(written) and NEW not in repr(written)


@pytest.mark.parametrize(
    "change",
    [
        {"format": "other"},
        {"stage": "done"},
        {"old_key_id": "not a key"},
        {"stage": STORED, "new_key_id": None},
        {"started_at": float("nan")},
        {"existing": "AKIA"},
    ],
)
def test_a_damaged_journal_is_refused(change: dict[str, object]) -> None:
    with pytest.raises(JournalDamaged):
        Journal.from_record({**journal(CREATED, NEW).to_record(), **change})


def test_a_journal_only_goes_forward() -> None:
    with pytest.raises(ValueError):
        journal(STORED, NEW).advanced(CREATED)


def test_second_keys_only_inactive_ones_credhelper_deactivated_may_go() -> None:
    keys = [key(NEW), key(OLD, active=False), key(OTHER, active=False)]
    found = second_keys(keys, NEW, deactivated={OLD})
    assert found.retired == (OLD,)
    assert [k.key_id for k in found.unknown] == [OTHER]
    reactivated = second_keys([key(NEW), key(OLD)], NEW, deactivated={OLD})
    assert reactivated.retired == () and [k.key_id for k in reactivated.unknown] == [OLD]


def test_the_refusal_names_the_key_masked_with_its_age() -> None:
    text = unknown_key_refusal("[dev] of ~/.aws/credentials", key(OTHER, START, False), START + 40 * 86400)
    assert "AKIA…PLE3" in text and OTHER not in text and "40 days old" in text and "inactive" in text


@pytest.mark.parametrize(
    ("seconds", "text"), [(59, "0 minutes old"), (3 * 3600, "3 hours old"), (3 * 86400 + 5, "3 days old")]
)
def test_age_text(seconds: float, text: str) -> None:
    assert age_text(START, START + seconds) == text


@pytest.mark.parametrize(
    ("created", "days", "last_try", "due"),
    [
        (START - 91 * 86400, 90, None, True),
        (START - 89 * 86400, 90, None, False),
        (START - 91 * 86400, None, None, False),
        (START - 91 * 86400, 90, START - 3600, False),  # one attempt a day
        (START - 91 * 86400, 90, START - 86400, True),
        (None, 90, None, False),
    ],
)
def test_rotation_due(created: float | None, days: int | None, last_try: float | None, due: bool) -> None:
    assert rotation_due(created, days, last_try, START) is due


def test_sources_differing_only_in_case_share_one_journal_and_lock() -> None:
    """On a case-insensitive file system they would share the file anyway: never half of it."""
    from credhelper.paths import rotation_file

    for kind in ("json", "lock"):
        assert rotation_file("/c", "keyring-Dev", kind) == rotation_file("/c", "keyring-dev", kind)


def test_a_long_term_secret_is_not_kept_in_the_log_filters_list() -> None:
    """That list lives as long as the process: a long-term secret must not (DESIGN section 13).
    botocore's debug log shows one only in fields the filter redacts by name."""
    from credhelper import logsetup
    from credhelper.errors import CredhelperError
    from credhelper.iam import caller_of_pair
    from credhelper.keystore import LongTermPair
    from credhelper.profile import Profile

    secret = "LongTermSecretForThisTestOnly" + "x" * 11
    profile = Profile(
        "p", "arn:aws:iam::123456789012:role/x", "s", source_keyring="k", sts_endpoint="http://127.0.0.1:9"
    )
    with pytest.raises(CredhelperError):
        caller_of_pair(profile, LongTermPair("AKIAIOSFODNN7EXAMPLE", secret))
    assert secret not in logsetup._known_secrets
