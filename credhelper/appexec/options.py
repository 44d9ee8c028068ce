"""exec's options and their limits, in a module light enough for the CLI to import at start."""

from __future__ import annotations

import math
from typing import NamedTuple

DEFAULT_GRACE_SECONDS = 10.0  # how long a command has to stop after SIGTERM at a restart
MAX_GRACE_SECONDS = 3600.0


class ExecOptions(NamedTuple):
    restart_on_refresh: bool = False
    grace_seconds: float = DEFAULT_GRACE_SECONDS
    endpoint: bool = False


def grace_problem(grace: float | None, restart_on_refresh: bool) -> str | None:
    """What is wrong with a --grace value, or None."""
    if grace is not None and not restart_on_refresh:
        return "--grace applies only with --restart-on-refresh"
    if grace is not None and not (math.isfinite(grace) and 0 <= grace <= MAX_GRACE_SECONDS):
        return f"--grace {grace}: give a number of seconds from 0 to {MAX_GRACE_SECONDS:.0f}"
    return None
