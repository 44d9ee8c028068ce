"""`credhelper rotate PROFILE [--deactivate]` (DESIGN section 13): a new long-term key for the
profile's source user, stored where the old one lives, verified, then the old key deleted (or
deactivated). Every step is journaled first (`rotation.py` decides; this module acts), so a
rotation killed anywhere is finished or undone by the next `rotate`, or by the daemon through
`finish_interrupted`: the stored pair always works (or will, within IAM's propagation), and a
created key is never left unstored and active beyond that.

Order: ListAccessKeys (a second key credhelper has no record of is refused, 78) -> journal ->
CreateAccessKey -> journal (the new id) -> store -> journal -> GetCallerIdentity with the new pair
(up to 30 s) -> journal -> delete or deactivate the old key -> journal removed.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from .cache import Cache
from .credentials import format_utc, mask_key_id
from .errors import AwsRefusedError, ConfigError, CredhelperError, StsUnavailableError, as_credhelper_error
from .fileio import atomic_write, file_lock, read_trusted_json, remove_quietly
from .iam import IamGateway, NewKey, Signer, caller_of_pair, is_aws_endpoint
from .keysource import KeySource, StoreUncertain, key_source, read_source_pair, store_source_pair
from .keystore import LongTermPair
from .paths import rotation_file
from .profile import Profile
from .refresher import Refresher
from .rotation import (
    CREATED,
    DAY,
    FINISH,
    FOREIGN,
    STORED,
    UNDO,
    VERIFIED,
    IamKey,
    Journal,
    JournalDamaged,
    recovery,
    second_keys,
    unknown_key_refusal,
)

log = logging.getLogger("credhelper.rotate")
VERIFY_SECONDS = 30.0  # IAM's propagation: a new key may take this long to work everywhere
VERIFY_INTERVAL = 2.0
LOCK_SECONDS = 5.0
JOURNAL_MAX_BYTES = 16 * 1024
RETIRED_FORMAT = "credhelper-retired-keys/1"


@dataclass
class Report:
    """What a rotate did, as lines a person reads (no secret; key ids masked)."""

    lines: list[str] = field(default_factory=list)


class Rotator:
    def __init__(
        self,
        profile: Profile,
        environ: Mapping[str, str],
        cache: Cache,
        refresher: Refresher,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.profile = profile
        self.cache = cache
        self.refresher = refresher
        self.clock = clock
        self.sleep = sleep
        self.source: KeySource = key_source(profile, environ)
        self.directory = cache.ensure()
        self.journal_path = rotation_file(self.directory, self.source.key, "json")
        self.report = Report()
        self._endpoint_named = False

    # -- the files ------------------------------------------------------------------------

    def _read_journal(self) -> Journal | None:
        fix = "check the user's access keys in IAM, then remove it"
        data = read_trusted_json(self.journal_path, "rotation journal", fix, JOURNAL_MAX_BYTES)
        if data is None:
            if os.path.lexists(self.journal_path):
                raise ConfigError(f"{self.journal_path}: not a rotation journal credhelper can read: {fix}")
            return None
        try:
            return Journal.from_record(data)
        except JournalDamaged as damaged:
            raise ConfigError(f"{self.journal_path}: {damaged}: {fix}") from None

    def _write_journal(self, journal: Journal) -> Journal:
        atomic_write(self.journal_path, json.dumps(journal.to_record(), sort_keys=True).encode())
        return journal

    def _retired_path(self) -> str:
        return rotation_file(self.directory, self.source.key, "retired.json")

    def _retired(self) -> set[str]:
        data = read_trusted_json(self._retired_path(), "rotation record", "remove it", JOURNAL_MAX_BYTES)
        keys = data.get("deactivated") if data and data.get("format") == RETIRED_FORMAT else None
        return {k for k in keys if isinstance(k, str)} if isinstance(keys, list) else set()

    def _set_retired(self, keys: set[str]) -> None:
        record = {"format": RETIRED_FORMAT, "deactivated": sorted(keys)}
        atomic_write(self._retired_path(), json.dumps(record).encode())

    def _record_key(self, key_id: str, created: float) -> None:
        """The source key's id (masked) and CreateDate in the profile's state, for status."""
        try:
            self.cache.update_state(
                self.profile.name, source_key_created=created, source_key_id=mask_key_id(key_id)
            )
        except (CredhelperError, OSError) as error:
            log.warning("profile %s: cannot record the source key's age: %s", self.profile.name, error)

    # -- IAM --------------------------------------------------------------------------------

    def _iam(self, stored: LongTermPair) -> IamGateway:
        """IAM signed by the stored pair, or with mfa_serial by the MFA session made from it."""
        if self.profile.mfa_serial:
            session = self.refresher.mfa_session(self.profile)
            signer = Signer(session.access_key_id, session.secret_access_key, session.session_token)
        else:
            signer = Signer(stored.access_key_id, stored.secret_access_key)
        iam = IamGateway(self.profile, signer)
        if not self._endpoint_named and not is_aws_endpoint(iam.endpoint):
            self.report.lines.append(f"IAM endpoint: {iam.shown_endpoint} (not AWS's own)")
        self._endpoint_named = True
        return iam

    def _verified(self, pair: LongTermPair) -> str:
        """GetCallerIdentity with the new pair, tried for up to VERIFY_SECONDS (IAM's propagation)."""
        deadline = self.clock() + VERIFY_SECONDS
        while True:
            try:
                return caller_of_pair(self.profile, pair)
            except CredhelperError:
                if self.clock() + VERIFY_INTERVAL > deadline:
                    raise
                self.sleep(VERIFY_INTERVAL)

    def _retire(self, iam: IamGateway, journal: Journal) -> str:
        old = journal.old_key_id
        if journal.deactivate:
            self._set_retired(self._retired() | {old})  # first: a key it names may go once inactive
            iam.deactivate_key(old)
            return f"{mask_key_id(old)} deactivated (delete it with the next rotate, or yourself)"
        gone = iam.delete_key(old)
        return f"{mask_key_id(old)} deleted" if gone else f"{mask_key_id(old)} was deleted already"

    # -- recovery ---------------------------------------------------------------------------

    def finish_interrupted(self) -> str | None:
        """Finish or undo a rotation a kill interrupted (its journal left behind): FINISH or UNDO,
        None when there was none. Holds the source's rotation lock."""
        with file_lock(rotation_file(self.directory, self.source.key, "lock"), LOCK_SECONDS):
            return self._finish_interrupted()

    def _finish_interrupted(self) -> str | None:
        journal = self._read_journal()
        if journal is None:
            return None
        stored = read_source_pair(self.source)
        iam = self._iam(stored)
        _, keys = iam.list_keys()
        decision = recovery(journal, stored.access_key_id, keys)
        new = mask_key_id(journal.new_key_id) if journal.new_key_id else "a key not yet recorded"
        if decision.action == FOREIGN:
            raise ConfigError(
                f"{self.journal_path}: a rotation of {self.source.label} from "
                f"{mask_key_id(journal.old_key_id)} to {new} was interrupted, and the stored key is "
                f"now {mask_key_id(stored.access_key_id)}, neither of them: check the user's access "
                "keys in IAM, then remove the journal"
            )
        if decision.action == FINISH:
            if not decision.verified:
                self._verified(stored)
                journal = self._write_journal(journal.advanced(VERIFIED))
            retired = self._retire(iam, journal)
            remove_quietly(self.journal_path)
            self._record_key(stored.access_key_id, _created(keys, stored.access_key_id, self.clock()))
            self.report.lines.append(
                f"finished an interrupted rotation of {self.source.label}: "
                f"{mask_key_id(journal.old_key_id)} -> {new}, verified; {retired}"
            )
            return FINISH
        for key_id in decision.delete:  # UNDO: keys whose secret was never stored
            iam.delete_key(key_id)
        remove_quietly(self.journal_path)
        undone = ", ".join(mask_key_id(k) for k in decision.delete) or "no key had been created"
        self.report.lines.append(
            f"undid an interrupted rotation of {self.source.label} ({undone}; never stored, deleted)"
            if decision.delete
            else f"undid an interrupted rotation of {self.source.label} ({undone})"
        )
        return UNDO

    # -- rotation ---------------------------------------------------------------------------

    def rotate_if_due(self, after_days: int) -> bool:
        """For the daemon (`rotate_after_days`): an interrupted rotation finished or undone, then
        the stored key rotated if IAM dates it `after_days` or more ago. True when a key changed."""
        with file_lock(rotation_file(self.directory, self.source.key, "lock"), LOCK_SECONDS):
            if self._finish_interrupted() == FINISH:
                return True
            stored = read_source_pair(self.source)
            _, keys = self._iam(stored).list_keys()
            created = _created(keys, stored.access_key_id, self.clock())
            self._record_key(stored.access_key_id, created)
            if self.clock() - created < after_days * DAY:
                return False
            self._rotate(deactivate=False)
            return True

    def rotate(self, deactivate: bool) -> Report:
        with file_lock(rotation_file(self.directory, self.source.key, "lock"), LOCK_SECONDS):
            if self._finish_interrupted() != FINISH:  # a finished one is the new key asked for
                self._rotate(deactivate)
        return self.report

    def _rotate(self, deactivate: bool) -> None:
        old = read_source_pair(self.source)
        iam = self._iam(old)
        _, keys = iam.list_keys()
        now = self.clock()
        if not any(key.key_id == old.access_key_id for key in keys):
            raise ConfigError(
                f"{self.source.label}: its key {mask_key_id(old.access_key_id)} is not among the IAM "
                "user's access keys: store the user's working key there first"
            )
        self._record_key(old.access_key_id, _created(keys, old.access_key_id, now))
        retired = self._retired()
        second = second_keys(keys, old.access_key_id, retired)
        if second.unknown:
            raise ConfigError(unknown_key_refusal(self.source.label, second.unknown[0], now))
        for key_id in second.retired:
            iam.delete_key(key_id)
            self._set_retired(retired - {key_id})
            self.report.lines.append(f"deleted {mask_key_id(key_id)}, deactivated by an earlier rotate")
        existing = tuple(k.key_id for k in keys if k.key_id not in second.retired)
        journal = self._write_journal(
            Journal(self.source.label, old.access_key_id, existing, now, deactivate=deactivate)
        )
        try:
            new = iam.create_key()
        except StsUnavailableError:
            raise  # the key may have been made: the journal stays for the next rotate to look
        except CredhelperError:
            remove_quietly(self.journal_path)  # IAM said no: no key was made
            raise
        journal = self._write_journal(journal.advanced(CREATED, new.pair.access_key_id))
        self._store(iam, journal, old, new)
        journal = self._write_journal(journal.advanced(STORED))
        try:
            caller = self._verified(new.pair)
        except AwsRefusedError as refused:
            self._put_back(iam, journal, old, new, refused)
            raise
        except CredhelperError as unverified:  # STS unreachable: the new key may well work
            unverified.args = (
                f"{unverified}; the new key {mask_key_id(new.pair.access_key_id)} is stored and the old "
                f"one still active: the next `credhelper rotate {self.profile.name}` verifies it and "
                "retires the old key",
            )
            raise
        journal = self._write_journal(journal.advanced(VERIFIED))
        retired_line = self._retire(iam, journal)
        remove_quietly(self.journal_path)
        self._record_key(new.pair.access_key_id, new.created)
        self.report.lines.append(
            f"{self.source.label}: {mask_key_id(old.access_key_id)} -> {mask_key_id(new.pair.access_key_id)} "
            f"(created {format_utc(new.created)}), verified as {caller}; {retired_line}"
        )

    def _store(self, iam: IamGateway, journal: Journal, old: LongTermPair, new: NewKey) -> None:
        """The new pair stored where the old one lives. If that fails, the new key is deleted at
        once and the storing error raised; but if the store may hold it (written, not read back),
        the key is deleted only once the store is seen to hold the old pair still, and when that
        cannot be seen the journal is kept for the next rotate to decide."""
        try:
            store_source_pair(self.source, old.access_key_id, new.pair, self.directory)
            return
        except StoreUncertain as uncertain:
            failure: CredhelperError = uncertain
            stored = self._stored_key_id()
            if stored == new.pair.access_key_id:
                log.warning("%s: stored after all (%s)", self.source.label, uncertain)
                return
            if stored != old.access_key_id:
                uncertain.args = (
                    f"{uncertain}; whether {mask_key_id(new.pair.access_key_id)} was stored cannot be "
                    f"told now: the next `credhelper rotate {self.profile.name}` finishes or undoes "
                    "this rotation from its journal",
                )
                raise
        except Exception as error:
            failure = as_credhelper_error(error, f"store the new key in {self.source.label}")
        try:
            iam.delete_key(new.pair.access_key_id)
        except CredhelperError as undo:
            log.error(
                "the new key %s was not stored and could not be deleted: %s (the next rotate deletes it)",
                mask_key_id(new.pair.access_key_id),
                undo,
            )
        else:
            remove_quietly(self.journal_path)
        raise failure

    def _stored_key_id(self) -> str | None:
        try:
            return read_source_pair(self.source).access_key_id
        except Exception:  # a locked keyring, a file being edited: nobody can tell
            return None

    def _put_back(
        self, iam: IamGateway, journal: Journal, old: LongTermPair, new: NewKey, refused: CredhelperError
    ) -> None:
        """The new key never worked within IAM's propagation: the old pair (still active) goes
        back where it lived and the new key is deleted. Killed meanwhile, the journal undoes it."""
        try:
            store_source_pair(self.source, new.pair.access_key_id, old, self.directory)
            iam.delete_key(new.pair.access_key_id)
        except CredhelperError as error:
            log.error("could not put %s back: %s", mask_key_id(old.access_key_id), error)
            return
        remove_quietly(self.journal_path)
        refused.args = (
            f"{refused}; it did not work within {VERIFY_SECONDS:.0f} s, so the old key "
            f"{mask_key_id(old.access_key_id)} is back in {self.source.label} and the new key deleted",
        )


def _created(keys: list[IamKey], key_id: str, default: float) -> float:
    return next((key.created for key in keys if key.key_id == key_id), default)


def rotate(
    profile: Profile, environ: Mapping[str, str], cache: Cache, refresher: Refresher, deactivate: bool
) -> Report:
    return Rotator(profile, environ, cache, refresher).rotate(deactivate)


def finish_interrupted(
    profile: Profile, environ: Mapping[str, str], cache: Cache, refresher: Refresher
) -> Report:
    """For the daemon: a rotation of the profile's source that a kill interrupted, finished or
    undone (nothing when there is none; a source that is no stored key has none)."""
    rotator = Rotator(profile, environ, cache, refresher)
    rotator.finish_interrupted()
    return rotator.report
