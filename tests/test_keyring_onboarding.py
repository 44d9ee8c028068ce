"""Getting the long-term key into the OS keyring (DESIGN section 13): `adopt-keys --to-keyring` from a
`.env` or a `~/.aws/credentials` section, against a real Secret Service (tests/secretservice.py) and
the local STS. Afterwards no file under HOME holds the long-term secret, and every command works
from the keyring; a failure at any step leaves the key where it was."""

from __future__ import annotations

import json
import stat
import textwrap
from pathlib import Path

import pytest

from credhelper.errors import ConfigError
from credhelper.formats.configtoml import switch_to_keyring
from credhelper.formats.ini import without_key_pair
from tests.conftest import UserHome
from tests.helpers import (
    assert_no_secret,
    assert_one_line_failure,
    cached_record,
    in_process,
    read_env,
    refreshed,
)
from tests.secretservice import SecretService
from tests.stsproxy import Fault
from tests.test_adopt_keys import EXISTING_CREDENTIALS, put_long_term_key_in_env
from tests.test_init import INIT_FLAGS, caller_through_aws_config, expected_env, guide_end_state, init
from tests.test_keyring_source import files_holding, keyring_of

CONFIG_WITH_COMMENTS = """\
# my credhelper setup; keep this comment
[profiles.bedrock]
role_arn = "{role_arn}"
source_profile = "bedrock-developer"   # the IAM user's keys
region = "us-east-1"
sts_endpoint_url = "{sts}"
env_files = ["~/app/.env"]
role_session_name = "credhelper-test"
"""


def credentials_with_pair(home: UserHome) -> str:
    """Other people's keys around the section the pair is moved out of."""
    text = (
        EXISTING_CREDENTIALS
        + "\n[bedrock-developer]\n"
        + f"aws_access_key_id = {home.sts.access_key_id}\n"
        + f"aws_secret_access_key = {home.sts.secret_access_key}\n"
    )
    (home.root / ".aws" / "credentials").write_text(text)
    return text


def commented_config(home: UserHome) -> str:
    text = CONFIG_WITH_COMMENTS.format(role_arn=home.sts.role_arn, sts=home.proxy.url)
    home.config_file.write_text(text)
    return text


def files(home: UserHome) -> dict[str, bytes]:
    """Every file under HOME but the cache and the keyring's own (re-encrypted at every change)."""
    keyrings = ".local/share/keyrings/"
    return {name: data for name, data in home.snapshot().items() if not name.startswith(keyrings)}


def assert_works_from_the_keyring(home: UserHome) -> None:
    """refresh and credential-process make sessions from the keyring's pair, and no file under HOME
    (the keyring's own, encrypted, included) holds the long-term secret. The refresh (the .env
    written from a new session) is made in this process: `refresh` from the keyring as users run it
    is test_keyring_source's; credential-process, with no session cached, runs as an SDK runs it."""
    (home.cache_dir / "bedrock.json").unlink(missing_ok=True)
    with keyring_of(home):
        refreshed(home)
    (home.cache_dir / "bedrock.json").unlink()
    process = home.run("credential-process", "bedrock")
    assert process.returncode == 0, process.stderr
    assert json.loads(process.stdout)["AccessKeyId"].startswith("ASIA")
    assert read_env(home.app_env)["AWS_ACCESS_KEY_ID"].startswith("ASIA")  # type: ignore[union-attr]
    assert not files_holding(home.root, home.sts.secret_access_key), "a file holds the long-term secret"
    assert_no_secret(home, process.stderr)


