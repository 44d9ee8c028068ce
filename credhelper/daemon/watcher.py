"""The daemon's file watches: watchdog's threads only hand the paths that changed to a callback
(the coordinator's `paths_changed`, which records them and wakes the scheduler)."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver

from .threads import name_os_threads

log = logging.getLogger("credhelper.daemon")
PathsChanged = Callable[[list[str]], None]


class _PathEvents(FileSystemEventHandler):
    def __init__(self, paths_changed: PathsChanged) -> None:
        self.paths_changed = paths_changed

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type in ("opened", "closed_no_write"):
            return
        paths = [event.src_path, getattr(event, "dest_path", "")]
        self.paths_changed([os.fsdecode(p) for p in paths if p])


class Watcher:
    """Watches whole directories (not recursively); every change in one is reported, the caller
    picks the paths it cares about."""

    def __init__(self) -> None:
        self.observer: BaseObserver | None = None
        self.handler: _PathEvents | None = None

    def start(self, paths_changed: PathsChanged) -> None:
        self.handler = _PathEvents(paths_changed)
        # The observer's dispatch thread wakes every `timeout` seconds while idle; events
        # themselves are delivered at once.
        self.observer = Observer(timeout=30)
        self.observer.name = "credhelper-watch"
        self.observer.start()

    def watch(self, directories: set[str]) -> None:
        """Watch exactly `directories` from now on (a missing one is logged and skipped)."""
        if self.observer is None or self.handler is None:
            return
        self.observer.unschedule_all()
        for directory in sorted(directories):
            if os.path.isdir(directory):
                self.observer.schedule(self.handler, directory, recursive=False)
            else:
                log.warning("not watching %s: no such directory", directory)
        name_os_threads()

    def stop(self) -> None:
        if self.observer is not None:
            self.observer.stop()
