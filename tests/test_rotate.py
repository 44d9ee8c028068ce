"""`credhelper rotate PROFILE [--deactivate]` (DESIGN section 13) against moto's IAM through the
proxy: a new long-term key stored where the old one lived (credentials-file section or keyring
entry), verified, the old one deleted; killed between any two steps, the next rotate finishes or
undoes it, so the stored pair works and the user ends with exactly one key.

Each test gets an IAM user of its own (the session's moto is shared, and rotating its user would
break every other test), allowed to assume a role of its own and to manage its own access keys."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from credhelper.credentials import mask_key_id
from devtools.localsts import provision_user as localsts_provision_user
from tests.conftest import KEYRING_ENTRY, UserHome
from tests.daemonproc import DaemonProcess, wait_for
from tests.helpers import as_the_user, assert_no_secret, assert_one_line_failure, in_process, refreshed
from tests.secretservice import SecretService
from tests.stsproxy import Fault
from tests.test_keyring_source import keyring_of

SECTION = "bedrock-developer"
IAM_ACTIONS = ["iam:CreateAccessKey", "iam:DeleteAccessKey", "iam:UpdateAccessKey", "iam:ListAccessKeys"]


_ADMINS: dict[str, tuple[str, str]] = {}


def admin(home: UserHome) -> Any:
    """An IAM client of an administrator user made once per local STS (auth switched off only to
    make it): every other call of these tests runs with authentication enforced."""
    if home.sts.url not in _ADMINS:
        home.sts.set_auth(enforced=False)
        try:
            bootstrap = home.sts.iam()
            bootstrap.create_user(UserName="rotate-tests-admin")
            statement = {"Effect": "Allow", "Action": "*", "Resource": "*"}
            allow_all = {"Version": "2012-10-17", "Statement": [statement]}
            bootstrap.put_user_policy(
                UserName="rotate-tests-admin", PolicyName="all", PolicyDocument=json.dumps(allow_all)
            )
            key = bootstrap.create_access_key(UserName="rotate-tests-admin")["AccessKey"]
        finally:
            home.sts.set_auth(enforced=True)
        _ADMINS[home.sts.url] = (key["AccessKeyId"], key["SecretAccessKey"])
    return home.sts.iam(*_ADMINS[home.sts.url])


@dataclass
class Rotating:
    home: UserHome
    user: str
    first_secret: str
    role_arn: str
    keyring: SecretService | None = None

    def iam_keys(self) -> dict[str, str]:
        """The user's access keys in IAM, as the administrator sees them: id -> status."""
        listed = admin(self.home).list_access_keys(UserName=self.user)["AccessKeyMetadata"]
        return {item["AccessKeyId"]: item["Status"] for item in listed}

    def stored(self) -> dict[str, str]:
        """The pair stored where the profile reads it."""
        if self.keyring is not None:
            entry = self.keyring.stored(KEYRING_ENTRY)
            assert entry is not None
            return entry
        text = (self.home.root / ".aws" / "credentials").read_text()
        section = text.split(f"[{SECTION}]", 1)[1].split("[", 1)[0]
        values = dict(line.split(" = ", 1) for line in section.strip().splitlines() if " = " in line)
        return {k: values[k] for k in ("aws_access_key_id", "aws_secret_access_key")}

    def rotate(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self.home.run("rotate", "bedrock", *args, timeout=90)

    def assert_settled(self, *outputs: str) -> None:
        """What a user relies on after any rotate: one key, active, the stored one, and it works."""
        stored = self.stored()
        assert self.iam_keys() == {stored["aws_access_key_id"]: "Active"}
        self.assert_works()
        for text in outputs:
            assert stored["aws_secret_access_key"] not in text
            assert self.first_secret not in text
        assert not journals(self.home)

    def assert_works(self) -> None:
        """The stored pair makes a session: what `refresh bedrock` does with no cached one, made in
        this process (the check of a rotate's outcome, not the test's subject; refresh itself is
        tested as users run it, from a credentials file and from the keyring)."""
        (self.home.cache_dir / "bedrock.json").unlink(missing_ok=True)
        if self.keyring is None:
            refreshed(self.home)
        else:
            with keyring_of(self.home):
                refreshed(self.home)


def journals(home: UserHome) -> list[Path]:
    return [p for p in home.cache_dir.glob("rotation-*.json") if not p.name.endswith(".retired.json")]


def provision_user(home: UserHome) -> tuple[str, dict[str, Any], str]:
    """A user of this test's own with one key, a role it may assume, and leave to manage its keys."""
    user = f"rot-{uuid.uuid4().hex[:12]}"
    # moto checks IAM actions against the resource "*" alone: docs/rotation.md's policy names the
    # user itself (arn:aws:iam::*:user/${aws:username}), as AWS checks it.
    own_keys = {"Effect": "Allow", "Action": IAM_ACTIONS, "Resource": "*"}
    key, role_arn = localsts_provision_user(admin(home), user, f"{user}-role", [own_keys])
    return user, key, role_arn


@pytest.fixture
def rotating(home: UserHome) -> Rotating:
    user, key, role_arn = provision_user(home)
    credentials = home.root / ".aws" / "credentials"
    credentials.write_text(
        "# my keys\n[other]\naws_access_key_id = AKIAOTHERKEYEXAMPLE1\naws_secret_access_key = fake\n\n"
        f"[{SECTION}]\naws_access_key_id = {key['AccessKeyId']}\n"
        f"aws_secret_access_key = {key['SecretAccessKey']}\nregion = us-east-1 ; kept\n"
    )
    home.write_config(role_arn=f'"{role_arn}"', iam_endpoint_url=f'"{home.proxy.url}"')
    return Rotating(home, user, key["SecretAccessKey"], role_arn)


@pytest.fixture
def keyring_rotating(home: UserHome, secret_service: SecretService) -> Rotating:
    user, key, role_arn = provision_user(home)
    pair = {"aws_access_key_id": key["AccessKeyId"], "aws_secret_access_key": key["SecretAccessKey"]}
    secret_service.store(KEYRING_ENTRY, json.dumps(pair))
    (home.root / ".aws" / "credentials").unlink()
    home.write_config(
        role_arn=f'"{role_arn}"',
        source_profile="",
        source_keyring=f'"{KEYRING_ENTRY}"',
        iam_endpoint_url=f'"{home.proxy.url}"',
    )
    return Rotating(home, user, key["SecretAccessKey"], role_arn, keyring=secret_service)


def test_rotate_replaces_the_key_in_the_credentials_file_keeping_every_other_byte(rotating: Rotating) -> None:
    home = rotating.home
    credentials = home.root / ".aws" / "credentials"
    old = rotating.stored()
    before = credentials.read_text()
    result = rotating.rotate()
    assert result.returncode == 0, result.stderr
    new = rotating.stored()
    assert new["aws_access_key_id"] != old["aws_access_key_id"]
    after = credentials.read_text()
    expected = before.replace(old["aws_access_key_id"], new["aws_access_key_id"]).replace(
        old["aws_secret_access_key"], new["aws_secret_access_key"]
    )
    assert after == expected  # comments, the other section and the region line untouched
    assert os.stat(credentials).st_mode & 0o777 == 0o600
    assert mask_key_id(old["aws_access_key_id"]) in result.stdout
    assert mask_key_id(new["aws_access_key_id"]) in result.stdout
    assert f"IAM endpoint: {home.proxy.url}" in result.stdout
    assert new["aws_access_key_id"] not in result.stdout + result.stderr
    assert_no_secret(home, result.stdout, result.stderr)
    rotating.assert_settled(result.stdout, result.stderr)
    assert home.proxy.count("CreateAccessKey") == 1 and home.proxy.count("DeleteAccessKey") == 1

    status = json.loads(home.run("status", "bedrock", "--json").stdout)[0]
    assert status["source_key_id"] == mask_key_id(new["aws_access_key_id"])
    assert status["source_key_age_days"] == 0
    assert "source key" in home.run("status", "bedrock").stdout


def test_rotate_replaces_the_keyring_entry(keyring_rotating: Rotating) -> None:
    rotating = keyring_rotating
    old = rotating.stored()
    result = rotating.rotate()
    assert result.returncode == 0, result.stderr
    assert rotating.stored()["aws_access_key_id"] != old["aws_access_key_id"]
    assert "keyring entry" in result.stdout
    assert not (rotating.home.root / ".aws" / "credentials").exists()
    rotating.assert_settled(result.stdout, result.stderr)


def test_deactivate_keeps_the_old_key_inactive_and_the_next_rotate_deletes_it(rotating: Rotating) -> None:
    old = rotating.stored()["aws_access_key_id"]
    result = rotating.rotate("--deactivate")
    assert result.returncode == 0, result.stderr
    new = rotating.stored()["aws_access_key_id"]
    assert rotating.iam_keys() == {old: "Inactive", new: "Active"}
    assert "deactivated" in result.stdout
    rotating.assert_works()

    again = rotating.rotate()
    assert again.returncode == 0, again.stderr
    assert f"deleted {mask_key_id(old)}" in again.stdout
    assert old not in rotating.iam_keys() and new not in rotating.iam_keys()
    rotating.assert_settled(again.stdout, again.stderr)


def test_a_second_key_credhelper_did_not_make_is_refused_named_and_kept(rotating: Rotating) -> None:
    home = rotating.home
    stranger = admin(home).create_access_key(UserName=rotating.user)["AccessKey"]["AccessKeyId"]
    keys, before = rotating.iam_keys(), home.snapshot()
    result = rotating.rotate()
    assert_one_line_failure(result, 78, mask_key_id(stranger), "minutes old", "did not make")
    assert stranger not in result.stderr
    assert rotating.iam_keys() == keys
    assert home.snapshot() == before
    assert home.proxy.count("CreateAccessKey") == 0
    assert not journals(home)


@pytest.mark.parametrize(
    ("aws_config", "source_profile"),
    [
        (
            "[profile sso-dev]\nsso_start_url = https://example.awsapps.com/start\nsso_region = eu-west-1\n",
            "sso-dev",
        ),
        ("[profile proc]\ncredential_process = /bin/false\n", "proc"),
        ("", ""),  # no source: the environment
    ],
    ids=["sso", "credential_process", "environment"],
)
def test_a_source_that_is_no_stored_long_term_key_has_nothing_to_rotate(
    home: UserHome, aws_config: str, source_profile: str
) -> None:
    (home.root / ".aws" / "config").write_text(aws_config)
    home.write_config(source_profile=f'"{source_profile}"' if source_profile else "")
    result = home.run("rotate", "bedrock")
    assert_one_line_failure(result, 78, "nothing to rotate")
    assert sum(home.proxy.calls.values()) == 0


def test_aws_refusing_the_iam_calls_is_77_naming_the_permissions(home: UserHome) -> None:
    home.write_config(iam_endpoint_url=f'"{home.proxy.url}"')  # the shared user: no IAM rights
    before = home.snapshot()
    result = home.run("rotate", "bedrock")
    assert_one_line_failure(result, 77, "iam:ListAccessKeys", "docs/rotation.md")
    assert home.snapshot() == before
    assert home.proxy.count("CreateAccessKey") == 0


def test_iam_unreachable_is_75(rotating: Rotating) -> None:
    rotating.home.proxy.add_fault(Fault("error500", action="ListAccessKeys"))
    result = rotating.rotate()
    assert_one_line_failure(result, 75, "IAM at")
    rotating.home.proxy.clear_faults()
    rotating.assert_settled()


def test_a_credentials_file_that_cannot_be_stored_in_deletes_the_new_key_at_once(rotating: Rotating) -> None:
    """While CreateAccessKey runs, a person leaves a line in the file that no SDK reads with
    certainty: the new pair cannot be stored, so the new key is deleted before rotate exits."""
    home = rotating.home
    credentials = home.root / ".aws" / "credentials"
    old, before = rotating.stored(), credentials.read_text()
    home.proxy.add_fault(Fault("delay", action="CreateAccessKey", seconds=3))
    process = start_rotate(home)
    wait_for(lambda: home.proxy.count("CreateAccessKey") == 1, 30)
    credentials.write_text(before + "half a line being typed\n")
    out, err = process.communicate(timeout=60)
    assert process.returncode == 78, err
    assert len(err.strip().splitlines()) == 1 and "line 10" in err, err
    assert home.proxy.count("DeleteAccessKey") == 1
    assert credentials.read_text() == before + "half a line being typed\n"  # left as the person left it
    credentials.write_text(before)
    assert rotating.stored() == old
    assert not journals(home)
    rotating.assert_settled(out, err)


def test_a_keyring_locked_before_storing_deletes_the_new_key_and_fails_77(keyring_rotating: Rotating) -> None:
    rotating = keyring_rotating
    assert rotating.keyring is not None
    home = rotating.home
    old = rotating.stored()
    home.proxy.add_fault(Fault("delay", action="CreateAccessKey", seconds=3))
    process = start_rotate(home)
    wait_for(lambda: home.proxy.count("CreateAccessKey") == 1, 30)
    rotating.keyring.lock()
    out, err = process.communicate(timeout=60)
    assert process.returncode == 77, err
    assert "locked" in err
    rotating.keyring.unlock()
    assert rotating.stored() == old
    rotating.assert_settled(out, err)


def test_a_new_key_that_never_works_is_undone_and_the_old_one_put_back(rotating: Rotating) -> None:
    """IAM's propagation is waited for on an injected clock: the rotation that `rotate` runs,
    with its 30 s of tries taking no time."""
    from credhelper.cache import Cache, cache_dir_path
    from credhelper.config import load_config
    from credhelper.errors import CredhelperError
    from credhelper.refresher import Refresher
    from credhelper.rotate import VERIFY_INTERVAL, VERIFY_SECONDS, Rotator

    home = rotating.home
    old = rotating.stored()
    home.proxy.add_fault(Fault("code", action="GetCallerIdentity", code="InvalidClientTokenId"))
    tries_before = home.proxy.count("GetCallerIdentity")
    slept: list[float] = []
    with as_the_user(home):
        (profile,) = load_config(None, os.environ).select(["bedrock"])
        cache = Cache(cache_dir_path(os.environ))
        rotator = Rotator(
            profile,
            os.environ,
            cache,
            Refresher(cache),
            clock=lambda: 1_000_000.0 + sum(slept),
            sleep=slept.append,
        )
        with pytest.raises(CredhelperError) as failure:
            rotator.rotate(False)
    message = str(failure.value)
    assert failure.value.exit_code == 77 and "\n" not in message
    assert "back in" in message and "new key deleted" in message, message
    assert VERIFY_SECONDS - VERIFY_INTERVAL <= sum(slept) <= VERIFY_SECONDS  # tried for 30 s
    assert home.proxy.count("GetCallerIdentity") - tries_before == len(slept) + 1
    home.proxy.clear_faults()
    assert rotating.stored() == old
    rotating.assert_settled(message, *rotator.report.lines)


def start_rotate(home: UserHome, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "credhelper", "rotate", "bedrock", *args],
        env=home.env,
        cwd=home.root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def kill_at(home: UserHome, action: str) -> None:
    """A rotate killed (SIGKILL, its whole group) while its `action` request hangs at the proxy;
    the hung request then reaches IAM anyway, as one already sent would."""
    seen = home.proxy.count(action)
    home.proxy.add_fault(Fault("delay", action=action, seconds=3, remaining=1))
    process = start_rotate(home)
    try:
        wait_for(lambda: home.proxy.count(action) > seen, 30)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate(timeout=10)
    home.proxy.clear_faults()
    wait_for(lambda: home.proxy.in_flight == 0, 10)


# Where the kill lands -> what the next rotate says it did, and how many keys were created in all.
STEPS = {
    "ListAccessKeys": ("", 1),  # before the journal: nothing to recover, a plain rotation
    "CreateAccessKey": ("undid an interrupted rotation", 2),  # a key made, its id never recorded
    "GetCallerIdentity": ("finished an interrupted rotation", 1),  # stored, not yet verified
    "DeleteAccessKey": ("finished an interrupted rotation", 1),  # verified, old key going
}


@pytest.mark.parametrize("action", sorted(STEPS))
def test_killed_at_any_step_the_next_rotate_finishes_or_undoes_it(rotating: Rotating, action: str) -> None:
    home = rotating.home
    first = rotating.stored()["aws_access_key_id"]
    kill_at(home, action)
    rotating.assert_works()  # before any recovery: the stored pair works
    left = journals(home)
    assert len(left) == (0 if action == "ListAccessKeys" else 1)
    for journal in left:  # private, and never a secret, whichever is stored now
        assert os.stat(journal).st_mode & 0o777 == 0o600
        text = journal.read_text()
        assert rotating.first_secret not in text and rotating.stored()["aws_secret_access_key"] not in text
    result = rotating.rotate()
    assert result.returncode == 0, result.stderr
    said, created = STEPS[action]
    assert said in result.stdout
    assert home.proxy.count("CreateAccessKey") == created
    assert rotating.stored()["aws_access_key_id"] != first
    rotating.assert_settled(result.stdout, result.stderr)


@pytest.mark.parametrize("action", ["CreateAccessKey", "GetCallerIdentity"])
def test_killed_keyring_rotation_is_finished_or_undone(keyring_rotating: Rotating, action: str) -> None:
    kill_at(keyring_rotating.home, action)
    result = keyring_rotating.rotate()
    assert result.returncode == 0, result.stderr
    assert "interrupted rotation" in result.stdout
    keyring_rotating.assert_settled(result.stdout, result.stderr)


def test_finish_interrupted_deletes_a_created_key_that_was_never_stored(rotating: Rotating) -> None:
    """A kill between CreateAccessKey's answer and the store: the journal names the new key,
    the stored pair is still the old one. finish_interrupted (the daemon's call) deletes it."""
    from credhelper.cache import Cache, cache_dir_path
    from credhelper.config import load_config
    from credhelper.refresher import Refresher
    from credhelper.rotate import finish_interrupted

    home = rotating.home
    kill_at(home, "CreateAccessKey")  # a journal at `creating`, and a key created
    (journal,) = journals(home)
    created = next(k for k in rotating.iam_keys() if k != rotating.stored()["aws_access_key_id"])
    record = json.loads(journal.read_text())
    journal.write_text(json.dumps({**record, "stage": "created", "new_key_id": created}))
    with as_the_user(home):
        (profile,) = load_config(None, os.environ).select(["bedrock"])
        cache = Cache(cache_dir_path(os.environ))
        report = finish_interrupted(profile, os.environ, cache, Refresher(cache))
    assert any(mask_key_id(created) in line and "never stored" in line for line in report.lines)
    assert not journals(home)
    rotating.assert_settled()


def test_status_and_doctor_show_the_recorded_age_and_doctor_warns_at_90_days(rotating: Rotating) -> None:
    from credhelper.cache import Cache

    home = rotating.home
    rotated = in_process(home, "rotate", "bedrock")  # set-up
    assert rotated.returncode == 0, rotated.stderr
    new = mask_key_id(rotating.stored()["aws_access_key_id"])
    cache = Cache(home.cache_dir)
    created = cache.read_state("bedrock")["source_key_created"]
    cache.update_state("bedrock", source_key_created=created - 91 * 86400)  # as if rotated long ago

    status = json.loads(home.run("status", "bedrock", "--json").stdout)[0]
    assert (status["source_key_id"], status["source_key_age_days"]) == (new, 91)
    doctor = home.run("doctor", "bedrock", "--json")
    (finding,) = [f for f in json.loads(doctor.stdout) if f["check"] == "source key age"]
    assert finding["status"] == "warn", finding
    assert "91 days old" in finding["detail"] and "credhelper rotate bedrock" in finding["detail"]


def test_the_daemon_finishes_a_rotation_a_kill_interrupted(
    rotating: Rotating, daemons: list[DaemonProcess]
) -> None:
    home = rotating.home
    kill_at(home, "GetCallerIdentity")  # the new pair stored, the old key still active
    assert len(rotating.iam_keys()) == 2
    daemon = DaemonProcess(home)
    daemons.append(daemon)
    wait_for(lambda: len(rotating.iam_keys()) == 1 and not journals(home), 60)
    wait_for(lambda: "finished an interrupted rotation" in daemon.log, 10)
    rotating.assert_settled(daemon.log)


def test_rotate_after_days_rotates_once_the_key_is_that_old_and_tries_once_a_day(rotating: Rotating) -> None:
    """The daemon's worker (credhelper/daemon/rotations.py) on a clock two days ahead: IAM dates
    the key two days back, so rotate_after_days = 1 rotates it, once; a second look the same day
    makes no IAM call."""
    import time

    from credhelper.cache import Cache, cache_dir_path
    from credhelper.config import load_config
    from credhelper.daemon.rotations import RotationWorker
    from credhelper.refresher import Refresher

    home = rotating.home
    home.write_config(
        role_arn=f'"{rotating.role_arn}"', iam_endpoint_url=f'"{home.proxy.url}"', rotate_after_days="1"
    )
    first = rotating.stored()["aws_access_key_id"]
    with as_the_user(home):
        (profile,) = load_config(None, os.environ).select(["bedrock"])
        refresher = Refresher(Cache(cache_dir_path(os.environ)))
        today = RotationWorker(lambda: [profile], refresher, os.environ, threading.Event())
        today.tend(profile)  # the key is new: looked at, not rotated
        assert rotating.stored()["aws_access_key_id"] == first

        def two_days_on() -> float:
            return time.time() + 2 * 86400

        shifted = Refresher(Cache(cache_dir_path(os.environ), clock=two_days_on), clock=two_days_on)
        later = RotationWorker(lambda: [profile], shifted, os.environ, threading.Event(), clock=two_days_on)
        later.tend(profile)
        rotated = rotating.stored()["aws_access_key_id"]
        assert rotated != first
        calls = sum(home.proxy.calls.values())
        later.tend(profile)  # the same day: no second attempt, no IAM call
        assert sum(home.proxy.calls.values()) == calls
    assert rotating.stored()["aws_access_key_id"] == rotated
    rotating.assert_settled()


def test_with_mfa_serial_the_iam_calls_are_signed_by_the_mfa_session(rotating: Rotating) -> None:
    """moto refuses GetSessionToken's credentials for IAM calls with authentication on (it does
    not know them), which shows what signed them: the long-term key would have been accepted. So
    the MFA session is made (once, from mfa_command), IAM refuses it, and nothing changes."""
    home = rotating.home
    home.write_config(
        role_arn=f'"{rotating.role_arn}"',
        iam_endpoint_url=f'"{home.proxy.url}"',
        mfa_serial='"arn:aws:iam::123456789012:mfa/rotate-user"',
        mfa_command='["sh", "-c", "echo 135790"]',
    )
    keys, before = rotating.iam_keys(), home.snapshot()
    result = rotating.rotate()
    assert_one_line_failure(result, 77, "MFA session of profile bedrock")
    assert (home.proxy.count("GetSessionToken"), home.proxy.count("ListAccessKeys")) == (1, 1)
    assert home.proxy.count("CreateAccessKey") == 0
    assert rotating.iam_keys() == keys and home.snapshot() == before
    assert "135790" not in result.stderr


@pytest.mark.slow(seconds=10)
def test_a_second_rotate_of_the_same_source_waits_its_turn_and_is_refused(rotating: Rotating) -> None:
    home = rotating.home
    home.proxy.add_fault(Fault("delay", action="CreateAccessKey", seconds=8, remaining=1))
    first = start_rotate(home)
    wait_for(lambda: home.proxy.count("CreateAccessKey") == 1, 30)
    second = rotating.rotate()
    assert_one_line_failure(second, 1, "lock")
    out, err = first.communicate(timeout=60)
    assert first.returncode == 0, err
    assert home.proxy.count("CreateAccessKey") == 1
    rotating.assert_settled(out, err, second.stderr)


def test_without_iam_endpoint_url_botocores_aws_endpoint_url_iam_is_used_and_named(
    rotating: Rotating,
) -> None:
    home = rotating.home
    home.write_config(role_arn=f'"{rotating.role_arn}"')  # no iam_endpoint_url
    result = home.run("rotate", "bedrock", AWS_ENDPOINT_URL_IAM=home.proxy.url)
    assert result.returncode == 0, result.stderr
    assert f"IAM endpoint: {home.proxy.url} (not AWS's own)" in result.stdout
    assert home.proxy.count("CreateAccessKey") == 1
    rotating.assert_settled(result.stdout, result.stderr)


def test_sigterm_abandons_the_daemons_rotation_and_the_next_rotate_finishes_it(
    rotating: Rotating, daemons: list[DaemonProcess]
) -> None:
    import time

    home = rotating.home
    kill_at(home, "GetCallerIdentity")  # a journal: the new pair stored, not yet verified
    seen = home.proxy.count("GetCallerIdentity")
    home.proxy.add_fault(Fault("delay", action="GetCallerIdentity", seconds=10))
    daemon = DaemonProcess(home)
    daemons.append(daemon)
    wait_for(lambda: home.proxy.count("GetCallerIdentity") > seen, 30)  # the daemon is verifying
    started = time.monotonic()
    assert daemon.stop() == 0
    assert time.monotonic() - started < 5, "SIGTERM waited for the rotation"
    assert len(journals(home)) == 1 and len(rotating.iam_keys()) == 2
    home.proxy.clear_faults()
    result = rotating.rotate()
    assert result.returncode == 0, result.stderr
    assert "finished an interrupted rotation" in result.stdout
    rotating.assert_settled(result.stdout, result.stderr, daemon.log)


def test_debug_logging_shows_no_secret_of_either_key(rotating: Rotating) -> None:
    home = rotating.home
    result = home.run("--log-level", "debug", "rotate", "bedrock", timeout=90)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "CreateAccessKey" in result.stderr  # botocore's wire logging is there
    rotating.assert_settled(result.stdout, result.stderr)  # neither secret in it


def test_a_journal_it_cannot_read_is_refused_before_any_iam_call(rotating: Rotating) -> None:
    home = rotating.home
    home.cache_dir.mkdir(parents=True, mode=0o700, exist_ok=True)
    journal = home.cache_dir / f"rotation-profile-{SECTION}.json"
    journal.write_text("{not json")
    journal.chmod(0o600)
    result = rotating.rotate()
    assert_one_line_failure(result, 78, str(journal), "check the user's access keys in IAM")
    assert sum(home.proxy.calls.values()) == 0
    assert journal.read_text() == "{not json"


@pytest.mark.parametrize(
    ("code", "status"), [("AccessDenied", 403), ("LimitExceeded", 409)], ids=["denied", "limit"]
)
def test_a_create_iam_refuses_leaves_no_journal_and_a_key_made_by_hand_afterwards_is_kept(
    rotating: Rotating, code: str, status: int
) -> None:
    home = rotating.home
    home.proxy.add_fault(Fault("code", action="CreateAccessKey", code=code, status=status, remaining=1))
    refused = rotating.rotate()
    assert refused.returncode != 0 and "CreateAccessKey" in refused.stderr, refused.stderr
    assert not journals(home), "a refused CreateAccessKey left a journal of a rotation in flight"

    by_hand = admin(home).create_access_key(UserName=rotating.user)["AccessKey"]["AccessKeyId"]
    again = rotating.rotate()
    assert again.returncode == 78, again.stderr
    assert by_hand[-4:] in again.stderr and by_hand in rotating.iam_keys(), "a key made by hand was deleted"
