"""The `credhelper` entry point: the cache-hit fast path first, the full CLI otherwise."""

import sys


def main() -> None:
    if "credential-process" in sys.argv[1:] and _answered_fast():
        return
    if "exec" in sys.argv[1:]:
        _exec_fast()
    if "run" in sys.argv[1:]:
        _hold_daemon_signals()
    try:
        from .cli import run
    except Exception as error:  # a broken installation: still one line, never a traceback
        sys.stderr.write(f"credhelper: error: cannot load credhelper: {type(error).__name__}: {error}\n")
        sys.exit(1)
    sys.exit(run(sys.argv[1:]))


def _answered_fast() -> bool:
    """Whether the fast path answered; anything it did not expect leaves the answer to the full CLI."""
    try:
        from .fastpath import main_fast

        return main_fast(sys.argv[1:])
    except Exception:
        return False


def _hold_daemon_signals() -> None:
    """The daemon's reload and refresh signals, ignored until its handlers are in place: their
    default action would end it while it is still importing. It reads its configuration and
    refreshes at start anyway. (Its children get their defaults back: `signals`.)"""
    from .fastpath import parse_leading_options

    parsed = parse_leading_options(sys.argv[1:])
    if parsed is not None and parsed[1][:1] == ["run"]:
        import signal

        for signum in (signal.SIGHUP, signal.SIGUSR1):
            signal.signal(signum, signal.SIG_IGN)


def _exec_fast() -> None:
    """Plain `exec` on a warm cache becomes the command without loading the CLI; returns when the
    full CLI must take over."""
    try:
        import os

        from .appexec.plain import main_exec_fast

        main_exec_fast(sys.argv[1:], os.environ)
    except Exception:
        return


if __name__ == "__main__":
    main()
