"""`source_keyring = "NAME"` (DESIGN section 13): the long-term pair read from the OS keyring (a
real Secret Service, tests/secretservice.py) when a session is made; no file under HOME holds it;
a locked, absent or refusing keyring is one line and exit 77, never a prompt, never an STS call."""

from __future__ import annotations

import contextlib
import json
import signal
from collections.abc import Iterator
from pathlib import Path

from tests.conftest import KEYRING_ENTRY, UserHome
from tests.daemonproc import DaemonProcess, wait_for
from tests.helpers import (
    as_the_user,
    assert_no_secret,
    assert_one_line_failure,
    cached_record,
    read_env,
    refreshed,
)
from tests.secretservice import SecretService


def files_holding(root: Path, secret: str) -> list[str]:
    """Every file under `root` whose bytes contain `secret`."""
    return [
        str(path)
        for path in root.rglob("*")
        if path.is_file() and not path.is_symlink() and secret.encode() in path.read_bytes()
    ]


@contextlib.contextmanager
def keyring_of(home: UserHome) -> Iterator[None]:
    """For a set-up step run in this process (tests.helpers.refreshed, in_process) that reads or
    writes the keyring: keyring's backend detected afresh in `home`'s environment (its session bus),
    and the one before put back after. The `keyring` library detects its backend once per process
    (keyring.core.get_keyring), and this process serves homes with a Secret Service and without."""
    import keyring.backend
    import keyring.core

    saved = keyring.core._keyring_backend
    with as_the_user(home):
        with contextlib.suppress(KeyError):  # KeyError: never detected before
            keyring.backend.get_all_keyring.reset()  # the viable backends, remembered as well
        keyring.core.init_backend()
    try:
        yield
    finally:
        keyring.core._keyring_backend = saved


def test_every_command_works_from_the_keyring_and_no_file_holds_the_long_term_secret(
    keyring_home: UserHome, daemons: list[DaemonProcess]
) -> None:
    home = keyring_home
    refreshed = home.run("refresh", "bedrock")
    assert refreshed.returncode == 0, refreshed.stderr
    assert read_env(home.app_env)["AWS_ACCESS_KEY_ID"] == cached_record(home)["AccessKeyId"]

    (home.cache_dir / "bedrock.json").unlink()  # each command below makes its own session
    process = home.run("credential-process", "bedrock")
    assert process.returncode == 0, process.stderr
    assert json.loads(process.stdout)["AccessKeyId"].startswith("ASIA")
    (home.cache_dir / "bedrock.json").unlink()
    executed = home.run("exec", "bedrock", "--", "sh", "-c", 'echo "$AWS_ACCESS_KEY_ID"')
    assert executed.returncode == 0, executed.stderr
    assert executed.stdout.startswith("ASIA")
    (home.cache_dir / "bedrock.json").unlink()
    daemon = DaemonProcess(home)
    daemons.append(daemon)
    wait_for(lambda: (home.cache_dir / "bedrock.json").exists(), 30)
    assert home.proxy.count("AssumeRole") == 4, daemon.log

    assert not files_holding(home.root, home.sts.secret_access_key), "a file holds the long-term secret"
    assert_no_secret(home, refreshed.stdout, refreshed.stderr, process.stderr, executed.stderr)


def test_a_locked_keyring_is_one_line_and_77_with_no_prompt_and_no_sts_call(
    keyring_home: UserHome, secret_service: SecretService
) -> None:
    home = keyring_home
    secret_service.lock()
    before = home.snapshot()
    commands = [("refresh", "bedrock"), ("credential-process", "bedrock"), ("env", "bedrock", "--static")]
    for command in commands:
        result = home.run(*command)
        assert_one_line_failure(result, 77, "keyring", "locked", "unlock")
    assert secret_service.is_locked(), "credhelper unlocked the keyring (a prompt would have shown)"
    assert home.proxy.count("AssumeRole") == 0
    assert home.snapshot() == before

    secret_service.unlock()
    assert home.run("refresh", "bedrock").returncode == 0


def test_valid_credentials_are_still_handed_out_while_the_keyring_is_locked(
    keyring_home: UserHome, secret_service: SecretService
) -> None:
    home = keyring_home
    with keyring_of(home):
        refreshed(home)  # a session cached from the keyring's pair, as `refresh` leaves it
    secret_service.lock()
    result = home.run("credential-process", "bedrock")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["AccessKeyId"] == cached_record(home)["AccessKeyId"]
    assert home.proxy.count("AssumeRole") == 1


