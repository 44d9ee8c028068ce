"""The `credhelper` entry point: the cache-hit fast path first, the full CLI otherwise."""

import sys


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

        from .execplain import main_exec_fast

        main_exec_fast(sys.argv[1:], os.environ)
    except Exception:
        return


if __name__ == "__main__":
    main()