def test_from_a_credentials_profile_the_pair_moves_and_the_profile_switches_byte_for_byte(
    home: UserHome, secret_service: SecretService
) -> None:
    credentials_with_pair(home)
    config = commented_config(home)
    result = home.run(
        "adopt-keys", "--to-keyring", "bedrock-developer", "--from-profile", "bedrock-developer"
    )
    assert result.returncode == 0, result.stderr
    assert_no_secret(home, result.stdout, result.stderr)
    assert f"{home.sts.access_key_id[:4]}…{home.sts.access_key_id[-4:]}" in result.stdout
    assert home.sts.access_key_id not in result.stdout
    assert "arn:aws:iam::123456789012:user/bedrock-developer" in result.stdout

    assert secret_service.stored("bedrock-developer") == {
        "aws_access_key_id": home.sts.access_key_id,
        "aws_secret_access_key": home.sts.secret_access_key,
    }
    credentials = home.root / ".aws" / "credentials"
    assert credentials.read_text() == EXISTING_CREDENTIALS  # the section gone, every other byte kept
    assert stat.S_IMODE(credentials.stat().st_mode) == 0o600
    assert home.config_file.read_text() == config.replace(
        'source_profile = "bedrock-developer"', 'source_keyring = "bedrock-developer"'
    )
    assert_works_from_the_keyring(home)


def test_from_a_section_with_other_keys_only_the_pair_goes(
    home: UserHome, secret_service: SecretService
) -> None:
    credentials = home.root / ".aws" / "credentials"
    credentials.write_text(
        "[bedrock-developer]\n# the IAM user\n"
        f"aws_access_key_id = {home.sts.access_key_id}\nregion = us-east-1\n"
        f"aws_secret_access_key = {home.sts.secret_access_key}\n\n[work]\nregion = eu-west-1\n"
    )
    result = home.run("adopt-keys", "--to-keyring", "dev", "--from-profile", "bedrock-developer")
    assert result.returncode == 0, result.stderr
    assert (
        credentials.read_text()
        == "[bedrock-developer]\n# the IAM user\nregion = us-east-1\n\n[work]\nregion = eu-west-1\n"
    )
    assert 'source_keyring = "dev"' in home.config_file.read_text()
    assert_works_from_the_keyring(home)


def test_from_a_env_the_pair_moves_and_the_env_gets_temporary_credentials(
    home: UserHome, secret_service: SecretService
) -> None:
    original = put_long_term_key_in_env(home)  # other people's keys in ~/.aws/credentials
    config = commented_config(home)
    result = home.run("adopt-keys", "--to-keyring", "agent0-user", "--env-file", str(home.app_env))
    assert result.returncode == 0, result.stderr
    assert_no_secret(home, result.stdout, result.stderr)
    assert secret_service.stored("agent0-user") == {
        "aws_access_key_id": home.sts.access_key_id,
        "aws_secret_access_key": home.sts.secret_access_key,
    }
    assert home.config_file.read_text() == config.replace(
        'source_profile = "bedrock-developer"', 'source_keyring = "agent0-user"'
    )
    assert (home.root / ".aws" / "credentials").read_text() == EXISTING_CREDENTIALS
    values = read_env(home.app_env)
    assert values["AWS_ACCESS_KEY_ID"] == cached_record(home)["AccessKeyId"]
    before, after = original.splitlines(), home.app_env.read_text().splitlines()
    kept = [line for line in before if not line.startswith(("AWS_ACCESS_KEY_ID=", "AWS_SECRET_ACCESS_KEY="))]
    assert [line for line in after if line in kept] == kept  # every other line, in order
    assert not files_holding(home.root, home.sts.secret_access_key)
    assert_works_from_the_keyring(home)


def test_from_a_env_no_profile_writes_the_pair_is_still_taken_out(
    home: UserHome, secret_service: SecretService
) -> None:
    put_long_term_key_in_env(home)
    home.write_config(env_files='["~/other.env"]')
    result = home.run("adopt-keys", "--to-keyring", "agent0-user", "--env-file", str(home.app_env))
    assert result.returncode == 0, result.stderr
    assert 'source_keyring = "agent0-user"' in result.stdout  # the profile to add
    values = read_env(home.app_env)
    assert values["AWS_ACCESS_KEY_ID"] == "" and values["AWS_SECRET_ACCESS_KEY"] == ""
    assert not files_holding(home.root, home.sts.secret_access_key)


