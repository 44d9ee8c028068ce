"""Waking the main thread for a signal, or for news from another thread, without a timeout.

CPython runs a Python signal handler only on the main thread, between bytecodes, and the kernel
delivers a signal sent to the process to any thread that does not block it: when the main thread
has one pending already (SIGTERM an instant after SIGUSR1), another thread gets it. A main thread
asleep in a lock, an Event or a sleep is not woken by a signal another thread took, and sleeps on
until its timeout. What happens at once, in whichever thread took the signal, is CPython's C-level
handler writing to the wakeup fd (`signal.set_wakeup_fd`): the main thread waits in select() on
the other end of that pipe, wakes, and runs the handlers. (Blocking the signals in every other
thread instead would hand the blocked mask on to each process those threads start.)
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import threading


class Wakeup:
    """The main thread's wait for a signal or for another thread's news. Used as a context
    manager on the main thread: within it, every signal CPython handles wakes `wait`."""

    def __init__(self) -> None:
        self._read, self._write = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._previous = -1
        self._closed = False
        self._lock = threading.Lock()  # wake() from other threads against the close at exit

    def __enter__(self) -> Wakeup:
        self._previous = signal.set_wakeup_fd(self._write, warn_on_full_buffer=False)
        return self

    def __exit__(self, *exc: object) -> None:
        signal.set_wakeup_fd(self._previous)
        with self._lock:
            self._closed = True
            os.close(self._read)
            os.close(self._write)

    def wake(self) -> None:
        """From any thread: end the main thread's `wait` (or its next one, if it is not waiting)."""
        with self._lock:
            if self._closed:
                return
            with contextlib.suppress(BlockingIOError):  # a full pipe wakes it as well
                os.write(self._write, b"\0")

    def wait(self, timeout: float | None) -> None:
        """Sleep until a signal arrives, `wake` is called, or `timeout` seconds (None: no limit)
        pass. The handler of a signal that woke it has run by the time this returns: the C-level
        handler marks the signal pending before it writes to the pipe, and the interpreter runs
        pending handlers at the main thread's next call, the `_drain` below."""
        select.select([self._read], [], [], timeout)
        self._drain()

    def _drain(self) -> None:
        try:
            while os.read(self._read, 512):
                pass
        except BlockingIOError:
            pass
