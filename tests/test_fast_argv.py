"""The options the fast paths (credential-process, plain exec) read before their command."""

from __future__ import annotations

import pytest

from credhelper.appexec.plain import parse_plain_exec_argv
from credhelper.fastpath import parse_fast_argv

LEADING = [
    ([], (None, [])),
    (["--config", "c.toml"], ("c.toml", [])),
    (["--config=c.toml", "--log-level", "info"], ("c.toml", [])),
    (["--log-level=debug"], None),  # debug logging is the full CLI's
    (["--config"], None),  # an option missing its value
    (["--verbose"], None),  # an option the fast paths do not know
]


@pytest.mark.parametrize(("options", "expected"), LEADING)
def test_both_fast_paths_read_the_same_leading_options(
    options: list[str], expected: tuple[str | None, list[str]] | None
) -> None:
    fast = parse_fast_argv([*options, "credential-process", "bedrock"])
    plain = parse_plain_exec_argv([*options, "exec", "bedrock", "--", "env"])
    if expected is None:
        assert fast is None and plain is None
    else:
        assert fast == (expected[0], "bedrock")
        assert plain == (expected[0], "bedrock", ["env"])