def test_from_a_env_a_role_refused_afterwards_leaves_the_key_safe_in_the_keyring(
    home: UserHome, secret_service: SecretService
) -> None:
    put_long_term_key_in_env(home)
    home.proxy.add_fault(Fault("code", action="AssumeRole", code="AccessDenied"))
    result = home.run("adopt-keys", "--to-keyring", "agent0-user", "--env-file", str(home.app_env))
    assert_one_line_failure(result, 77, "AWS denied AssumeRole", "safe in keyring entry 'agent0-user'")
    assert secret_service.stored("agent0-user") == {
        "aws_access_key_id": home.sts.access_key_id,
        "aws_secret_access_key": home.sts.secret_access_key,
    }
    values = read_env(home.app_env)
    assert values["AWS_ACCESS_KEY_ID"] == "" and values["AWS_SECRET_ACCESS_KEY"] == ""
    assert not files_holding(home.root, home.sts.secret_access_key)


def test_a_locked_keyring_is_77_in_one_line_and_the_key_stays_where_it_was(
    home: UserHome, secret_service: SecretService
) -> None:
    credentials_with_pair(home)
    secret_service.lock()
    before = files(home)
    result = home.run("adopt-keys", "--to-keyring", "dev", "--from-profile", "bedrock-developer")
    assert_one_line_failure(result, 77, "keyring", "locked", "unlock", "still in [bedrock-developer]")
    assert files(home) == before
    assert secret_service.is_locked(), "credhelper unlocked the keyring (a prompt would have shown)"
    assert home.proxy.count("GetCallerIdentity") == 0


def test_no_keyring_at_all_is_77_naming_the_fix(home: UserHome) -> None:
    credentials_with_pair(home)
    before = files(home)
    result = home.run(
        "adopt-keys",
        "--to-keyring",
        "dev",
        "--from-profile",
        "bedrock-developer",
        DBUS_SESSION_BUS_ADDRESS=f"unix:path={home.root}/no-bus",
    )
    assert_one_line_failure(result, 77, "keyring", "--list-backends", "still in")
    assert files(home) == before


def test_a_pair_aws_rejects_is_left_where_it_was_and_leaves_no_keyring_entry(
    home: UserHome, secret_service: SecretService
) -> None:
    (home.root / ".aws" / "credentials").write_text(EXISTING_CREDENTIALS)
    before = files(home)
    result = home.run("adopt-keys", "--to-keyring", "work-user", "--from-profile", "work")
    assert_one_line_failure(result, 77, "unknown to AWS", "removed again", "still in [work]")
    assert files(home) == before
    assert secret_service.stored("work-user") is None


def test_an_entry_holding_another_key_is_never_replaced(
    home: UserHome, secret_service: SecretService
) -> None:
    credentials_with_pair(home)
    other = {"aws_access_key_id": "AKIAIOSFODNN7EXAMPLE", "aws_secret_access_key": "wJalrXUtnFEMI/EXAMPLEKEY"}
    secret_service.store("dev", json.dumps(other))
    before = files(home)
    result = home.run("adopt-keys", "--to-keyring", "dev", "--from-profile", "bedrock-developer")
    assert_one_line_failure(result, 78, "already holds another key", "AKIA…MPLE")
    assert files(home) == before
    assert secret_service.stored("dev") == other


def test_a_symlinked_credentials_file_stays_a_symlink(home: UserHome, secret_service: SecretService) -> None:
    credentials = home.root / ".aws" / "credentials"
    dotfiles = home.root / "dotfiles"
    dotfiles.mkdir()
    (dotfiles / "aws-credentials").write_text(credentials_with_pair(home))
    credentials.unlink()
    credentials.symlink_to(dotfiles / "aws-credentials")
    result = home.run("adopt-keys", "--to-keyring", "dev", "--from-profile", "bedrock-developer")
    assert result.returncode == 0, result.stderr
    assert credentials.is_symlink(), "the dotfiles symlink was replaced by a regular file"
    assert (dotfiles / "aws-credentials").read_text() == EXISTING_CREDENTIALS
    assert stat.S_IMODE((dotfiles / "aws-credentials").stat().st_mode) == 0o600


