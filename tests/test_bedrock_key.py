"""`bedrock_api_key = true`: a short-term Amazon Bedrock API key beside the credentials, made from the
same role session, checked against AWS's own token generator and botocore's signer."""

from __future__ import annotations

import calendar
import datetime
import json
import signal
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import botocore.auth
import pytest
from aws_bedrock_token_generator import provide_token
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotocoreCredentials
from dotenv import dotenv_values

from credhelper.credentials import Credentials
from credhelper.errors import ConfigError
from credhelper.formats.bedrockkey import (
    TOKEN_VARIABLE,
    bedrock_api_key,
    bedrock_key_id,
    decode_bedrock_api_key,
    is_long_term_bedrock_key,
)
from credhelper.profile import parse_profiles
from tests.conftest import AGENT0_ENV_DEFAULT, UserHome
from tests.daemonproc import DaemonProcess, wait_for
from tests.helpers import assert_one_line_failure, cached_record, read_env, refreshed
from tests.nodecheck import node_dotenv_parse
from tests.test_exec import CHILD, Exec

ISSUED = 1_767_225_600  # 2026-01-01T00:00:00Z
SESSION = Credentials(
    access_key_id="ASIAIOSFODNN7EXAMPLE",
    secret_access_key="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    session_token="FwoGZXIvYXdzEXAMPLE/session+token==",
    expiration=ISSUED + 3600,
    issued_at=ISSUED,
)
# A long-term Bedrock API key as the IAM console shows one: "ABSK" and base64 (here of an example).
LONG_TERM_BEDROCK_KEY = "ABSKQmVkcm9ja0FQSUtleS1FWEFNUExFLWF0LTEyMzQ1Njc4OTAxMjpFWEFNUExF"


def frozen_botocore_clock(monkeypatch: pytest.MonkeyPatch, epoch: int) -> None:
    """botocore's signers read the wall clock themselves; pin it to the time credhelper signed at."""
    moment = datetime.datetime.fromtimestamp(epoch, datetime.UTC).replace(tzinfo=None)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda remove_tzinfo=True: moment)


def botocore_signature(fields: dict[str, str], secret: str, token: str) -> str:
    """The signature botocore's SigV4QueryAuth gives the same request, at the same time."""
    key_id, _, scope = fields["X-Amz-Credential"].partition("/")
    region = scope.split("/")[1]
    request = AWSRequest(
        method="POST",
        url=f"https://{fields['host']}/",
        headers={"host": fields["host"]},
        params={"Action": "CallWithBearerToken"},
    )
    signer = botocore.auth.SigV4QueryAuth(
        BotocoreCredentials(key_id, secret, token), "bedrock", region, expires=int(fields["X-Amz-Expires"])
    )
    signer.add_auth(request)
    return request.url.rsplit("X-Amz-Signature=", 1)[1]


def signed_at(fields: dict[str, str]) -> int:
    return calendar.timegm(time.strptime(fields["X-Amz-Date"], "%Y%m%dT%H%M%SZ"))


def expires_at(fields: dict[str, str]) -> int:
    return signed_at(fields) + int(fields["X-Amz-Expires"])


class _Provider:
    def __init__(self, credentials: BotocoreCredentials) -> None:
        self.credentials = credentials

    def load(self) -> BotocoreCredentials:
        return self.credentials


# -- the key itself, pure -------------------------------------------------------------------------


def test_key_is_exactly_what_aws_token_generator_makes(monkeypatch: pytest.MonkeyPatch) -> None:
    frozen_botocore_clock(monkeypatch, ISSUED)
    provider = _Provider(
        BotocoreCredentials(SESSION.access_key_id, SESSION.secret_access_key, SESSION.session_token)
    )
    theirs = provide_token("eu-west-1", provider, expiry=timedelta(hours=1))  # type: ignore[arg-type]
    assert bedrock_api_key(SESSION, "eu-west-1", now=ISSUED + 60) == theirs