def test_no_secret_service_on_the_bus_is_one_line_naming_the_fix(keyring_home: UserHome) -> None:
    home = keyring_home
    result = home.run("refresh", "bedrock", DBUS_SESSION_BUS_ADDRESS=f"unix:path={home.root}/no-bus")
    assert_one_line_failure(result, 77, "keyring")
    assert "--list-backends" in result.stderr
    assert home.proxy.count("AssumeRole") == 0


def test_an_entry_that_is_missing_or_not_a_pair_is_named_with_the_fix(
    keyring_home: UserHome, secret_service: SecretService
) -> None:
    home = keyring_home
    home.write_config(source_profile="", source_keyring='"nobody-stored-this"')
    missing = home.run("refresh", "bedrock")
    assert_one_line_failure(missing, 77, "'nobody-stored-this'", "adopt-keys --to-keyring nobody-stored-this")
    secret_service.store(KEYRING_ENTRY, '{"aws_access_key_id": "AKIAIOSFODNN7EXAMPLE"}')
    home.write_config(source_profile="", source_keyring=f'"{KEYRING_ENTRY}"')
    assert_one_line_failure(home.run("refresh", "bedrock"), 78, KEYRING_ENTRY, "aws_secret_access_key")
    assert home.proxy.count("AssumeRole") == 0


def test_source_keyring_beside_source_profile_is_a_configuration_error(home: UserHome) -> None:
    home.write_config(source_keyring='"bedrock-developer"')
    for command in (("refresh", "bedrock"), ("credential-process", "bedrock"), ("status",)):
        assert_one_line_failure(home.run(*command), 78, "source_keyring", "source_profile")


def test_the_daemon_waits_out_a_locked_keyring_without_a_prompt_and_says_so(
    keyring_home: UserHome, secret_service: SecretService, daemons: list[DaemonProcess]
) -> None:
    """The daemon's timing (about a lookup a minute, recovery within a minute of the unlock) is
    test_coordinator's; here, the real thing: no STS call, no unlock, status and the log say why,
    and a SIGUSR1 after the unlock brings the credentials at once."""
    home = keyring_home
    secret_service.lock()
    daemon = DaemonProcess(home)
    daemons.append(daemon)
    wait_for(lambda: "is locked" in daemon.log, 30)
    assert "next try in" in daemon.log
    assert secret_service.is_locked(), "the daemon unlocked the keyring (a prompt would have shown)"
    assert home.proxy.count("AssumeRole") == 0
    status = home.run("status", "bedrock")
    assert "keyring      locked: unlock it" in status.stdout, status.stdout
    as_json = json.loads(home.run("status", "bedrock", "--json").stdout)[0]
    assert as_json["keyring"] == "locked" and "is locked" in as_json["last_error"]

    secret_service.unlock()
    daemon.signal(signal.SIGUSR1)
    daemon.wait_written()
    assert home.proxy.count("AssumeRole") == 1
    after = home.run("status", "bedrock")
    rows = [line.split()[0] for line in after.stdout.splitlines() if line.strip()]
    assert "keyring" not in rows, after.stdout
    assert json.loads(home.run("status", "bedrock", "--json").stdout)[0]["keyring"] == "unlocked"


def test_a_secret_service_without_a_login_keyring_is_refused_without_a_prompt(
    home: UserHome, tmp_path: Path
) -> None:
    """No default collection (no desktop login, or the login keyring deleted): keyring itself would
    ask gnome-keyring to create one, with a prompt. credhelper says what is missing instead."""
    service = SecretService(home.root, tmp_path / "no-login", login=False)
    try:
        home.env["DBUS_SESSION_BUS_ADDRESS"] = service.address
        home.write_config(source_profile="", source_keyring=f'"{KEYRING_ENTRY}"')
        assert_one_line_failure(home.run("refresh", "bedrock"), 77, "no default collection", "log")
        status = json.loads(home.run("status", "bedrock", "--json").stdout)[0]
        assert status["keyring"] == "absent"
        doctor = home.run("doctor", "bedrock")
        assert "no default collection" in doctor.stdout, doctor.stdout
        assert service.prompts_asked() == 0, "a prompt was asked for"
        assert home.proxy.count("AssumeRole") == 0
    finally:
        service.stop()