def test_a_configuration_it_cannot_switch_with_certainty_changes_nothing(
    home: UserHome, secret_service: SecretService
) -> None:
    credentials_with_pair(home)
    home.config_file.write_text(
        f'profiles.bedrock = {{ role_arn = "{home.sts.role_arn}", source_profile = "bedrock-developer" }}\n'
    )
    before = files(home)
    result = home.run("adopt-keys", "--to-keyring", "dev", "--from-profile", "bedrock-developer")
    assert_one_line_failure(result, 78, "source_keyring", "yourself", "still in [bedrock-developer]")
    assert files(home) == before
    assert secret_service.stored("dev") is None
    assert home.proxy.count("GetCallerIdentity") == 0


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("--from-profile", "bedrock-developer"), "--from-profile needs --to-keyring"),
        (("--to-keyring", "dev"), "one of --env-file FILE or --from-profile"),
        (("--to-keyring", "dev", "--from-profile", "a", "--env-file", "x"), "both name where the pair"),
        (("--to-keyring", "dev", "--from-profile", "a", "--profile", "b"), "leave it out"),
        (("--to-keyring", "dev", "--from-profile", "nosuch"), "no [nosuch] section"),
        (("--to-keyring", "no good", "--from-profile", "bedrock-developer"), "--to-keyring 'no good'"),
        (("--env-file", "x"), "missing --profile"),
    ],
)
def test_bad_options_are_a_usage_error_with_nothing_changed(
    home: UserHome, args: tuple[str, ...], needle: str
) -> None:
    before = files(home)
    result = home.run("adopt-keys", *args)
    assert result.returncode == 2, result.stderr
    assert needle in result.stderr and "Traceback" not in result.stderr
    assert files(home) == before


# ----- init --keyring/--no-keyring ---------------------------------------------------------------


def keyring_config(home: UserHome) -> str:
    return textwrap.dedent(f"""\
        [profiles.bedrock]
        role_arn = "{home.sts.role_arn}"
        source_keyring = "bedrock-developer"
        region = "us-east-1"
        env_files = ["~/app/.env"]
        """)


def test_init_keeps_the_key_in_an_unlocked_keyring_by_default_and_says_so(
    home: UserHome, secret_service: SecretService
) -> None:
    original = guide_end_state(home)
    result = init(home, "--no-systemd")
    assert result.returncode == 0, result.stderr
    assert "OS keyring" in result.stdout and "--no-keyring" in result.stdout
    assert home.config_file.read_text() == keyring_config(home)
    assert not (home.root / ".aws" / "credentials").exists()
    assert secret_service.stored("bedrock-developer") == {
        "aws_access_key_id": home.sts.access_key_id,
        "aws_secret_access_key": home.sts.secret_access_key,
    }
    assert home.app_env.read_text() == expected_env(home, original)
    assert not files_holding(home.root, home.sts.secret_access_key), "a file holds the long-term secret"
    assert caller_through_aws_config(home).startswith("arn:aws:sts::123456789012:assumed-role/")

    before = files(home)
    again = init(home, "--no-systemd")
    assert again.returncode == 0, again.stderr
    assert "already set up" in again.stdout
    assert files(home) == before
    assert_works_from_the_keyring(home)


def test_init_again_on_a_keyring_setup_whose_keyring_is_locked_is_77_not_a_conflict(
    home: UserHome, secret_service: SecretService
) -> None:
    guide_end_state(home)
    with keyring_of(home):  # set-up: the key kept in the keyring, as `init` does
        set_up = in_process(home, *INIT_FLAGS, "--no-systemd")
    assert set_up.returncode == 0, set_up.stderr
    assert 'source_keyring = "bedrock-developer"' in home.config_file.read_text()
    secret_service.lock()
    before = files(home)
    again = init(home, "--no-systemd")
    assert_one_line_failure(again, 77, "locked", "unlock")
    assert files(home) == before


