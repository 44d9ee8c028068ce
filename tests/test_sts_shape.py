"""`credential-process PROFILE --format sts` (DESIGN section 14): STS's own `{"Credentials": {...}}`,
which agent tools such as Claude Code's `awsCredentialExport` expect, from the same cache and fast
path as the default credential_process shape."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from credhelper.credentials import Credentials
from credhelper.fastpath import answer_format, parse_fast_argv, shaped
from tests.conftest import UserHome
from tests.helpers import assert_no_secret, cached_record
from tests.nodecheck import NODE_DIR
from tests.test_fast_answer import HIT_IMPORTS, hit_imports, primed

STS_KEYS = ["AccessKeyId", "SecretAccessKey", "SessionToken", "Expiration"]


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["credential-process", "bedrock"], ("bedrock", "process")),
        (["credential-process", "bedrock", "--format", "sts"], ("bedrock", "sts")),
        (["credential-process", "--format=sts", "bedrock"], ("bedrock", "sts")),
        (["--config", "c", "credential-process", "--format", "process", "bedrock"], ("bedrock", "process")),
        (["credential-process", "bedrock", "--format", "xml"], None),  # the full CLI's message
        (["credential-process", "bedrock", "--format"], None),
        (["credential-process", "bedrock", "--format", "sts", "--format", "sts"], None),
        (["credential-process", "bedrock", "--verbose"], None),
    ],
)
def test_the_fast_path_reads_the_format_option_where_click_takes_it(
    argv: list[str], expected: tuple[str, str] | None
) -> None:
    parsed = parse_fast_argv(argv)
    if expected is None:
        assert parsed is None
    else:
        assert parsed is not None and parsed[1] == expected[0]
        assert answer_format(argv) == expected[1]


def test_the_fast_paths_sts_shape_is_byte_for_byte_the_long_ways() -> None:
    credentials = Credentials("ASIAIOSFODNN7EXAMPLE", "se\"cr/et", "to+ken==", time.time() + 3600)
    answer = (credentials.process_json() + "\n").encode()
    assert shaped(answer, "sts") == (credentials.sts_json() + "\n").encode()
    assert shaped(answer, "process") == answer
    assert shaped(b'{"AccessKeyId": "x"}\n', "sts") is None  # not our own answer: the long way


def test_sts_shape_cold_warm_and_served_from_the_ready_answer(home: UserHome) -> None:
    cold = home.run("credential-process", "bedrock", "--format", "sts")
    assert cold.returncode == 0, cold.stderr
    answer = json.loads(cold.stdout)
    assert list(answer) == ["Credentials"] and list(answer["Credentials"]) == STS_KEYS
    record = cached_record(home)
    assert answer["Credentials"]["AccessKeyId"] == record["AccessKeyId"]
    assert answer["Credentials"]["Expiration"].endswith("Z")

    primed(home)
    warm = home.run("credential-process", "bedrock", "--format=sts")
    same = warm.stdout == cold.stdout  # compared, not shown: the answers hold secrets
    assert same, "the fast path's answer differs from the long way's"
    assert hit_imports(home, "credential-process", "bedrock", "--format", "sts") <= HIT_IMPORTS
    assert home.proxy.count("AssumeRole") == 1
    assert_no_secret(home, cold.stderr, warm.stderr)


def test_an_unknown_format_is_a_usage_error(home: UserHome) -> None:
    result = home.run("credential-process", "bedrock", "--format", "xml")
    assert result.returncode == 2
    assert "'xml' is not one of 'process', 'sts'" in result.stderr
    assert home.proxy.count("AssumeRole") == 0


AWS_CONFIG = "[profile bedrock]\ncredential_process = {python} -m credhelper credential-process bedrock\n"


@pytest.mark.parametrize("recipe", ["ini", "chain"])
def test_js_sdk_agent_recipes_get_the_renewed_credentials_on_the_next_request(
    home: UserHome, recipe: str
) -> None:
    """Continue's fromIni and Cline's fromNodeProviderChain, each with ignoreCache, through
    credential_process: the request after a renewal signs with the new session (docs/agent-tools.md)."""
    (home.root / ".aws" / "config").write_text(AWS_CONFIG.format(python=sys.executable))
    refresh = [sys.executable, "-m", "credhelper", "refresh", "bedrock"]
    result = subprocess.run(
        ["node", str(NODE_DIR / "agent-recipes.js"), recipe, home.proxy.url, *refresh],
        env={**home.env, "AWS_PROFILE": "bedrock"},
        capture_output=True,
        text=True,
        timeout=90,
        cwd=home.root,
    )
    assert result.returncode == 0, result.stderr
    (first, first_arn), (second, second_arn) = (line.split() for line in result.stdout.splitlines())
    assert first.startswith("ASIA") and "assumed-role/BedrockAccessRole" in first_arn
    assert second != first, "the request after the renewal used the old session"
    assert second == cached_record(home)["AccessKeyId"] and second_arn == first_arn
