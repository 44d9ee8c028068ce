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
from .errors import CredhelperError
from .fileio import LockTimeout
from .logsetup import register_secret
from .mfa import mfa_code
from .profile import Profile

if TYPE_CHECKING:
    from .sts import StsGateway

log = logging.getLogger("credhelper.refresh")
MFA_MIN_SECONDS = 300
Clock = Callable[[], float]


def _registered(credentials: Credentials) -> Credentials:
    """Whatever this process holds, its log lines can never show."""
    register_secret(credentials.secret_access_key, credentials.session_token)
    return credentials


class Refresher:
    def __init__(
        self,
        cache: Cache,
        gateway: Callable[[], StsGateway],
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
        """Credentials with at least `min_seconds_left` to live, issued after `issued_after` if given."""

        def usable(found: Credentials) -> bool:
            return found.seconds_left(self.clock()) >= min_seconds_left and (
                issued_after is None or found.issued_at >= issued_after
            )

        found = self.cache.read_credentials(profile.name, profile.fingerprint)
        if found is not None and usable(found):
            return _registered(found)
        try:
            with self.cache.lock(profile.name):
                found = self.cache.read_credentials(profile.name, profile.fingerprint)
                if found is not None and usable(found):  # another process refreshed while we waited
                    return _registered(found)
                return _registered(self._fetch(profile))
        except LockTimeout:
            raise CredhelperError(
                f"profile {profile.name}: another credhelper process has held the cache lock for "
                "too long; if it is stuck, stop it"
            ) from None

    def refresh_now(self, profile: Profile) -> Credentials:
        """New credentials, unless another process got some after this call began."""
        return self.obtain(profile, min_seconds_left=60, issued_after=self.clock())

    def _fetch(self, profile: Profile) -> Credentials:
        try:
            via = self._mfa_session(profile) if profile.mfa_serial else None
            credentials = self.gateway.assume_role(profile, via)
        except CredhelperError as error:
            state = self.cache.read_state(profile.name)
            self.cache.update_state(
                profile.name,
                last_error=str(error),
                last_error_at=self.clock(),
                attempts=int(state.get("attempts", 0)) + 1,
                mfa_needed="MFA code" in str(error),
            )
            raise
        credentials = Credentials(
            access_key_id=credentials.access_key_id,
            secret_access_key=credentials.secret_access_key,
            session_token=credentials.session_token,
            expiration=credentials.expiration,
            issued_at=self.clock(),
            assumed_role_arn=credentials.assumed_role_arn,
        )
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
        log.info(
            "profile %s: new credentials %s for %s, valid until %s",
            profile.name,
            mask_key_id(credentials.access_key_id),
            credentials.assumed_role_arn,
            credentials.expiration_text,
        )
        return credentials

    def _mfa_session(self, profile: Profile) -> Credentials:
        session = self.cache.read_credentials(profile.name, profile.mfa_fingerprint, kind="mfa.json")
        if session is not None and session.seconds_left(self.clock()) >= MFA_MIN_SECONDS:
            return _registered(session)
        code = mfa_code(profile, self.interactive)
        session = _registered(self.gateway.get_session_token(profile, code))
        self.cache.write_credentials(profile.name, profile.mfa_fingerprint, session, kind="mfa.json")
        return session