def test_init_no_keyring_keeps_the_credentials_file_even_with_a_keyring(
    home: UserHome, secret_service: SecretService
) -> None:
    guide_end_state(home)
    result = init(home, "--no-systemd", "--no-keyring")
    assert result.returncode == 0, result.stderr
    assert "OS keyring" not in result.stdout
    assert 'source_profile = "bedrock-developer"' in home.config_file.read_text()
    assert home.sts.secret_access_key in (home.root / ".aws" / "credentials").read_text()
    assert secret_service.stored("bedrock-developer") is None


def test_init_keyring_on_a_locked_keyring_is_77_with_nothing_written(
    home: UserHome, secret_service: SecretService
) -> None:
    guide_end_state(home)
    secret_service.lock()
    before = files(home)
    result = init(home, "--no-systemd", "--keyring")
    assert_one_line_failure(result, 77, "keyring", "locked", "unlock", "nothing was written")
    assert files(home) == before
    assert secret_service.is_locked()
    dry = init(home, "--no-systemd", "--keyring", "--dry-run")
    assert_one_line_failure(dry, 77, "locked")

    # Without --keyring, a locked keyring is not used: the credentials file, as before.
    result = init(home, "--no-systemd")
    assert result.returncode == 0, result.stderr
    assert 'source_profile = "bedrock-developer"' in home.config_file.read_text()
    assert secret_service.is_locked()


def test_init_keyring_without_any_keyring_is_77_naming_the_fix(home: UserHome) -> None:
    guide_end_state(home)
    before = home.snapshot()
    result = init(home, "--no-systemd", "--keyring")
    assert_one_line_failure(result, 77, "--list-backends", "nothing was written")
    assert home.snapshot() == before


def test_init_keyring_refused_by_aws_puts_every_file_back_and_removes_the_entry(
    home: UserHome, secret_service: SecretService
) -> None:
    guide_end_state(home)
    home.proxy.add_fault(Fault("code", action="AssumeRole", code="AccessDenied"))
    before = files(home)
    result = init(home, "--no-systemd", "--keyring")
    assert_one_line_failure(result, 77, "AWS denied AssumeRole", "every file was put back as it was")
    assert files(home) == before
    assert secret_service.stored("bedrock-developer") is None
    assert home.proxy.count("GetCallerIdentity") == 1  # the pair was verified from the keyring


def test_init_dry_run_says_the_key_goes_to_the_keyring_and_writes_nothing(
    home: UserHome, secret_service: SecretService
) -> None:
    guide_end_state(home)
    before = files(home)
    result = init(home, "--no-systemd", "--dry-run")
    assert result.returncode == 0, result.stderr
    assert "keyring entry 'bedrock-developer'" in result.stdout
    assert '+source_keyring = "bedrock-developer"' in result.stdout
    assert ".aws/credentials" not in result.stdout.replace("not in ~/.aws/credentials", "")
    assert files(home) == before
    assert secret_service.stored("bedrock-developer") is None


# ----- the pure edits ------------------------------------------------------------------------------

PAIR = "aws_access_key_id = AKIAIOSFODNN7EXAMPLE\naws_secret_access_key = wJalrXUtnFEMI/K7MDENG\n"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"[a]\nregion = x\n\n[dev]\n{PAIR}", "[a]\nregion = x\n"),
        (f"[dev]\n{PAIR}\n[a]\nregion = x\n", "[a]\nregion = x\n"),
        (f"# top\n[dev]\n{PAIR}", "# top\n"),
        (f"[dev]\n{PAIR}", ""),
        (f"[dev]\nregion = y\n{PAIR}[a]\n", "[dev]\nregion = y\n[a]\n"),
        (f"[dev]\n; mine\n{PAIR}", "[dev]\n; mine\n"),
        (f"[dev]\r\n{PAIR.replace(chr(10), chr(13) + chr(10))}[a]\r\nk = v", "[a]\r\nk = v"),
        (
            "[dev]\naws_access_key_id=AKIAIOSFODNN7EXAMPLE\n"
            "aws_secret_access_key =\n  wJalr\n  XUtn\nx = 1\n",
            "[dev]\nx = 1\n",
        ),
    ],
)
def test_a_pair_is_removed_from_its_section_every_other_byte_kept(text: str, expected: str) -> None:
    assert without_key_pair(text, Path("c"), "dev", "AKIAIOSFODNN7EXAMPLE") == expected