def test_key_is_a_presigned_call_with_bearer_token_that_botocore_verifies(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    token = bedrock_api_key(SESSION, "us-west-2", now=ISSUED + 60)
    fields = decode_bedrock_api_key(token)
    assert fields is not None
    assert fields["host"] == "bedrock.amazonaws.com"
    assert fields["Action"] == "CallWithBearerToken"
    assert fields["Version"] == "1"
    assert fields["X-Amz-Credential"] == "ASIAIOSFODNN7EXAMPLE/20260101/us-west-2/bedrock/aws4_request"
    assert fields["X-Amz-Security-Token"] == SESSION.session_token
    assert fields["X-Amz-SignedHeaders"] == "host"
    frozen_botocore_clock(monkeypatch, signed_at(fields))
    expected = botocore_signature(fields, SESSION.secret_access_key, SESSION.session_token)
    assert fields["X-Amz-Signature"] == expected, "botocore signs the same request differently"


@pytest.mark.parametrize(
    ("issued_at", "expiration", "now", "signed", "lifetime"),
    [
        (ISSUED, ISSUED + 3600, ISSUED + 600, ISSUED, 3600),  # signed when the session was issued
        (ISSUED, ISSUED + 3599.9, ISSUED, ISSUED, 3599),  # never past the session, not by a fraction
        (ISSUED, ISSUED + 50000, ISSUED, ISSUED, 43200),  # Bedrock's 12 hours at most
        (0.0, ISSUED + 3600, ISSUED + 600, ISSUED + 600, 3000),  # issue time unknown: now
        (ISSUED + 9000, ISSUED + 3600, ISSUED + 60, ISSUED + 60, 3540),  # impossible issue time: now
    ],
)
def test_key_expires_with_the_session_and_within_twelve_hours(
    issued_at: float, expiration: float, now: float, signed: int, lifetime: int
) -> None:
    session = Credentials("ASIAIOSFODNN7EXAMPLE", "secret", "token", expiration, issued_at=issued_at)
    fields = decode_bedrock_api_key(bedrock_api_key(session, "us-east-1", now))
    assert fields is not None
    assert (signed_at(fields), int(fields["X-Amz-Expires"])) == (signed, lifetime)
    assert expires_at(fields) <= expiration


def test_one_session_always_gives_the_same_key_and_another_session_another() -> None:
    first = bedrock_api_key(SESSION, "us-east-1", now=ISSUED + 10)
    assert bedrock_api_key(SESSION, "us-east-1", now=ISSUED + 1800) == first
    renewed = Credentials("ASIAEXAMPLEEXAMPLE02", "other", "token2", ISSUED + 7200, issued_at=ISSUED + 3000)
    assert bedrock_api_key(renewed, "us-east-1", now=ISSUED + 3000) != first
    assert bedrock_key_id(bedrock_api_key(renewed, "us-east-1", now=ISSUED + 3000)) == "ASIAEXAMPLEEXAMPLE02"


@pytest.mark.parametrize("issued_at", [ISSUED, 0.0])
def test_an_expired_session_makes_no_key(issued_at: float) -> None:
    expired = Credentials("ASIAIOSFODNN7EXAMPLE", "secret", "token", ISSUED + 3600, issued_at=issued_at)
    with pytest.raises(ValueError, match="expired"):
        bedrock_api_key(expired, "us-east-1", now=ISSUED + 3600)


@pytest.mark.parametrize(
    ("value", "long_term"),
    [
        (LONG_TERM_BEDROCK_KEY, True),
        ("anything-else", True),
        ("", False),
        ("bedrock-api-key-YmVkcm9jay5hbWF6b25hd3MuY29tLz9BY3Rpb249Q2FsbFdpdGhCZWFyZXJUb2tlbg==", False),
    ],
)
def test_long_term_bedrock_keys_are_told_from_short_term_ones(value: str, long_term: bool) -> None:
    assert is_long_term_bedrock_key(value) is long_term


@pytest.mark.parametrize(
    "value", ["", LONG_TERM_BEDROCK_KEY, "bedrock-api-key-!!!", "bedrock-api-key-aGVsbG8="]
)
def test_anything_but_a_presigned_key_decodes_to_no_key_id(value: str) -> None:
    assert bedrock_key_id(value) is None


# -- configuration ------------------------------------------------------------------------------


def parse(**settings: Any) -> Any:
    role = "arn:aws:iam::123456789012:role/BedrockAccessRole"
    return parse_profiles({"profiles": {"bedrock": {"role_arn": role, **settings}}}, "cfg.toml", "alice")[
        "bedrock"
    ]


def test_setting_defaults_to_off_and_does_not_change_the_cached_session() -> None:
    off, on = parse(region="us-east-1"), parse(region="us-east-1", bedrock_api_key=True)
    assert (off.bedrock_api_key, on.bedrock_api_key) == (False, True)
    assert off != on, "a daemon must see the change and rewrite its targets"
    assert off.fingerprint == on.fingerprint, "the same role session serves both"


@pytest.mark.parametrize(
    ("settings", "needle"),
    [
        ({"bedrock_api_key": "yes", "region": "us-east-1"}, "must be true or false"),
        ({"bedrock_api_key": 1, "region": "us-east-1"}, "must be true or false"),
        ({"bedrock_api_key": True}, "set region too"),
    ],
)
def test_bad_setting_is_refused_naming_file_profile_and_key(settings: dict[str, Any], needle: str) -> None:
    with pytest.raises(ConfigError) as refused:
        parse(**settings)
    assert str(refused.value).startswith("cfg.toml: [profiles.bedrock] bedrock_api_key: ")
    assert needle in str(refused.value)


def test_quoted_yes_is_a_configuration_error_and_nothing_is_written(home: UserHome) -> None:
    home.write_config(bedrock_api_key='"yes"')
    before = home.snapshot()
    result = home.run("refresh")
    assert_one_line_failure(result, 78, "bedrock_api_key", "true or false")
    assert home.snapshot() == before
    assert home.proxy.count("AssumeRole") == 0


# -- as users run it ----------------------------------------------------------------------------


def test_refresh_writes_a_key_of_the_same_session_beside_the_credentials(
    home: UserHome, monkeypatch: pytest.MonkeyPatch
) -> None:
    home.write_config(bedrock_api_key="true")
    result = home.run("--log-level", "debug", "refresh")
    assert result.returncode == 0, result.stderr
    values = read_env(home.app_env)
    token = values[TOKEN_VARIABLE]
    assert token is not None and token.startswith("bedrock-api-key-")
    fields = decode_bedrock_api_key(token)
    assert fields is not None
    assert fields["host"] == "bedrock.amazonaws.com"
    assert fields["Action"] == "CallWithBearerToken"
    assert fields["X-Amz-Credential"] == (
        f"{values['AWS_ACCESS_KEY_ID']}/{fields['X-Amz-Date'][:8]}/us-east-1/bedrock/aws4_request"
    ), "the key was signed with another key id than the one in the .env"
    assert fields["X-Amz-Security-Token"] == values["AWS_SESSION_TOKEN"]
    session_end = calendar.timegm(
        time.strptime(str(values["AWS_CREDENTIAL_EXPIRATION"]), "%Y-%m-%dT%H:%M:%SZ")
    )
    assert expires_at(fields) <= session_end, "the key outlives its session"
    assert expires_at(fields) > time.time() + 1800, "the key is already (nearly) expired"
    frozen_botocore_clock(monkeypatch, signed_at(fields))
    secret, session_token = str(values["AWS_SECRET_ACCESS_KEY"]), str(values["AWS_SESSION_TOKEN"])
    assert fields["X-Amz-Signature"] == botocore_signature(fields, secret, session_token)

    for line in AGENT0_ENV_DEFAULT.splitlines(keepends=True):
        if not line.startswith(("AWS_ACCESS_KEY_ID=", "AWS_SECRET_ACCESS_KEY=", "AWS_REGION=")):
            assert line in home.app_env.read_text(), f"the person's line {line!r} was lost"
    body = token.removeprefix("bedrock-api-key-")
    assert body[:40] not in result.stdout + result.stderr, "the Bedrock API key reached the output"


def test_without_the_setting_no_key_is_written_and_a_persons_line_stays(home: UserHome) -> None:
    home.app_env.write_text(AGENT0_ENV_DEFAULT + f"{TOKEN_VARIABLE}={LONG_TERM_BEDROCK_KEY}\n")
    refreshed(home)
    assert read_env(home.app_env)[TOKEN_VARIABLE] == LONG_TERM_BEDROCK_KEY
    home.app_env.write_text(AGENT0_ENV_DEFAULT)
    refreshed(home)
    assert TOKEN_VARIABLE not in home.app_env.read_text()


def test_turning_the_setting_off_empties_credhelpers_own_key_and_nothing_else(home: UserHome) -> None:
    home.write_config(bedrock_api_key="true")
    refreshed(home)
    assert read_env(home.app_env)[TOKEN_VARIABLE]
    home.write_config()
    refreshed(home)
    values = read_env(home.app_env)
    emptied = values[TOKEN_VARIABLE] == ""  # compared apart: the key must not reach the test output
    assert emptied, "a key of a past session was left for SDKs to prefer"
    assert f"{TOKEN_VARIABLE}=" in home.app_env.read_text(), "the line was dropped"
    for line in AGENT0_ENV_DEFAULT.splitlines(keepends=True):
        if not line.startswith(("AWS_ACCESS_KEY_ID=", "AWS_SECRET_ACCESS_KEY=", "AWS_REGION=")):
            assert line in home.app_env.read_text(), f"the person's line {line!r} was lost"


def test_status_and_doctor_call_a_key_of_another_session_stale_whatever_the_setting(home: UserHome) -> None:
    refreshed(home)
    other = Credentials("ASIAIOSFODNN7EXAMPLE", "secret", "token", time.time() + 3600, issued_at=time.time())
    foreign = bedrock_api_key(other, "us-east-1", time.time())
    with home.app_env.open("a") as env:
        env.write(f"{TOKEN_VARIABLE}={foreign}\n")
    refreshed(home)
    kept = read_env(home.app_env)[TOKEN_VARIABLE] == foreign
    assert kept, "a line credhelper did not write changed"
    result = home.run("status", "--json")
    (target,) = json.loads(result.stdout)[0]["targets"]
    assert target["bedrock_api_key"] == "stale"
    assert "Bedrock API key stale" in home.run("status").stdout
    doctor = home.run("doctor")
    assert any(
        line.startswith("fail") and "bedrock api key" in line and "another session" in line
        for line in doctor.stdout.splitlines()
    ), doctor.stdout


def test_a_long_term_bedrock_key_is_never_overwritten(home: UserHome) -> None:
    home.write_config(bedrock_api_key="true")
    home.app_env.write_text(AGENT0_ENV_DEFAULT + f'{TOKEN_VARIABLE}="{LONG_TERM_BEDROCK_KEY}"\n')
    before = home.snapshot()
    result = home.run("refresh")
    line = assert_one_line_failure(result, 78, str(home.app_env), TOKEN_VARIABLE, "long-term", "remove")
    assert LONG_TERM_BEDROCK_KEY[4:] not in line
    assert home.snapshot() == before, "a file changed although the refresh was refused"
    assert home.proxy.count("AssumeRole") == 0


@pytest.mark.slow(seconds=5)
def test_renewal_replaces_key_id_and_bedrock_key_together(home: UserHome) -> None:
    home.write_config(bedrock_api_key="true")
    refreshed(home)
    first = read_env(home.app_env)["AWS_ACCESS_KEY_ID"]
    mismatches: list[str] = []
    reads = 0
    done = threading.Event()

    def reader() -> None:
        nonlocal reads
        while not done.is_set():
            # Not read_env: its interpolation reads os.environ, which refreshed() swaps meanwhile.
            values = dotenv_values(home.app_env, interpolate=False)
            reads += 1
            if bedrock_key_id(str(values.get(TOKEN_VARIABLE))) != values.get("AWS_ACCESS_KEY_ID"):
                mismatches.append(f"{values.get('AWS_ACCESS_KEY_ID')} beside a key of another session")

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for _ in range(3):
            refreshed(home)
    finally:
        done.set()
        thread.join()
    last = read_env(home.app_env)
    assert last["AWS_ACCESS_KEY_ID"] != first, "refresh did not renew the session"
    assert bedrock_key_id(str(last[TOKEN_VARIABLE])) == last["AWS_ACCESS_KEY_ID"]
    assert reads > 3
    assert not mismatches, mismatches[0]


def test_node_and_python_dotenv_read_the_key_identically(home: UserHome) -> None:
    home.write_config(bedrock_api_key="true")
    refreshed(home)
    (node_values,) = node_dotenv_parse([home.app_env])
    python_values = read_env(home.app_env)
    assert node_values[TOKEN_VARIABLE] == python_values[TOKEN_VARIABLE]
    assert bedrock_key_id(node_values[TOKEN_VARIABLE]) == node_values["AWS_ACCESS_KEY_ID"]


def test_env_static_gives_the_key_only_when_enabled(home: UserHome) -> None:
    without = home.run("env", "bedrock", "--static", "--format", "json")
    assert without.returncode == 0, without.stderr
    assert TOKEN_VARIABLE not in json.loads(without.stdout)
    home.write_config(bedrock_api_key="true")
    result = home.run("env", "bedrock", "--static", "--format", "json")
    assert result.returncode == 0, result.stderr
    values = json.loads(result.stdout)
    assert bedrock_key_id(values[TOKEN_VARIABLE]) == values["AWS_ACCESS_KEY_ID"]
    assert values["AWS_ACCESS_KEY_ID"] == cached_record(home)["AccessKeyId"]
    assert home.proxy.count("AssumeRole") == 1, "the setting must not cost a new session"


def test_status_says_whether_each_targets_key_belongs_to_the_session(home: UserHome) -> None:
    home.write_config(bedrock_api_key="true")
    refreshed(home)

    def bedrock_state() -> tuple[str, str]:
        result = home.run("status", "--json")
        assert result.returncode == 0, result.stderr
        (target,) = json.loads(result.stdout)[0]["targets"]
        text = home.run("status").stdout
        return target["bedrock_api_key"], text

    state, text = bedrock_state()
    assert state == "current"
    assert "Bedrock API key current" in text
    other = Credentials("ASIAIOSFODNN7EXAMPLE", "secret", "token", time.time() + 3600, issued_at=time.time())
    stale = home.app_env.read_text().replace(
        str(read_env(home.app_env)[TOKEN_VARIABLE]), bedrock_api_key(other, "us-east-1", time.time())
    )
    home.app_env.write_text(stale)
    assert bedrock_state()[0] == "stale"
    home.app_env.write_text(AGENT0_ENV_DEFAULT)
    assert bedrock_state()[0] == "missing"


def test_status_without_the_setting_says_nothing_of_bedrock_keys(home: UserHome) -> None:
    refreshed(home)
    result = home.run("status", "--json")
    (target,) = json.loads(result.stdout)[0]["targets"]
    assert "bedrock_api_key" not in target
    assert "Bedrock API key" not in home.run("status").stdout


def test_the_env_file_is_unchanged_when_the_same_session_is_written_again(tmp_path: Path) -> None:
    """A target written again for the same session (restored after a person's edit, refreshed
    from the cache) keeps its bytes: no write, nothing for a file watcher to react to."""
    from credhelper.targets.delivery import deliver

    profile = parse(region="us-east-1", bedrock_api_key=True, env_files=[str(tmp_path / ".env")])
    (tmp_path / ".env").write_text(AGENT0_ENV_DEFAULT)
    lock_dir = tmp_path / "locks"
    lock_dir.mkdir()
    live = Credentials(
        "ASIAIOSFODNN7EXAMPLE", "secret", "token", time.time() + 3600, issued_at=time.time() - 60
    )
    first = deliver(profile, live, lock_dir, {"HOME": str(tmp_path)}, run_hook=False)
    second = deliver(profile, live, lock_dir, {"HOME": str(tmp_path)}, run_hook=False)
    assert (first.written, second.unchanged) == ([tmp_path / ".env"], [tmp_path / ".env"])


@pytest.mark.slow(seconds=5)
def test_daemon_adds_the_key_on_a_config_edit_keeps_it_still_and_renews_it_with_the_keys(
    home: UserHome,
) -> None:
    daemon = DaemonProcess(home)
    try:
        key_id = daemon.wait_written()
        home.write_config(bedrock_api_key="true")  # picked up by the config watch
        wait_for(lambda: bedrock_key_id(str(read_env(home.app_env).get(TOKEN_VARIABLE))) == key_id, 10)
        assert home.proxy.count("AssumeRole") == 1, "adding the key must not cost a new session"
        time.sleep(0.5)
        written = home.app_env.stat().st_mtime_ns
        time.sleep(3)
        assert home.app_env.stat().st_mtime_ns == written, "the daemon keeps rewriting its own key"

        daemon.signal(signal.SIGUSR1)
        wait_for(lambda: (k := daemon.env_key_id()) != key_id and k, timeout=10)
        values = read_env(home.app_env)
        assert bedrock_key_id(str(values[TOKEN_VARIABLE])) == values["AWS_ACCESS_KEY_ID"]
    finally:
        daemon.stop()
    assert str(read_env(home.app_env)[TOKEN_VARIABLE])[16:56] not in daemon.log


def test_hooks_never_inherit_a_bedrock_api_key() -> None:
    from credhelper.hooks import hook_environment

    inherited = {"PATH": "/usr/bin", TOKEN_VARIABLE: LONG_TERM_BEDROCK_KEY}
    env = hook_environment(inherited, parse(region="us-east-1", bedrock_api_key=True), SESSION)
    assert TOKEN_VARIABLE not in env
    assert env["PATH"] == "/usr/bin"


# -- exec ---------------------------------------------------------------------------------------

# Prints what the command got, the Bedrock key only as the key id it was signed with and a digest.
REPORT_BEDROCK = (
    "import hashlib, json, os; from credhelper.formats.bedrockkey import bedrock_key_id; "
    f"token = os.environ.get({TOKEN_VARIABLE!r}); "
    "print(json.dumps({'key': os.environ.get('AWS_ACCESS_KEY_ID'), "
    "'bedrock_key': bedrock_key_id(token) if token else None, "
    "'digest': hashlib.sha256(token.encode()).hexdigest() if token else None}))"
)


def exec_report(home: UserHome, *options: str) -> dict[str, Any]:
    result = home.run("exec", "bedrock", *options, "--", sys.executable, "-c", REPORT_BEDROCK)
    assert result.returncode == 0, result.stderr
    report: dict[str, Any] = json.loads(result.stdout)
    return report | {"stderr": result.stderr}


def test_plain_exec_gives_the_command_a_key_of_its_session_on_a_cold_and_a_warm_cache(
    home: UserHome,
) -> None:
    home.write_config(bedrock_api_key="true")
    home.env[TOKEN_VARIABLE] = LONG_TERM_BEDROCK_KEY  # the caller's own key must not win
    cold = exec_report(home)  # no cache yet: the full CLI
    warm = exec_report(home)  # a warm cache: the path that skips the CLI framework
    record = cached_record(home)
    assert cold["key"] == record["AccessKeyId"]
    assert cold["bedrock_key"] == record["AccessKeyId"], "the command got no key of its own session"
    assert warm == cold, "a warm cache must give the command the same credentials and key"
    assert home.proxy.count("AssumeRole") == 1
    assert cold["stderr"] == ""


def test_plain_exec_without_the_setting_gives_no_key(home: UserHome) -> None:
    home.env[TOKEN_VARIABLE] = LONG_TERM_BEDROCK_KEY
    assert exec_report(home)["digest"] is None
    assert exec_report(home)["digest"] is None  # warm cache


@pytest.mark.slow(seconds=6)
def test_exec_restart_on_refresh_brings_a_key_of_each_renewed_session(home: UserHome) -> None:
    home.write_config(bedrock_api_key="true", duration_seconds="900", refresh_before_seconds="895")
    run = Exec(home, "--restart-on-refresh", "--", *CHILD, "LOG")
    try:
        starts = run.wait_starts(2)
    finally:
        run.finish()
    assert [s["bedrock_key"] for s in starts] == [s["key"] for s in starts], "a key of another session"
    assert starts[0]["key"] != starts[1]["key"], "the restart did not renew the session"


def test_exec_endpoint_gives_no_key_and_says_so(home: UserHome) -> None:
    home.write_config(bedrock_api_key="true")
    home.env[TOKEN_VARIABLE] = LONG_TERM_BEDROCK_KEY
    report = exec_report(home, "--endpoint")
    # Set, empty: what the app's dotenv would load from the profile's .env stays out too.
    assert (report["key"], report["digest"]) == ("", None), "the endpoint serves the credentials"
    assert report["stderr"].count("\n") == 1
    assert "--endpoint gives no Bedrock API key" in report["stderr"]
    assert "--restart-on-refresh" in report["stderr"]
