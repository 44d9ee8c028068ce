"""`rotate_after_days` in the daemon (DESIGN section 13): a worker thread of its own, apart from
the refresh schedule, that once an hour looks at each profile whose source is a stored long-term
key. A rotation a kill interrupted (its journal left behind) is finished or undone; with
`rotate_after_days`, at most once a day per profile, the key's CreateDate is asked of IAM and the
key rotated once it is that old. A failure is logged; the next try is a day later (that is its
backoff; a journal left behind is looked at every hour). SIGTERM abandons the thread wherever it
is: every step of a rotation is journaled first, so the next look (or `credhelper rotate`)
finishes it.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Mapping

from ..keysource import key_source
from ..paths import rotation_file
from ..profile import Profile
from ..refresher import Refresher
from ..rotation import DAY

log = logging.getLogger("credhelper.daemon")
LOOK_EVERY_SECONDS = 3600.0


class RotationWorker:
    def __init__(
        self,
        profiles: Callable[[], list[Profile]],
        refresher: Refresher,
        environ: Mapping[str, str],
        stopping: threading.Event,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._profiles = profiles
        self.refresher = refresher
        self.cache = refresher.cache
        self.environ = environ
        self.stopping = stopping
        self.clock = clock
        self.source_tried: dict[str, float] = {}  # profiles sharing a source: one attempt a day

    def start(self) -> None:
        threading.Thread(target=self._loop, name="credhelper-rotation", daemon=True).start()

    def _loop(self) -> None:
        while not self.stopping.is_set():
            for profile in self._profiles():
                if self.stopping.is_set():
                    return
                self.tend(profile)
            self.stopping.wait(LOOK_EVERY_SECONDS)

    def tend(self, profile: Profile) -> None:
        """One look at one profile; never raises."""
        try:
            source = key_source(profile, self.environ)
        except Exception:
            return  # no stored long-term key: nothing to rotate (`rotate` says so when asked)
        try:
            now = self.clock()
            tried = max(
                self.cache.read_state(profile.name).get("rotation_tried") or 0.0,
                self.source_tried.get(source.key, 0.0),
            )
            due = profile.rotate_after_days is not None and now - tried >= DAY
            journal = rotation_file(self.cache.directory, source.key, "json")
            if not due and not os.path.lexists(journal):
                return
            from ..rotate import Rotator  # botocore with it: only once there is something to do

            rotator = Rotator(profile, self.environ, self.cache, self.refresher, clock=self.clock)
            if due:
                assert profile.rotate_after_days is not None
                self.cache.update_state(profile.name, rotation_tried=now)
                self.source_tried[source.key] = now
                rotator.rotate_if_due(profile.rotate_after_days)
            else:
                rotator.finish_interrupted()
        except Exception as error:  # a bug included: the thread goes on with the other profiles
            log.error("profile %s: key rotation: %s", profile.name, error)
            return
        for line in rotator.report.lines:
            log.warning("profile %s: %s", profile.name, line)