def test_a_section_holding_another_key_now_is_left_alone() -> None:
    with pytest.raises(ConfigError, match="no longer holds"):
        without_key_pair(f"[dev]\n{PAIR}", Path("c"), "dev", "AKIAI44QH8DHBEXAMPLE")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[profiles.a]\nsource_profile = "dev" # me\n', '[profiles.a]\nsource_keyring = "kr" # me\n'),
        ("[profiles.\"a\"]\r\nsource_profile='dev'\r\n", '[profiles."a"]\r\nsource_keyring="kr"\r\n'),
        ('[profiles.a]\nrole_arn = "r"', '[profiles.a]\nsource_keyring = "kr"\nrole_arn = "r"'),
        (
            '[profiles.b]\nsource_profile = "dev"\n[profiles.a]\nsource_profile = "dev"\n',
            '[profiles.b]\nsource_profile = "dev"\n[profiles.a]\nsource_keyring = "kr"\n',
        ),
        ('[profiles.a]\nsource_keyring = "kr"\n', '[profiles.a]\nsource_keyring = "kr"\n'),
    ],
)
def test_a_profile_is_switched_to_the_keyring_every_other_byte_kept(text: str, expected: str) -> None:
    assert switch_to_keyring(text, "c", ["a"], "kr") == expected


@pytest.mark.parametrize(
    "text",
    [
        'profiles.a.source_profile = "dev"\n',
        'profiles = { a = { source_profile = "dev" } }\n',
        '[profiles.a]\nsource_keyring = "other"\n',
        '[profiles.b]\nsource_profile = "dev"\n',
    ],
)
def test_a_switch_it_cannot_make_with_certainty_is_refused(text: str) -> None:
    with pytest.raises(ConfigError):
        switch_to_keyring(text, "c", ["a"], "kr")


def test_the_commented_config_template_is_what_the_home_fixture_writes(home: UserHome) -> None:
    """CONFIG_WITH_COMMENTS stays in step with UserHome.write_config (the same profile, comments aside)."""
    import tomllib

    written = tomllib.loads(home.config_file.read_text())
    assert tomllib.loads(commented_config(home)) == written


@pytest.mark.parametrize("to_keyring", [True, False], ids=["to-keyring", "to-a-profile"])
def test_a_configuration_every_command_refuses_is_refused_with_nothing_moved(
    home: UserHome, secret_service: SecretService, to_keyring: bool
) -> None:
    """A mistake in any profile: 78 as for every other command, not a move made without the
    configuration (which would leave its profiles naming a section emptied of its key)."""
    credentials_with_pair(home)
    if not to_keyring:
        put_long_term_key_in_env(home)
    home.config_file.write_text(
        home.config_file.read_text()
        + '\n[profiles.typo]\nrole_arn = "arn:aws:iam::123456789012:role/X"\nduration_seconds = 5\n'
    )
    before = files(home)
    if to_keyring:
        args = ["--to-keyring", "kr", "--from-profile", "bedrock-developer"]
    else:
        args = ["--env-file", str(home.app_env), "--profile", "adopted"]
    result = home.run("adopt-keys", *args)
    assert_one_line_failure(result, 78, "duration_seconds")
    assert files(home) == before
    assert secret_service.stored("kr") is None
    assert home.proxy.count("GetCallerIdentity") == 0
