"""The `credhelper` entry point: the cache-hit fast path first, the full CLI otherwise."""

from __future__ import annotations

import sys


def main() -> None:
    if "credential-process" in sys.argv[1:]:
        from .fastpath import main_fast

        if main_fast(sys.argv[1:]):
            return
    if "exec" in sys.argv[1:]:
        import os

        from .execplain import main_exec_fast

        main_exec_fast(sys.argv[1:], os.environ)  # returns only when the full CLI must take over
    from .cli import run

    sys.exit(run(sys.argv[1:]))


if __name__ == "__main__":
    main()
