"""Getting credentials for a profile: from the cache when they last long enough, else from STS,
with one STS call per refresh however many processes ask at once (the cache lock)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from .cache import Cache
from .credentials import Credentials, mask_key_id
from .errors import CredhelperError, LockTimeout, MfaCodeNeeded, as_credhelper_error
from .logsetup import register_secret
from .mfa import code_from_command, code_from_terminal, code_needed
from .policy import Want, short_session_warning, will_do
from .profile import Profile
from .windows import MFA_SESSION_MIN_SECONDS

if TYPE_CHECKING:
    from .sts import StsGateway

log = logging.getLogger("credhelper.refresh")
Clock = Callable[[], float]


def _registered(credentials: Credentials) -> Credentials:
    """Whatever this process holds, its log lines can never show."""
    register_secret(credentials.secret_access_key, credentials.session_token)
    return credentials


def new_sts_gateway() -> StsGateway:
    """A gateway to STS, botocore imported only now: once the first STS call is due."""
    from .sts import StsGateway

    return StsGateway()


# How long a process that would ask for an MFA code waits for another one's prompt to end before
# saying that the other is asking: long enough for a check (mfa_prompt_holder), far shorter than a person.
MFA_PROMPT_LOCK_WAIT = 1.0


class _AskFirst(Exception):
    """The profile's MFA session has to be made from a code a person types: the lock is let go
    and the person asked first."""


class Refresher:
    def __init__(
        self,
        cache: Cache,
        gateway: Callable[[], StsGateway] = new_sts_gateway,
        clock: Clock = time.time,
        interactive: bool = False,
    ) -> None:
        self.cache = cache
        self._gateway_factory = gateway
        self._gateway: StsGateway | None = None
        self._gateway_lock = threading.Lock()  # the daemon's endpoint threads share this refresher
        self.clock = clock
        self.interactive = interactive

    @property
    def gateway(self) -> StsGateway:
        with self._gateway_lock:
            if self._gateway is None:
                self._gateway = self._gateway_factory()
            return self._gateway

    def cached(self, profile: Profile) -> Credentials | None:
        """The cached credentials if they have not expired."""
        credentials = self.cache.read_credentials(profile.name, profile.fingerprint)
        if credentials is None or credentials.is_expired(self.clock()):
            return None
        return credentials

    def obtain(
        self, profile: Profile, min_seconds_left: float, issued_after: float | None = None
    ) -> Credentials:
        """Credentials with at least `min_seconds_left` to live (or, for sessions that arrive shorter,
        not past half their life), issued after `issued_after` if given. Every failure, whatever
        its kind, is recorded in the profile's state and raised as a CredhelperError."""
        wanted = Want(min_seconds_left, issued_after)
        found = self.cache.read_credentials(profile.name, profile.fingerprint)
        if found is not None and will_do(found, wanted, self.clock()):
            return _registered(found)
        try:
            try:
                return self._obtain_locked(profile, wanted, None)
            except _AskFirst:
                code = self._ask_for_code(profile)  # with no lock held: a person may take minutes
            return self._obtain_locked(profile, wanted, code)
        except Exception as error:
            failure = as_credhelper_error(error, f"keep credentials of profile {profile.name} in the cache")
            self._record_failure(profile, failure)
            if failure is error:
                raise
            raise failure from error

    def mfa_session(self, profile: Profile) -> Credentials:
        """The profile's MFA session (cached, else made now, a person asked as `obtain` asks):
        what calls other than AssumeRole sign with when the profile has `mfa_serial` (rotate)."""
        try:
            try:
                with self.cache.lock(profile.name):
                    return self._mfa_session(profile, None)
            except _AskFirst:
                code = self._ask_for_code(profile)
            with self.cache.lock(profile.name):
                return self._mfa_session(profile, code)
        except Exception as error:
            raise as_credhelper_error(error, f"keep the MFA session of profile {profile.name}") from error

    def _obtain_locked(self, profile: Profile, wanted: Want, code: str | None) -> Credentials:
        """Under the profile's cache lock: the cache looked at again, else new credentials (with the
        MFA `code` when one was typed). Raises _AskFirst when a person must type a code first."""
        with self.cache.lock(profile.name):
            found = self.cache.read_credentials(profile.name, profile.fingerprint)
            if found is not None and will_do(found, wanted, self.clock()):
                return _registered(found)  # another process refreshed while we waited
            return self._fetch(profile, code)  # _fetch registers what it got

    def _ask_for_code(self, profile: Profile) -> str:
        """A code typed at the terminal, asked while holding only the profile's MFA prompt lock:
        whoever needs the profile meanwhile is told at once that this process is asking, instead
        of waiting for a person behind the cache lock. A second process that would ask too is
        told the same, rather than prompting on its own terminal for a code one of them would waste."""
        try:
            with self.cache.mfa_prompt_lock(profile.name, timeout=MFA_PROMPT_LOCK_WAIT):
                code = code_from_terminal(profile)
        except LockTimeout as held:
            raise code_needed(profile, asking=True, asker=held.holder) from None
        if code is None:
            raise code_needed(profile, asking=False)
        return code

    def _record_failure(self, profile: Profile, error: CredhelperError) -> None:
        """Best effort: a full disk or a held state lock must not hide the failure being reported."""
        if isinstance(error, LockTimeout) and error.path == self.cache.path(profile.name, "state.lock"):
            return  # waiting for that lock again would only double the wait
        try:
            state = self.cache.read_state(profile.name)
            self.cache.update_state(
                profile.name,
                last_error=str(error),
                last_error_at=self.clock(),
                attempts=_count(state.get("attempts")) + 1,
                mfa_needed=isinstance(error, MfaCodeNeeded),
            )
        except (CredhelperError, OSError) as state_error:
            log.debug("profile %s: cannot record the failure in its state: %s", profile.name, state_error)

    def _fetch(self, profile: Profile, code: str | None = None) -> Credentials:
        via = self._mfa_session(profile, code) if profile.mfa_serial else None
        credentials = self.gateway.assume_role(profile, via)
        credentials = Credentials(
            access_key_id=credentials.access_key_id,
            secret_access_key=credentials.secret_access_key,
            session_token=credentials.session_token,
            expiration=credentials.expiration,
            issued_at=self.clock(),
            assumed_role_arn=credentials.assumed_role_arn,
        )
        _registered(credentials)
        log.info(
            "profile %s: new credentials %s for %s, valid until %s",
            profile.name,
            mask_key_id(credentials.access_key_id),
            credentials.assumed_role_arn,
            credentials.expiration_text,
        )
        warning = short_session_warning(profile, credentials)
        if warning:
            log.warning("%s", warning)
        self.cache.write_credentials(profile.name, profile.fingerprint, credentials)
        self.cache.update_state(
            profile.name,
            last_refresh=credentials.issued_at,
            last_error=None,
            last_error_at=None,
            attempts=0,
            mfa_needed=False,
            role_arn=profile.role_arn,
        )
        return credentials

    def _mfa_session(self, profile: Profile, code: str | None) -> Credentials:
        """The MFA session, made now from `code` (or mfa_command's) when the cached one is missing
        or too short. Never asks a person: that happens with no lock held (_AskFirst)."""
        session = self.cache.read_credentials(profile.name, profile.mfa_fingerprint, kind="mfa.json")
        if session is not None and session.seconds_left(self.clock()) >= MFA_SESSION_MIN_SECONDS:
            return _registered(session)
        if code is None and profile.mfa_command:
            code = code_from_command(profile)  # bounded by mfa.MFA_COMMAND_TIMEOUT
        if code is None:
            if self.interactive:
                raise _AskFirst
            raise code_needed(profile, *self.cache.mfa_prompt_held(profile.name))
        session = _registered(self.gateway.get_session_token(profile, code))
        self.cache.write_credentials(profile.name, profile.mfa_fingerprint, session, kind="mfa.json")
        return session


def _count(value: object) -> int:
    """A counter from a state file that may hold anything."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 1_000_000_000:
        return value
    return 0
