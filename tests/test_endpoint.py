"""The loopback container-credentials endpoint, and the credentials-file target."""

from __future__ import annotations

import contextlib
import http.client
import json
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import UserHome
from tests.daemonproc import DaemonProcess, wait_for
from tests.helpers import assert_no_secret, assert_one_line_failure
from tests.nodecheck import NODE_DIR
from tests.stsproxy import Fault

ASSUMED = "arn:aws:sts::123456789012:assumed-role/BedrockAccessRole/credhelper-test"


@contextlib.contextmanager
def serving(home: UserHome, tmp_path: Path) -> Iterator[tuple[DaemonProcess, dict[str, str]]]:
    """`credhelper run --serve` on a free port, and what `credhelper env` says to use it."""
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700, exist_ok=True)
    home.env["XDG_RUNTIME_DIR"] = str(runtime)
    daemon = DaemonProcess(home, "--serve", "127.0.0.1:0")
    try:
        daemon.wait_running()
        result = home.run("env", "bedrock", "--format", "json")
        assert result.returncode == 0, result.stderr
        yield daemon, json.loads(result.stdout)
    finally:
        daemon.stop()
        assert_no_secret(home, daemon.log)


@pytest.fixture
def served(home: UserHome, tmp_path: Path) -> Iterator[tuple[DaemonProcess, dict[str, str]]]:
    with serving(home, tmp_path) as running:
        yield running


def endpoint_of(variables: dict[str, str]) -> tuple[str, str]:
    """The URL and token an SDK would use, from what `credhelper env` printed."""
    return (
        variables["AWS_CONTAINER_CREDENTIALS_FULL_URI"],
        Path(variables["AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"]).read_text(),
    )


def get(url: str, headers: dict[str, str]) -> tuple[int, dict[str, str]]:
    host, port = url.split("//")[1].split("/")[0].rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    connection.request("GET", "/" + url.split("//")[1].split("/", 1)[1], headers=headers)
    response = connection.getresponse()
    body = json.loads(response.read() or b"{}")
    connection.close()
    return response.status, body


def test_env_prints_what_an_app_needs(home: UserHome, served: tuple[DaemonProcess, dict[str, str]]) -> None:
    _, variables = served
    assert variables["AWS_CONTAINER_CREDENTIALS_FULL_URI"].startswith("http://127.0.0.1:")
    assert variables["AWS_CONTAINER_CREDENTIALS_FULL_URI"].endswith("/v1/credentials/bedrock")
    token_file = Path(variables["AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"])
    assert token_file.stat().st_mode & 0o777 == 0o600
    assert len(token_file.read_text()) >= 32
    # botocore reads only AWS_DEFAULT_REGION, other SDKs AWS_REGION
    assert variables["AWS_REGION"] == variables["AWS_DEFAULT_REGION"] == "us-east-1"
    sh = home.run("env", "bedrock").stdout
    assert sh.startswith("export AWS_CONTAINER_CREDENTIALS_FULL_URI=")
    assert "export AWS_REGION=us-east-1\n" in sh and "export AWS_DEFAULT_REGION=us-east-1" in sh
    static = home.run("env", "bedrock", "--static", "--format", "dotenv")
    assert static.returncode == 0
    assert "AWS_SESSION_TOKEN=" in static.stdout and "AWS_ACCESS_KEY_ID=ASIA" in static.stdout
    assert "AWS_REGION=us-east-1\n" in static.stdout and "AWS_DEFAULT_REGION=us-east-1" in static.stdout
    static_json = json.loads(home.run("env", "bedrock", "--static", "--format", "json").stdout)
    assert static_json["AWS_REGION"] == static_json["AWS_DEFAULT_REGION"] == "us-east-1"
    assert_no_secret(home, sh)


