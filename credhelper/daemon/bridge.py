"""The endpoint's lookup (`server.CredentialServer` calls it from its worker threads): the cached
credentials, or the coordinator asked for a refresh and the one in flight waited for."""

from __future__ import annotations

from ..credentials import Credentials
from ..endpoint.protocol import UnknownProfile
from ..errors import CredhelperError
from ..policy import Want, will_do
from ..refresher import Refresher
from ..schedule import Clock
from .coordinator import Coordinator

ENDPOINT_WAIT_SECONDS = 20.0  # under botocore's and the JS SDK's retries, well over one STS round trip
MIN_ENDPOINT_SECONDS = 60


class EndpointBridge:
    def __init__(self, coordinator: Coordinator, refresher: Refresher, clock: Clock) -> None:
        self.coordinator = coordinator
        self.refresher = refresher
        self.clock = clock

    def endpoint_credentials(self, name: str) -> Credentials:
        """For a request at the endpoint (any thread): the cached credentials if they last the
        handout window; otherwise ask the scheduler and wait for the refresh in flight. A profile
        retrying with backoff is not asked again: requests never add STS calls to the backoff's."""
        profile = self.coordinator.profiles.get(name)
        if profile is None:
            raise UnknownProfile(name)
        credentials = self.refresher.cached(profile)
        if credentials is not None and will_do(credentials, Want(profile.handout_seconds), self.clock.wall()):
            return credentials
        if not self.coordinator.is_retrying(name):
            self._ask_and_wait(name)
        credentials = self.refresher.cached(profile)
        if credentials is not None and credentials.seconds_left(self.clock.wall()) > MIN_ENDPOINT_SECONDS:
            return credentials  # short-lived beats none while STS is failing; the SDK asks again
        last_error = self.refresher.cache.read_state(name).get("last_error")
        raise CredhelperError(str(last_error or f"profile {name}: no valid credentials yet; try again"))

    def _ask_and_wait(self, name: str) -> None:
        seen = self.coordinator.attempts_ended(name)
        self.coordinator.ask_ensure(name)
        self.coordinator.wait_for_attempt(name, seen, ENDPOINT_WAIT_SECONDS)
