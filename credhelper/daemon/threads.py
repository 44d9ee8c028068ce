"""Names for the daemon's threads where ps, top and /proc show them."""

from __future__ import annotations

import threading
from collections.abc import Iterable


def name_os_threads(threads: Iterable[threading.Thread] | None = None) -> None:
    """Give threads (all of them by default) a name in /proc/PID/task/TID/comm, what ps, top and
    /proc show: ours their own, shortened to fit 15 bytes; the libraries' their class name. The
    main thread keeps the process's name."""
    for thread in threading.enumerate() if threads is None else threads:
        if thread is threading.main_thread() or thread.native_id is None:
            continue
        if thread.name.startswith("credhelper-"):
            label = "ch-" + thread.name.removeprefix("credhelper-")
        else:
            label = type(thread).__name__
        try:
            with open(f"/proc/self/task/{thread.native_id}/comm", "w") as comm:
                comm.write(label[:15])
        except OSError:
            pass  # the thread has ended, or /proc is not there: names are for people only
