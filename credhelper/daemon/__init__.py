"""`credhelper run`: keeps every target of every profile fresh, for weeks, at no cost while idle.

Threads, and the module of each:
- main (`lifecycle`): owns the signals and the exit, and sleeps on its wakeup (`wakeup.Wakeup`),
  which every signal wakes whichever thread the kernel hands it to; holds the daemon's lock (`lock`).
- scheduler (`coordinator`): owns the daemon's state and decides (reloads, restores, which refresh
  starts when, READY and the status line), on an injected clock; what it does to the world goes
  through a `World` (`world.SystemWorld` here, a fake in the tests).
- refresh: up to REFRESH_CONCURRENCY short-lived threads, each carrying out one profile's attempt
  (STS call, target writes, hooks) and handing the outcome back to the scheduler.
- watch (`watcher`): watchdog's threads only record which paths changed and wake the scheduler.
- endpoint (`server.py`): its lookup (`bridge`) answers from the cache, or asks the scheduler and
  waits for the one refresh in flight.
"""

from .lifecycle import Daemon, run_daemon

__all__ = ["Daemon", "run_daemon"]
