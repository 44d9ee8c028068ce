"""`credhelper doctor` and the OS keyring (DESIGN section 13), against a real Secret Service: whether
the keyring of a `source_keyring` profile answers and is unlocked (looked at, never unlocked), a
keyring stored without a password, and where a long-term secret is still in plain text, with the
command that moves it."""

from __future__ import annotations

from tests.conftest import UserHome
from tests.helpers import in_process
from tests.secretservice import SecretService
from tests.test_adopt_keys import put_long_term_key_in_env
from tests.test_doctor import FAIL, OK, WARN, doctor, line_of
from tests.test_keyring_source import keyring_of

PLAIN_KEYRING = "[keyring]\ndisplay-name=plain\nctime=0\nmtime=0\nlock-on-idle=false\nlock-after=false\n"


def test_an_unlocked_keyring_of_a_keyring_profile_is_ok(keyring_home: UserHome) -> None:
    result, statuses = doctor(keyring_home)
    assert statuses["keyring"] == OK, result.stdout
    assert "answers and is unlocked" in line_of(result, OK, "keyring")
    assert statuses["source credentials"] == OK, result.stdout
    assert "keyring file" not in statuses, result.stdout  # the test's login keyring has a password


def test_a_locked_keyring_fails_with_the_fix_and_stays_locked(
    keyring_home: UserHome, secret_service: SecretService
) -> None:
    secret_service.lock()
    result, _ = doctor(keyring_home)
    assert result.returncode == 1
    line = line_of(result, FAIL, "keyring")
    assert "locked" in line and "unlock it" in line, line
    assert secret_service.is_locked(), "doctor unlocked the keyring (a prompt would have shown)"
    assert keyring_home.proxy.count("AssumeRole") == 0


def test_no_keyring_at_all_fails_naming_the_fix(keyring_home: UserHome) -> None:
    keyring_home.env["DBUS_SESSION_BUS_ADDRESS"] = f"unix:path={keyring_home.root}/no-bus"
    result, _ = doctor(keyring_home)
    assert result.returncode == 1
    assert "--list-backends" in line_of(result, FAIL, "keyring")


def test_a_keyring_stored_without_a_password_warns(keyring_home: UserHome) -> None:
    plain = keyring_home.root / ".local" / "share" / "keyrings" / "plain.keyring"
    plain.write_text(PLAIN_KEYRING)
    result, _ = doctor(keyring_home)
    line = line_of(result, WARN, "keyring file")
    assert str(plain) in line and "without a password" in line, line
    assert "login.keyring" not in result.stdout  # encrypted: not named


def test_a_plaintext_pair_warns_with_the_command_that_moves_it_and_then_is_gone(
    home: UserHome, secret_service: SecretService
) -> None:
    result, statuses = doctor(home)
    line = next(line for line in result.stdout.splitlines() if "plain text" in line)
    assert line.startswith(WARN), line
    command = "credhelper adopt-keys --to-keyring bedrock-developer --from-profile bedrock-developer"
    assert "[bedrock-developer]" in line and "plain text" in line and command in line, line

    with keyring_of(home):  # the command doctor gave, run in this process: adopt-keys is tested elsewhere
        moved = in_process(home, *command.split()[1:])
    assert moved.returncode == 0, moved.stderr
    result, statuses = doctor(home)
    assert statuses["keyring"] == OK, result.stdout
    assert statuses.get("long-term key", OK) == OK, result.stdout
    assert "plain text" not in result.stdout


def test_without_a_keyring_a_plaintext_pair_is_said_but_not_a_warning(home: UserHome) -> None:
    result, statuses = doctor(home)
    assert statuses["long-term key"] == OK, result.stdout
    lines = [line for line in result.stdout.splitlines() if " long-term key " in line]
    assert any("plain text" in line and "no OS keyring is unlocked" in line for line in lines), lines


def test_a_long_term_key_in_a_env_names_the_keyring_route_too(home: UserHome) -> None:
    put_long_term_key_in_env(home)
    result, _ = doctor(home)
    line = line_of(result, FAIL, "long-term key")
    assert "credhelper adopt-keys --env-file" in line, line
    assert f"credhelper adopt-keys --to-keyring bedrock-developer --env-file {home.app_env}" in line, line
