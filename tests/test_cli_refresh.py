"""`refresh`, `credential-process` and `status` as users run them, against the local STS."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import AGENT0_ENV_DEFAULT, UserHome
from tests.helpers import assert_no_secret, cached_record, read_env, refreshed


def credhelper_command() -> list[str]:
    script = Path(sys.executable).parent / "credhelper"
    return [str(script)] if script.exists() else [sys.executable, "-m", "credhelper"]


def test_refresh_writes_the_env_keeping_every_other_line(home: UserHome) -> None:
    result = home.run("refresh")
    assert result.returncode == 0, result.stderr
    record = cached_record(home)
    assert "assumed-role/BedrockAccessRole/credhelper-test" in result.stdout
    assert f"{record['AccessKeyId'][:4]}…{record['AccessKeyId'][-4:]}" in result.stdout
    assert_no_secret(home, result.stdout, result.stderr)

    text = home.app_env.read_text()
    for line in AGENT0_ENV_DEFAULT.splitlines(keepends=True):
        if not line.startswith(("AWS_ACCESS_KEY_ID=", "AWS_SECRET_ACCESS_KEY=", "AWS_REGION=")):
            assert line in text
    values = read_env(home.app_env)
    assert values["AWS_ACCESS_KEY_ID"] == record["AccessKeyId"]
    assert values["AWS_SECRET_ACCESS_KEY"] == record["SecretAccessKey"]
    assert values["AWS_SESSION_TOKEN"] == record["SessionToken"]
    assert values["AWS_REGION"] == "us-east-1"
    assert values["COOKIE_SECRET"] == "change-me-to-a-long-random-string"
    assert home.proxy.count("AssumeRole") == 1


def test_refresh_keeps_the_env_mode_and_creates_new_files_0600(home: UserHome) -> None:
    os.chmod(home.app_env, 0o640)
    other = home.root / "app" / "other.env"
    home.write_config(env_files='["~/app/.env", "~/app/other.env"]')
    assert home.run("refresh").returncode == 0
    assert stat.S_IMODE(home.app_env.stat().st_mode) == 0o640
    assert stat.S_IMODE(other.stat().st_mode) == 0o600
    assert stat.S_IMODE(home.cache_dir.stat().st_mode) == 0o700
    for path in home.cache_dir.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


def test_credential_process_prints_the_exact_json_and_serves_the_cache(home: UserHome) -> None:
    first = home.run("credential-process", "bedrock")
    assert first.returncode == 0, first.stderr
    document = json.loads(first.stdout)
    assert list(document) == ["Version", "AccessKeyId", "SecretAccessKey", "SessionToken", "Expiration"]
    assert document["Version"] == 1 and isinstance(document["Version"], int)
    assert document["AccessKeyId"].startswith("ASIA")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", document["Expiration"])
    assert first.stderr == ""
    second = home.run("credential-process", "bedrock")
    assert json.loads(second.stdout) == document
    assert home.proxy.count("AssumeRole") == 1


def test_botocore_with_a_credential_process_profile_gets_the_assumed_role(home: UserHome) -> None:
    command = " ".join(credhelper_command())
    (home.root / ".aws" / "config").write_text(
        f"[profile app]\ncredential_process = {command} credential-process bedrock\n"
    )
    script = (
        "import boto3, sys; "
        "c = boto3.Session(profile_name='app').client("
        "'sts', endpoint_url=sys.argv[1], region_name='us-east-1'); "
        "print(c.get_caller_identity()['Arn'])"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, home.sts.url], env=home.env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (
        "arn:aws:sts::123456789012:assumed-role/BedrockAccessRole/credhelper-test"
    )


@pytest.mark.slow(seconds=4)
def test_24_concurrent_calls_on_a_cold_cache_make_one_assume_role(home: UserHome) -> None:
    processes = [
        subprocess.Popen(
            [*credhelper_command(), "credential-process", "bedrock"],
            env=home.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(24)
    ]
    outputs = [p.communicate(timeout=120) for p in processes]
    assert all(p.returncode == 0 for p in processes), [o[1] for o in outputs]
    key_ids = {json.loads(out)["AccessKeyId"] for out, _ in outputs}
    assert len(key_ids) == 1
    assert home.proxy.count("AssumeRole") == 1


def test_cache_is_invalidated_when_role_settings_change(home: UserHome) -> None:
    refreshed(home)  # the cache entry for the first settings
    first = cached_record(home)
    home.write_config(duration_seconds="7200")
    second = json.loads(home.run("credential-process", "bedrock").stdout)
    assert second["AccessKeyId"] != first["AccessKeyId"]
    assert home.proxy.count("AssumeRole") == 2
    home.write_config(duration_seconds="7200", env_files='["~/app/.env", "~/app/b.env"]')
    third = json.loads(home.run("credential-process", "bedrock").stdout)
    assert third == second  # targets are not role settings


@pytest.mark.slow(seconds=5)
def test_corrupt_truncated_or_foreign_cache_files_are_replaced(home: UserHome) -> None:
    good = home.run("credential-process", "bedrock")
    cache_file = home.cache_dir / "bedrock.json"
    valid = cache_file.read_text()
    for junk in [
        "",
        "{",
        valid[: len(valid) // 2],  # a JSON list in its place: test_damaged_cache
        '{"format": "other"}',
        "\x00\xff garbage",
        json.dumps({"format": "credhelper-cache/1", "fingerprint": "x", "credentials": {}}),
    ]:
        cache_file.write_text(junk)
        result = home.run("credential-process", "bedrock")
        assert result.returncode == 0, (junk, result.stderr)
        assert json.loads(result.stdout)["AccessKeyId"].startswith("ASIA")
        assert json.loads(cache_file.read_text())["format"] == "credhelper-cache/1"
    assert json.loads(good.stdout)["Version"] == 1


def test_credential_process_refreshes_when_less_than_the_handout_window_is_left(home: UserHome) -> None:
    refreshed(home)
    cache_file = home.cache_dir / "bedrock.json"
    data = json.loads(cache_file.read_text())
    data["credentials"]["Expiration"] = time.time() + 1000  # under refresh_before_seconds = 1200
    data["credentials"]["IssuedAt"] = time.time() - 2600  # an hour's session, aged (not one issued short)
    cache_file.write_text(json.dumps(data))
    result = json.loads(home.run("credential-process", "bedrock").stdout)
    assert result["AccessKeyId"] != data["credentials"]["AccessKeyId"]
    assert home.proxy.count("AssumeRole") == 2


def test_cache_hit_imports_neither_botocore_nor_click(home: UserHome) -> None:
    refreshed(home)
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "credhelper", "credential-process", "bedrock"],
        env=home.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0
    assert json.loads(result.stdout)["Version"] == 1
    imported = {line.split("|")[-1].strip() for line in result.stderr.splitlines() if "|" in line}
    assert "credhelper.fastpath" in imported
    heavy = {name for name in imported if name.split(".")[0] in ("botocore", "boto3", "click", "dotenv")}
    assert heavy == set()


def test_status_reports_from_the_cache_without_calling_sts(home: UserHome) -> None:
    missing = home.run("status")
    assert missing.returncode == 1
    assert "bedrock: missing" in missing.stdout
    refreshed(home)
    calls = sum(home.proxy.calls.values())
    result = home.run("status", "--json")
    assert result.returncode == 0, result.stderr
    (report,) = json.loads(result.stdout)
    record = cached_record(home)
    assert report["condition"] == "valid"
    assert report["assumed_role_arn"].endswith("assumed-role/BedrockAccessRole/credhelper-test")
    assert 3500 < report["seconds_left"] <= 3600
    assert report["targets"] == [{"path": "~/app/.env".replace("~", str(home.root)), "state": "current"}]
    assert report["access_key_id"] == f"{record['AccessKeyId'][:4]}…{record['AccessKeyId'][-4:]}"
    assert sum(home.proxy.calls.values()) == calls
    text = home.run("status")
    assert "valid" in text.stdout and "(current)" in text.stdout
    assert_no_secret(home, result.stdout, text.stdout)
    home.app_env.write_text(AGENT0_ENV_DEFAULT)
    assert json.loads(home.run("status", "--json").stdout)[0]["targets"][0]["state"] == "stale"


def test_debug_logging_never_shows_a_secret(home: UserHome) -> None:
    result = home.run("--log-level", "debug", "refresh")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "AssumeRole" in result.stderr  # botocore's own debug lines came through the filter
    assert_no_secret(home, result.stdout, result.stderr)
    record = cached_record(home)
    assert record["AccessKeyId"] not in result.stderr  # key ids appear only masked
    assert f"ASIA…{record['AccessKeyId'][-4:]}" in result.stderr


def test_on_refresh_hook_gets_profile_and_expiry_but_no_secret(home: UserHome) -> None:
    out = home.root / "hook.json"
    hook = (
        f'["{sys.executable}", "-c", "import json, os; json.dump(dict(os.environ), open(\'{out}\', \'w\'))"]'
    )
    home.write_config(on_refresh=hook)
    env = dict(home.env, AWS_SECRET_ACCESS_KEY="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
    result = subprocess.run(
        [sys.executable, "-m", "credhelper", "refresh"], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    seen = json.loads(out.read_text())
    record = cached_record(home)
    assert seen["CREDHELPER_PROFILE"] == "bedrock"
    assert seen["CREDHELPER_EXPIRATION"] == read_env(home.app_env)["AWS_CREDENTIAL_EXPIRATION"]
    dumped = json.dumps(seen)
    assert record["SecretAccessKey"] not in dumped and record["SessionToken"] not in dumped
    assert "AWS_SECRET_ACCESS_KEY" not in seen


def test_a_failing_hook_is_a_warning_and_refresh_still_succeeds(home: UserHome) -> None:
    home.write_config(on_refresh='["false"]')
    result = home.run("refresh")
    assert result.returncode == 0
    assert "on_refresh hook exited 1" in result.stderr
    assert "hook failed" in result.stdout


def test_symlinked_env_is_written_through(home: UserHome) -> None:
    real = home.root / "app" / "real.env"
    real.write_text("KEEP=1\n")
    home.app_env.unlink()
    home.app_env.symlink_to("real.env")
    assert home.run("refresh").returncode == 0
    assert home.app_env.is_symlink()
    values = read_env(real)
    assert values["KEEP"] == "1" and values["AWS_ACCESS_KEY_ID"] == cached_record(home)["AccessKeyId"]


def test_crlf_env_stays_crlf(home: UserHome) -> None:
    home.app_env.write_bytes(AGENT0_ENV_DEFAULT.replace("\n", "\r\n").encode())
    assert home.run("refresh").returncode == 0
    data = home.app_env.read_bytes()
    assert data.count(b"\n") == data.count(b"\r\n")
    assert data.startswith(AGENT0_ENV_DEFAULT.split("\n")[0].encode() + b"\r\n")


def test_assume_role_gets_duration_session_name_and_external_id(home: UserHome) -> None:
    home.write_config(
        duration_seconds="7200", external_id='"bedrock-ext-42"', role_session_name='"alice-laptop"'
    )
    assert home.run("refresh").returncode == 0
    (request,) = [r for r in home.proxy.requests if r["Action"] == ["AssumeRole"]]
    assert request["RoleArn"] == [home.sts.role_arn]
    assert request["DurationSeconds"] == ["7200"]
    assert request["RoleSessionName"] == ["alice-laptop"]
    assert request["ExternalId"] == ["bedrock-ext-42"]


def test_aws_endpoint_url_sts_is_honoured(home: UserHome) -> None:
    home.write_config(sts_endpoint_url="")
    env = dict(home.env, AWS_ENDPOINT_URL_STS=home.proxy.url)
    result = subprocess.run(
        [sys.executable, "-m", "credhelper", "credential-process", "bedrock"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert home.proxy.count("AssumeRole") == 1
