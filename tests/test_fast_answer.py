"""credential-process on a cache hit: a ready answer that is only ever the right one.

The first call after a refresh takes the long way and records the answer; the calls after it are
served from that answer while the configuration, the cache entry and the handout window all hold."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from credhelper.fastpath import ANSWER_FORMAT, HEADER_LINES
from tests.conftest import UserHome
from tests.helpers import assert_one_line_failure, cached_record, refreshed

# What a hit may import beyond what the interpreter loads at startup.
HIT_IMPORTS = {"credhelper", "credhelper.main", "credhelper.fastpath", "credhelper.paths"}

HIT_PROBE = """
import sys
before = set(sys.modules)
sys.argv = ["credhelper", *sys.argv[1:]]
from credhelper.main import main
main()
sys.stderr.write(" ".join(sorted(set(sys.modules) - before)))
"""


def settle_config(home: UserHome) -> None:
    """Date the configuration back: an answer is only recorded against a settled one."""
    past = time.time() - 60
    os.utime(home.config_file, (past, past))


def answer_file(home: UserHome, profile: str = "bedrock") -> Path:
    return home.cache_dir / f"{profile}.answer"


def credential_process(home: UserHome, *extra: str) -> dict[str, object]:
    result = home.run(*extra, "credential-process", "bedrock")
    assert result.returncode == 0, result.stderr
    answer: dict[str, object] = json.loads(result.stdout)
    return answer


def primed(home: UserHome) -> dict[str, object]:
    """A cache entry and its ready answer."""
    settle_config(home)
    if not (home.cache_dir / "bedrock.json").exists():
        refreshed(home)  # the cache entry (what a cold call leaves; tested in test_cli_refresh)
    answer = credential_process(home)  # the long way: records the answer
    assert answer_file(home).exists()
    return answer


def hit_imports(home: UserHome, *argv: str) -> set[str]:
    result = subprocess.run(
        [sys.executable, "-c", HIT_PROBE, *argv],
        env=home.env,
        capture_output=True,
        text=True,
        timeout=30,
        cwd=home.root,
    )
    assert result.returncode == 0, result.stderr
    return set(result.stderr.split())


def test_a_hit_imports_only_the_entry_point_and_the_fast_path(home: UserHome) -> None:
    primed(home)
    assert hit_imports(home, "credential-process", "bedrock") <= HIT_IMPORTS


def test_the_answer_is_the_cached_credentials_and_private(home: UserHome) -> None:
    answer = primed(home)
    again = credential_process(home)
    assert again == answer
    assert again["AccessKeyId"] == cached_record(home)["AccessKeyId"]
    assert answer_file(home).stat().st_mode & 0o777 == 0o600
    assert home.cache_dir.stat().st_mode & 0o777 == 0o700


def test_an_edit_of_the_configuration_is_seen_by_the_next_call(home: UserHome) -> None:
    before = primed(home)
    home.write_config(duration_seconds="1800")  # a shorter session: new credentials are due
    after = credential_process(home)
    assert after["AccessKeyId"] != before["AccessKeyId"]
    expiry = time.mktime(time.strptime(str(after["Expiration"]), "%Y-%m-%dT%H:%M:%SZ")) - time.timezone
    assert expiry < time.time() + 1800 + 60


def test_a_refresh_by_another_process_is_seen_by_the_next_call(home: UserHome) -> None:
    before = primed(home)
    refreshed(home)  # a new cache entry written by another process than the next call's
    after = credential_process(home)
    assert after["AccessKeyId"] != before["AccessKeyId"]
    assert after["AccessKeyId"] == cached_record(home)["AccessKeyId"]


def test_a_cache_entry_replaced_behind_the_answer_is_seen(home: UserHome) -> None:
    """Another version of credhelper, or a restore from backup: no answer file removed with it."""
    primed(home)
    entry = home.cache_dir / "bedrock.json"
    data = json.loads(entry.read_text())
    data["credentials"]["AccessKeyId"] = "ASIAIOSFODNN7EXAMPLE"
    replacement = home.cache_dir / "replacement"
    replacement.write_text(json.dumps(data))
    replacement.chmod(0o600)
    replacement.rename(entry)
    assert credential_process(home)["AccessKeyId"] == "ASIAIOSFODNN7EXAMPLE"


def forged(home: UserHome) -> None:
    """The answer file with its recorded credentials replaced, every fact it depends on intact."""
    path = answer_file(home)
    *header, answer = path.read_bytes().split(b"\n", HEADER_LINES)
    fake = json.loads(answer)
    fake["AccessKeyId"] = "ASIAIOSFODNN7EXAMPLE"
    path.write_bytes(b"\n".join(header) + b"\n" + json.dumps(fake).encode() + b"\n")


def test_a_forged_answer_with_every_fact_intact_is_what_a_hit_serves(home: UserHome) -> None:
    """The control for the tests below: the answer file is what a hit serves."""
    primed(home)
    forged(home)
    assert credential_process(home)["AccessKeyId"] == "ASIAIOSFODNN7EXAMPLE"


@pytest.mark.parametrize(
    "loosen",
    [
        lambda home: answer_file(home).chmod(0o644),
        lambda home: answer_file(home).chmod(0o620),
    ],
    ids=["answer-readable-by-others", "answer-writable-by-group"],
)
def test_an_answer_others_could_have_written_is_not_trusted(home: UserHome, loosen: object) -> None:
    primed(home)
    forged(home)
    assert callable(loosen)
    loosen(home)
    answer = credential_process(home)
    assert answer["AccessKeyId"] == cached_record(home)["AccessKeyId"]


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to another user needs root")
@pytest.mark.parametrize("which", ["answer"])
def test_an_answer_owned_by_another_user_is_not_trusted(home: UserHome, which: str) -> None:
    primed(home)
    forged(home)
    os.chown(answer_file(home) if which == "answer" else home.cache_dir, 4321, -1)
    assert credential_process(home)["AccessKeyId"] == cached_record(home)["AccessKeyId"]


@pytest.mark.parametrize(
    "damage",
    [b"", b"credhelper-answer/2\n", b"credhelper-answer/2\nsoon\n" + b"x\n" * 6, b"\xff" * 70000],
    ids=["empty", "truncated", "bad-deadline", "oversized"],
)
def test_a_damaged_answer_takes_the_long_way_and_is_rewritten(home: UserHome, damage: bytes) -> None:
    primed(home)
    answer_file(home).write_bytes(damage)
    assert credential_process(home)["AccessKeyId"] == cached_record(home)["AccessKeyId"]
    assert answer_file(home).read_bytes().startswith(ANSWER_FORMAT.encode() + b"\n")
    assert hit_imports(home, "credential-process", "bedrock") <= HIT_IMPORTS


def test_an_answer_past_its_handout_deadline_is_not_served(home: UserHome) -> None:
    primed(home)
    forged(home)
    path = answer_file(home)
    lines = path.read_bytes().split(b"\n", HEADER_LINES)
    lines[1] = str(int(time.time()) - 1).encode()
    path.write_bytes(b"\n".join(lines))
    assert credential_process(home)["AccessKeyId"] == cached_record(home)["AccessKeyId"]


def test_another_config_file_is_not_answered_from_this_ones_answer(home: UserHome) -> None:
    primed(home)
    forged(home)
    other = home.root / "other.toml"
    other.write_bytes(home.config_file.read_bytes())
    answer = credential_process(home, "--config", str(other))
    assert answer["AccessKeyId"] == cached_record(home)["AccessKeyId"]


def test_no_answer_is_recorded_against_a_configuration_still_being_edited(home: UserHome) -> None:
    home.write_config()
    soon = time.time() + 600  # still being edited for as long as the calls take, however slow the machine
    os.utime(home.config_file, (soon, soon))
    credential_process(home)
    credential_process(home)
    assert not answer_file(home).exists()


def test_a_fast_path_failure_falls_back_to_one_line_not_a_traceback(home: UserHome) -> None:
    """Writing the answer fails (stdout is a full device): the full CLI takes over and says so once."""
    primed(home)
    with open("/dev/full", "wb") as full:
        result = subprocess.run(
            [sys.executable, "-m", "credhelper", "credential-process", "bedrock"],
            env=home.env,
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
            cwd=home.root,
        )
    assert_one_line_failure(result, 1, "No space left on device")
