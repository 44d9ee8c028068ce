"""The `credhelper` entry point: the cache-hit fast path first, the full CLI otherwise."""

import sys


def _runs_the_daemon(argv: list[str]) -> bool:
    """Whether `argv` is `[--config P] [--log-level L] run ...` (either option as `--opt=value`)."""
    rest = argv[1:]
    while rest and rest[0].partition("=")[0] in ("--config", "--log-level"):
        rest = rest[1:] if "=" in rest[0] else rest[2:]
    return rest[:1] == ["run"]


# Here, at the first line of credhelper that runs, before anything else is imported: the daemon's
# reload and refresh signals (SIGHUP, SIGUSR1) ignored until its handlers are in place, whose
# default action would end it while it is still starting (`systemctl reload` right after
# `start`). It reads its configuration and refreshes at start anyway. What comes before this is
# the interpreter's own start. (Its children get their defaults back: `signals`.)
if _runs_the_daemon(sys.argv):
    import signal

    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.signal(signal.SIGUSR1, signal.SIG_IGN)


def main() -> None:
    if "credential-process" in sys.argv[1:] and _answered_fast():
        return
    if "exec" in sys.argv[1:]:
        _exec_fast()
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
