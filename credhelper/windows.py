"""How long credentials must last: every time window and threshold credhelper applies to a set of
credentials, named once, as botocore's `RefreshableCredentials` names its advisory and mandatory
windows. Pure: numbers and arithmetic on timestamps, no clock of its own.

    issued_at ........ refresh point ......... handout window ..... expiration
                       (refresh_before, less    (what every consumer
                        a jitter)                is still handed)

- the refresh point: `refresh_before_seconds` ahead of the expiration, less a jitter, the daemon and
  exec renew there;
- the handout window: credentials handed to an SDK (credential-process, exec, env, the endpoint)
  keep at least this long, so that botocore never finds them inside its own advisory window;
- arrived short: a set that was already past its refresh point when issued (a clock ahead of AWS's,
  a role whose maximum session is shorter than asked) is renewed at its half-life, never sooner
  than the minimum renewal: renewing it at once would bring an equally short set, again and again.
"""

from __future__ import annotations

import random

# botocore runs credential_process again when fewer than 15 minutes are left (its advisory window).
BOTOCORE_ADVISORY_SECONDS = 900
# A session shorter than this leaves SDKs little between their own window and the expiration.
SHORT_SESSION_SECONDS = 1800
# The shortest wait before renewing a set that arrived short or is due already; also what a forced
# refresh asks of the new set.
MIN_RENEW_SECONDS = 60.0
# No renewal is scheduled sooner than this: a set that arrives a hair over refresh_before_seconds
# must not be renewed every second.
MIN_SCHEDULED_SECONDS = 10.0
MAX_JITTER_SECONDS = 30.0
# While STS is failing, the endpoint still hands out a set with more than this left: short-lived
# beats none, and the SDK asks again.
LAST_RESORT_SECONDS = 60
# An MFA session is reused for a new role session only while it has this much left.
MFA_SESSION_MIN_SECONDS = 300

# A keyring that is locked (or absent) waits for a person, not for a service to recover: the daemon
# looks again this often, never sooner than three quarters of it (about a dozen lookups in ten
# minutes, no STS call, no prompt), so it recovers within this long of the unlock.
KEYRING_RETRY_SECONDS = 60.0


def handout_seconds(refresh_before: int, duration: int) -> int:
    """The handout window of a profile: its refresh point, at least botocore's advisory window,
    and never more than a new session can give."""
    return min(max(refresh_before, BOTOCORE_ADVISORY_SECONDS), duration - 60)


def refresh_point(expiration: float, refresh_before: int, duration: int, rng: random.Random) -> float:
    """When to renew credentials expiring at `expiration`: `refresh_before` ahead of it, a little
    earlier by a random jitter so that many profiles do not renew in the same second."""
    spread = min(MAX_JITTER_SECONDS, 0.1 * (duration - refresh_before), 0.05 * refresh_before)
    return expiration - refresh_before - rng.uniform(0.0, max(0.0, spread))


def arrived_short(expiration: float, issued_at: float, window: float) -> bool:
    """Whether credentials had less than `window` to live when issued (a clock ahead of AWS's, or a
    role whose maximum session is shorter than asked)."""
    return expiration - issued_at < window


def half_life(since: float, expiration: float) -> float:
    """The half-life rule: the moment half of what was left at `since` has passed, never sooner
    than MIN_RENEW_SECONDS after `since`."""
    return since + max(MIN_RENEW_SECONDS, (expiration - since) / 2)
