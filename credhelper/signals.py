"""The signal state of the processes credhelper starts.

A process starts with its parent thread's blocked mask, and keeps ignored signals across execve.
Python ignores SIGPIPE and SIGXFSZ for itself; a shell's children start with neither ignored and
nothing blocked, and so do credhelper's: the command of a plain exec (`as_a_shell_leaves_them`,
around execve), and every process started through subprocess (`nothing_blocked` around Popen,
whose restore_signals, on by default, puts SIGPIPE and SIGXFSZ back to their defaults). The
processes credhelper supervises (hooks, `mfa_command`, a restarted or endpoint-served command)
also get back every signal credhelper inherited ignored (`defaults_in_the_child`); a plain exec
keeps them, as a shell keeps `nohup`'s.

Imported by plain exec's fast path: nothing beyond the standard library's signal and contextlib.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager

# What the Python interpreter ignores at start, for itself.
PYTHON_IGNORED = (signal.SIGPIPE, signal.SIGXFSZ)


@contextmanager
def as_a_shell_leaves_them() -> Iterator[None]:
    """Around execve on the main thread: the signal state a shell gives its children (nothing
    ignored that Python ignores for itself, nothing blocked). Put back if execve fails."""
    previous = [(signum, signal.signal(signum, signal.SIG_DFL)) for signum in PYTHON_IGNORED]
    mask = signal.pthread_sigmask(signal.SIG_SETMASK, ())
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        for signum, handler in previous:
            signal.signal(signum, handler)


@contextmanager
def nothing_blocked() -> Iterator[None]:
    """Around starting a process (subprocess.Popen), from any thread: the calling thread blocks
    no signal meanwhile, so the process starts with none blocked, whatever mask credhelper itself
    was started with. The mask is the thread's own: no other thread is affected."""
    mask = signal.pthread_sigmask(signal.SIG_SETMASK, ())
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)


def defaults_in_the_child() -> Callable[[], None]:
    """For a child's preexec (after fork, before exec; only C calls there): every signal this
    process ignores back at its default, so hooks, `mfa_command` and a supervised command start
    with nothing ignored, whatever credhelper inherited (a background job of a script ignores
    SIGINT and SIGQUIT). Read here, in the parent, so the child only makes the calls."""
    ignored = [
        signum
        for signum in signal.valid_signals()
        if signum not in (signal.SIGKILL, signal.SIGSTOP) and signal.getsignal(signum) == signal.SIG_IGN
    ]

    def restore() -> None:
        for signum in ignored:
            signal.signal(signum, signal.SIG_DFL)

    return restore


def nothing_blocked_here() -> None:
    """On the main thread of a process that must answer its signals (the daemon, a supervising
    exec), before it starts any thread: a mask inherited from whoever started it (a launcher that
    blocked SIGTERM) would leave SIGTERM pending for ever."""
    signal.pthread_sigmask(signal.SIG_SETMASK, ())
