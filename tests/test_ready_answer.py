"""The ready answer of credential-process (fastpath.py) holds only while everything it was recorded
against holds: every environment variable the configuration's expansion read, and the exact
spelling of the profile name asked for."""

from __future__ import annotations

import os

from tests.conftest import UserHome
from tests.helpers import assert_one_line_failure, cached_record, ready_answer_recorded


def other_profile(home: UserHome, target: str) -> str:
    return (
        f'[profiles.other]\nrole_arn = "{home.sts.role_arn}"\nsource_profile = "bedrock-developer"\n'
        f'sts_endpoint_url = "{home.proxy.url}"\nenv_files = ["{target}"]\n'
    )


# -- 1. every variable the expansion read --------------------------------------------------------


def test_a_changed_variable_in_a_target_path_takes_the_long_way(home: UserHome) -> None:
    """$MYVAR chose bedrock's target; pointed at the other profile's, the two profiles claim one
    file: the configuration is invalid now, and the ready answer must not say otherwise."""
    (home.root / "app2").mkdir()
    home.write_config(env_files='["$MYVAR/.env"]', extra=other_profile(home, "~/app2/.env"))
    ready_answer_recorded(home, MYVAR=str(home.root / "app"))

    result = home.run("credential-process", "bedrock", MYVAR=str(home.root / "app2"))

    assert_one_line_failure(result, 78, "same target")
    assert "ASIA" not in result.stdout


def test_a_variable_unset_when_the_answer_was_recorded_is_checked_too(home: UserHome) -> None:
    """`${SUFFIX}` unset leaves the other profile's path as written; set (even empty) it names
    bedrock's own target."""
    home.write_config(extra=other_profile(home, "~/app${SUFFIX}/.env"))
    ready_answer_recorded(home)

    result = home.run("credential-process", "bedrock", SUFFIX="")

    assert_one_line_failure(result, 78, "same target")
    assert "ASIA" not in result.stdout


def test_a_variable_inside_home_that_a_tilde_path_expands_to_takes_the_long_way(home: UserHome) -> None:
    """expanduser puts HOME's value in first, expandvars then reads the `$APPROOT` it holds: the
    answer must record APPROOT, though no target names it. (Every other file is given by its
    own variable here, so that only the target depends on HOME.)"""
    home.env.update(
        HOME="$APPROOT",
        CREDHELPER_CONFIG=str(home.config_file),
        CREDHELPER_CACHE_DIR=str(home.cache_dir),
        AWS_SHARED_CREDENTIALS_FILE=str(home.root / ".aws" / "credentials"),
        AWS_CONFIG_FILE=str(home.root / ".aws" / "config"),
    )
    ready_answer_recorded(home, APPROOT=str(home.root))

    status = home.run("status", "bedrock")  # APPROOT unset: ~/app/.env is `$APPROOT/app/.env`
    result = home.run("credential-process", "bedrock")

    assert status.returncode == 78, status.stderr
    assert_one_line_failure(result, 78, "~/app/.env", "absolute")
    assert "ASIA" not in result.stdout


def test_a_changed_variable_that_keeps_the_configuration_valid_gives_the_current_answer(
    home: UserHome,
) -> None:
    """The long way, not a refusal: the same credentials, from the cache, and a new answer."""
    (home.root / "app2").mkdir()
    home.write_config(env_files='["$MYVAR/.env"]')
    ready_answer_recorded(home, MYVAR=str(home.root / "app"))
    answer = home.cache_dir / "bedrock.answer"
    before = answer.read_bytes()

    result = home.run("credential-process", "bedrock", MYVAR=str(home.root / "app2"))

    assert result.returncode == 0, result.stderr
    assert cached_record(home)["AccessKeyId"] in result.stdout
    assert answer.read_bytes() != before, "the answer was not recorded again for the new value"


# -- 2. the profile name as spelled ----------------------------------------------------------------


def test_an_answer_is_served_only_for_the_profile_name_it_was_recorded_for(home: UserHome) -> None:
    """`credential-process Bedrock` where the configuration has only `bedrock`: an unknown profile
    (78), even where both names reach one cache entry and one answer file, as they do on a
    case-insensitive file system (made here with hard links)."""
    ready_answer_recorded(home)
    cache = home.cache_dir
    os.link(cache / "bedrock.json", cache / "Bedrock.json")
    # The link changed the entry's ctime: this call takes the long way and records the answer again.
    assert home.run("credential-process", "bedrock").returncode == 0
    os.link(cache / "bedrock.answer", cache / "Bedrock.answer")
    assert home.run("credential-process", "bedrock").returncode == 0

    result = home.run("credential-process", "Bedrock")

    assert_one_line_failure(result, 78, "unknown profile 'Bedrock'")
    assert "ASIA" not in result.stdout