def test_botocore_container_provider_gets_the_assumed_role(
    home: UserHome, served: tuple[DaemonProcess, dict[str, str]]
) -> None:
    _, variables = served
    script = (
        "import boto3, sys; "
        "print(boto3.client('sts', endpoint_url=sys.argv[1], region_name='us-east-1')"
        ".get_caller_identity()['Arn'])"
    )
    env = dict(home.env, **variables)
    result = subprocess.run(
        [sys.executable, "-c", script, home.sts.url], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ASSUMED


def test_js_sdk_v3_gets_the_assumed_role(
    home: UserHome, served: tuple[DaemonProcess, dict[str, str]]
) -> None:
    _, variables = served
    node = shutil.which("node")
    assert node and (NODE_DIR / "node_modules" / "@aws-sdk" / "client-sts").is_dir(), "run `sh dev test`"
    result = subprocess.run(
        [node, str(NODE_DIR / "caller-identity.js"), home.sts.url],
        env=dict(home.env, **variables),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == ASSUMED


def test_token_host_and_path_are_checked(
    home: UserHome, served: tuple[DaemonProcess, dict[str, str]]
) -> None:
    _, variables = served
    url, token = endpoint_of(variables)
    assert get(url, {})[0] == 401
    assert get(url, {"Authorization": token[:-1] + ("x" if token[-1] != "x" else "y")})[0] == 403
    status, _ = get(url, {"Authorization": token, "Host": "attacker.example:80"})
    assert status == 421
    assert get(url.replace("/bedrock", "/nobody"), {"Authorization": token})[0] == 404
    status, body = get(url, {"Authorization": token})
    assert status == 200
    assert set(body) == {"AccessKeyId", "SecretAccessKey", "Token", "Expiration"}
    assert body["AccessKeyId"].startswith("ASIA") and body["Expiration"].endswith("Z")


def test_200_requests_from_20_threads_on_a_cold_cache_make_one_sts_call(
    home: UserHome, served: tuple[DaemonProcess, dict[str, str]]
) -> None:
    _, variables = served
    url, token = endpoint_of(variables)
    statuses: list[int] = []
    keys: set[str] = set()
    lock = threading.Lock()

    def client() -> None:
        for _ in range(10):
            status, body = get(url, {"Authorization": token})
            with lock:
                statuses.append(status)
                keys.add(body.get("AccessKeyId", ""))

    threads = [threading.Thread(target=client) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [200] * 200
    assert len(keys) == 1
    assert home.proxy.count("AssumeRole") == 1


def test_no_credentials_is_503_with_a_json_error(home: UserHome, tmp_path: Path) -> None:
    home.proxy.add_fault(Fault("code", action="AssumeRole", code="AccessDenied", status=403))
    with serving(home, tmp_path) as (_, variables):
        url, token = endpoint_of(variables)
        status, body = get(url, {"Authorization": token})
    assert status == 503
    assert "denied" in body["error"]


def test_a_non_loopback_serve_address_is_a_config_error(home: UserHome) -> None:
    for address in ("0.0.0.0:9911", "192.0.2.1:9911", "example.com:80", "127.0.0.1"):
        result = home.run("run", "--serve", address, timeout=30)
        assert_one_line_failure(result, 78, "loopback")
    home.write_config(extra='\n[daemon]\nserve = "0.0.0.0:9911"\n')
    assert_one_line_failure(home.run("run", timeout=30), 78, "loopback", "[daemon] serve")


def test_env_without_a_running_endpoint_says_how_to_start_it(home: UserHome) -> None:
    assert_one_line_failure(home.run("env", "bedrock"), 1, "credhelper run --serve")


def test_env_refuses_the_endpoint_a_killed_daemon_left(home: UserHome, tmp_path: Path) -> None:
    with serving(home, tmp_path) as (daemon, variables):
        token_file = Path(variables["AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"])
        old_token = token_file.read_text()
        daemon.signal(signal.SIGKILL)
        daemon.process.wait(10)
        # Its port is free for anyone to bind: an app sent there would hand over the token.
        assert_one_line_failure(home.run("env", "bedrock"), 1, "no credentials endpoint is running")
    plain = DaemonProcess(home)  # a daemon without the endpoint holds the lock: still refused
    try:
        plain.wait_running()
        assert_one_line_failure(home.run("env", "bedrock"), 1, "no credentials endpoint is running")
        assert not token_file.exists()  # the killed daemon's token is gone
    finally:
        plain.stop()
    with serving(home, tmp_path) as (_, variables):
        new_token = Path(variables["AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"]).read_text()
        assert new_token != old_token
        assert get(variables["AWS_CONTAINER_CREDENTIALS_FULL_URI"], {"Authorization": new_token})[0] == 200


def test_the_token_file_goes_when_the_daemon_stops(home: UserHome, tmp_path: Path) -> None:
    with serving(home, tmp_path) as (daemon, variables):
        token_file = Path(variables["AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"])
        assert token_file.exists()
        assert daemon.stop() == 0
    assert not token_file.exists()
    assert not (token_file.parent / "endpoint.json").exists()
    assert_one_line_failure(home.run("env", "bedrock"), 1, "no credentials endpoint is running")


CREDENTIALS_WITH_FIVE_SECTIONS = """\
# shared credentials: five sections, comments, odd spacing
[default]
aws_access_key_id = AKIAIOSFODNN7EXAMPLE
aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY

; work account
[work]
aws_access_key_id=AKIAI44QH8DHBEXAMPLE
aws_secret_access_key=je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY
[bedrock]
# the section credhelper manages
aws_access_key_id = ASIAOLDOLDOLDEXAMPLE
region = us-east-1

[sso-user]
   aws_access_key_id = AKIAIOSFODNN7EXAMPLE
   aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY
[last]
x = 1"""


def test_credentials_file_target_keeps_every_byte_outside_its_section(home: UserHome) -> None:
    target = home.root / ".aws" / "shared-by-apps"
    target.write_text(CREDENTIALS_WITH_FIVE_SECTIONS)
    home.write_config(credentials_files='[{path = "~/.aws/shared-by-apps", profile = "bedrock"}]')
    result = home.run("refresh")
    assert result.returncode == 0, result.stderr
    record = json.loads((home.cache_dir / "bedrock.json").read_text())["credentials"]
    text = target.read_text()
    before = CREDENTIALS_WITH_FIVE_SECTIONS.partition("[bedrock]\n")[0]
    assert text.startswith(before + "[bedrock]\n# the section credhelper manages\n")
    assert text.endswith("\n[sso-user]" + CREDENTIALS_WITH_FIVE_SECTIONS.split("[sso-user]")[1])
    section = text.split("[bedrock]\n")[1].split("[sso-user]")[0]
    assert f"aws_access_key_id = {record['AccessKeyId']}\n" in section
    assert f"aws_secret_access_key = {record['SecretAccessKey']}\n" in section
    assert f"aws_session_token = {record['SessionToken']}\n" in section
    assert "region = us-east-1\n" in section
    status = json.loads(home.run("status", "--json").stdout)[0]
    assert {"path": f"{target} [bedrock]", "state": "current"} in status["targets"]
    # botocore reads the section as a profile
    script = "import botocore.session as s; print(s.Session(profile='bedrock').get_credentials().access_key)"
    env = dict(home.env, AWS_SHARED_CREDENTIALS_FILE=str(target))
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == record["AccessKeyId"]


def test_credentials_file_section_with_a_long_term_key_is_never_overwritten(home: UserHome) -> None:
    target = home.root / ".aws" / "shared-by-apps"
    target.write_text(CREDENTIALS_WITH_FIVE_SECTIONS)
    home.write_config(credentials_files='[{path = "~/.aws/shared-by-apps", profile = "work"}]')
    result = home.run("refresh")
    assert_one_line_failure(result, 78, "[work] holds a long-term access key")
    assert target.read_text() == CREDENTIALS_WITH_FIVE_SECTIONS
    assert home.proxy.count("AssumeRole") == 0  # refused before any STS call


def test_daemon_restores_a_credentials_file_section(home: UserHome) -> None:
    target = home.root / ".aws" / "shared-by-apps"
    target.write_text(CREDENTIALS_WITH_FIVE_SECTIONS)
    home.write_config(credentials_files='[{path = "~/.aws/shared-by-apps", profile = "bedrock"}]')
    daemon = DaemonProcess(home)
    try:
        key_id = daemon.wait_written()
        wait_for(lambda: key_id in target.read_text(), timeout=5)
        target.write_text(CREDENTIALS_WITH_FIVE_SECTIONS)
        wait_for(lambda: key_id in target.read_text(), timeout=1.0, interval=0.01)
        assert home.proxy.count("AssumeRole") == 1
    finally:
        daemon.stop()


def test_env_hands_out_the_daemons_endpoint_only_for_the_sts_endpoint_this_shell_chooses(
    home: UserHome, tmp_path: Path
) -> None:
    """Credentials are cached for where they came from (profile.resolve_sts_endpoint): `env` in a
    shell whose AWS_ENDPOINT_URL_STS / AWS_ENDPOINT_URL choose another STS than the daemon's would
    point its apps at credentials of the wrong one."""
    home.write_config(sts_endpoint_url="")  # the variables choose
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    home.env["XDG_RUNTIME_DIR"] = str(runtime)
    daemon = DaemonProcess(
        home, "--serve", "127.0.0.1:0", env=dict(home.env, AWS_ENDPOINT_URL_STS=home.proxy.url)
    )
    try:
        daemon.wait_running()
        for variable in ("AWS_ENDPOINT_URL_STS", "AWS_ENDPOINT_URL"):  # either way, the daemon's STS
            same = home.run("env", "bedrock", **{variable: home.proxy.url})
            assert same.returncode == 0, same.stderr
            assert "AWS_CONTAINER_CREDENTIALS_FULL_URI=http://127.0.0.1:" in same.stdout

        other = home.run("env", "bedrock", AWS_ENDPOINT_URL_STS=home.sts.url)
        regional = home.run("env", "bedrock")
    finally:
        daemon.stop()
    assert_one_line_failure(other, 1, home.proxy.url, home.sts.url, "$AWS_ENDPOINT_URL_STS", "--static")
    assert_one_line_failure(regional, 1, "https://sts.us-east-1.amazonaws.com", "region's default")
    assert "AWS_CONTAINER" not in other.stdout + regional.stdout
