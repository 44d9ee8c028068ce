"""`credhelper exec`: a command run on credentials that never go stale (real processes, real STS)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from credhelper.appexec.environment import child_environment
from credhelper.appexec.renewal import renewal_failure_message, supervised_renewal_time
from credhelper.appexec.supervisor import exit_status, wait_limit
from credhelper.credentials import Credentials
from credhelper.errors import AwsRefusedError, StsUnavailableError
from credhelper.profile import Profile
from credhelper.schedule import WAKE_CHECK_SECONDS, Deadline
from tests import forkserver
from tests.conftest import UserHome
from tests.daemonproc import DaemonProcess, wait_for
from tests.helpers import (
    assert_no_secret,
    assert_one_line_failure,
    cached_record,
    in_process,
    read_env,
    refreshed,
)
from tests.nodecheck import NODE_DIR
from tests.stsproxy import Fault

CHILD = [sys.executable, str(Path(__file__).resolve().parent / "execchild.py")]
ASSUMED = "arn:aws:sts::123456789012:assumed-role/BedrockAccessRole/credhelper-test"
# Renewal about 5 s after each refresh: the shortest real schedule STS allows (900 s sessions).
FAST_RENEWAL = {"duration_seconds": "900", "refresh_before_seconds": "895"}
HOOK = 'on_refresh = ["sh", "-c", "touch \\"$HOME/hook-ran\\""]\n'


# Every session a test started (each exec runs in a session of its own, and so do its commands,
# however they were started); whatever still runs in one when the test ends is killed.
SESSIONS: set[int] = set()


def _session_of(pid: int) -> int | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return int(fields[3]) if fields[0] != "Z" else None


def _has_home(pid: int, home: bytes | None) -> bool:
    if home is None:
        return False
    try:
        return home in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return False


def _left_in(sessions: set[int], home: bytes | None) -> list[int]:
    pids = [int(name) for name in os.listdir("/proc") if name.isdigit() and int(name) != os.getpid()]
    return [pid for pid in pids if _session_of(pid) in sessions or _has_home(pid, home)]


@pytest.fixture(autouse=True)
def no_process_left_behind(request: pytest.FixtureRequest) -> Iterator[None]:
    """Kills whatever a test's execs and their commands left running, whatever happened: every
    process in a session a test started (forked ones too: they show the fork server's
    environment), and every process running with the test's HOME."""
    SESSIONS.clear()
    forkserver.FORKED.clear()
    home = None
    if "home" in request.fixturenames:
        home = f"HOME={request.getfixturevalue('home').root}".encode()
    yield
    SESSIONS.update(forkserver.FORKED)
    for _ in range(50):
        left = _left_in(SESSIONS, home)
        if not left:
            break
        for pid in left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.1)
    SESSIONS.clear()


def started(process: subprocess.Popen[Any]) -> subprocess.Popen[Any]:
    """`process` (started with start_new_session) and everything it starts: killed at the end."""
    SESSIONS.add(process.pid)
    return process


class Exec:
    """`credhelper exec bedrock ARGS...` running in the background, its child recording to a log."""

    def __init__(self, home: UserHome, *args: str) -> None:
        """`LOG` among `args` stands for the file the child records to."""
        self.home = home
        self.log = home.root.parent / f"child-{time.monotonic_ns()}.jsonl"
        self.stderr_path = home.root.parent / f"exec-{time.monotonic_ns()}.err"
        argv = [str(self.log) if arg == "LOG" else arg for arg in args]
        with self.stderr_path.open("w") as stderr:
            self.process = started(
                subprocess.Popen(
                    [sys.executable, "-m", "credhelper", "exec", "bedrock", *argv],
                    env=home.env,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=stderr,
                    cwd=home.root,
                    start_new_session=True,
                )
            )

    def events(self) -> list[dict[str, Any]]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines()]

    def starts(self) -> list[dict[str, Any]]:
        return [e for e in self.events() if e.get("event", "start") == "start"]

    def wait_starts(self, count: int, timeout: float = 40) -> list[dict[str, Any]]:
        wait_for(lambda: len(self.starts()) >= count or self.process.poll() is not None, timeout)
        starts = self.starts()
        assert len(starts) >= count, (
            f"exec ended ({self.process.poll()}) after {len(starts)} start(s): {self.stderr}"
        )
        return starts

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text()

    def finish(self, signum: int = signal.SIGTERM, timeout: float = 20) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signum)
        try:
            return self.process.wait(timeout)
        finally:
            if self.process.poll() is None:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
            assert_no_secret(self.home, self.stderr)


def digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


REPORT_ENV = (
    "import hashlib, json, os, sys; "
    "h = lambda v: hashlib.sha256(v.encode()).hexdigest() if v else None; "
    "env = {k: v for k, v in os.environ.items() if k.startswith('AWS_')}; "
    "env['AWS_SECRET_ACCESS_KEY'] = h(env.get('AWS_SECRET_ACCESS_KEY')); "
    "env['AWS_SESSION_TOKEN'] = h(env.get('AWS_SESSION_TOKEN')); "
    "print(json.dumps({'env': env, 'argv': sys.argv[1:], 'pid': os.getpid()}))"
)


# -- plain mode ------------------------------------------------------------------------------


def test_plain_exec_gives_the_command_the_role_credentials_and_removes_what_would_win(home: UserHome) -> None:
    home.write_config(HOOK)
    env_before = home.app_env.read_bytes()
    home.env.update(
        AWS_PROFILE="elsewhere",
        AWS_DEFAULT_PROFILE="elsewhere",
        AWS_CONTAINER_CREDENTIALS_FULL_URI="http://127.0.0.1:1/x",
        AWS_CONTAINER_AUTHORIZATION_TOKEN="stale",
        AWS_WEB_IDENTITY_TOKEN_FILE="/nonexistent",
        AWS_ROLE_ARN="arn:aws:iam::123456789012:role/Other",
        AWS_ACCESS_KEY_ID="AKIAIOSFODNN7EXAMPLE",
        AWS_REGION="eu-west-1",
    )
    result = home.run("exec", "bedrock", "--", sys.executable, "-c", REPORT_ENV, "--flag", "two words")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    report = json.loads(result.stdout)
    record = cached_record(home)
    assert report["argv"] == ["--flag", "two words"], "the command's arguments must arrive unchanged"
    assert report["env"] == {
        "AWS_ACCESS_KEY_ID": record["AccessKeyId"],
        "AWS_SECRET_ACCESS_KEY": digest(record["SecretAccessKey"]),
        "AWS_SESSION_TOKEN": digest(record["SessionToken"]),
        "AWS_CREDENTIAL_EXPIRATION": Credentials.from_record(record, time.time()).expiration_text,
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
    }, "the command must get the role's credentials and none of the variables that would win over them"
    assert record["AccessKeyId"].startswith("ASIA")
    warm = home.run("exec", "bedrock", "--", sys.executable, "-c", REPORT_ENV, "--flag", "two words")
    assert json.loads(warm.stdout)["env"] == report["env"], "a warm cache must give the command the same"
    assert home.proxy.count("AssumeRole") == 1
    assert record["Expiration"] - time.time() > 840, "exec must hand out at least the handout window"
    assert home.app_env.read_bytes() == env_before, "exec must not touch the profile's .env"
    assert not (home.root / "hook-ran").exists(), "exec must not run on_refresh hooks"


def test_plain_exec_becomes_the_command(home: UserHome) -> None:
    """Signals, the terminal and the exit status are the command's own: it is the same process."""
    run = Exec(home, "--", *CHILD, "LOG")
    (start,) = run.wait_starts(1, timeout=30)
    assert start["pid"] == run.process.pid, "plain exec must replace itself with the command"
    assert run.finish() == -signal.SIGTERM, "a signal to exec's pid must reach the command itself"
    assert _signals(run) == ["SIGTERM"]


def test_ten_concurrent_execs_on_a_cold_cache_make_one_sts_call(home: UserHome) -> None:
    processes = [
        started(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "credhelper",
                    "exec",
                    "bedrock",
                    "--",
                    "printenv",
                    "AWS_ACCESS_KEY_ID",
                ],
                env=home.env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                cwd=home.root,
                start_new_session=True,
            )
        )
        for _ in range(10)
    ]
    outputs = [p.communicate(timeout=60) for p in processes]
    assert [p.returncode for p in processes] == [0] * 10, [err for _, err in outputs]
    assert len({out for out, _ in outputs}) == 1, "every exec must get the one cached set"
    assert home.proxy.count("AssumeRole") == 1
    result = home.run("credential-process", "bedrock")
    assert result.returncode == 0
    assert home.proxy.count("AssumeRole") == 1, "credential-process must share exec's cache"


# -- exit status -----------------------------------------------------------------------------

MODES = [pytest.param([], id="plain"), pytest.param(["--restart-on-refresh"], id="restart")]


@pytest.mark.parametrize("mode", MODES)
def test_exit_status_is_the_commands_own(home: UserHome, mode: list[str]) -> None:
    assert home.run("exec", "bedrock", *mode, "--", *CHILD, "LOG", "--exit", "3").returncode == 3
    killed = home.run("exec", "bedrock", *mode, "--", "sh", "-c", "kill -KILL $$")
    # What the user's shell shows: in plain mode the command is exec's own process.
    assert killed.returncode in ((-signal.SIGKILL,) if not mode else (128 + signal.SIGKILL,))
    missing = home.run("exec", "bedrock", *mode, "--", "no-such-command-anywhere")
    assert_one_line_failure(missing, 127, "no-such-command-anywhere", "not found")
    not_executable = home.root / "script.sh"
    not_executable.write_text("#!/bin/sh\necho hi\n")
    refused = home.run("exec", "bedrock", *mode, "--", str(not_executable))
    assert_one_line_failure(refused, 126, "script.sh")


def test_usage_and_configuration_errors_come_before_the_command_runs(home: UserHome) -> None:
    marker = home.root / "ran"
    command = ["--", "touch", str(marker)]
    no_command = home.run("exec", "bedrock")
    assert no_command.returncode == 2 and "missing COMMAND" in no_command.stderr
    assert home.run("exec", "bedrock", "--grace", "3", *command).returncode == 2
    assert_one_line_failure(home.run("exec", "nosuch", *command), 78, "nosuch")
    home.proxy.add_fault(Fault("code", action="AssumeRole"))
    assert_one_line_failure(home.run("exec", "bedrock", "--restart-on-refresh", *command), 77)
    assert not marker.exists(), "the command must never run when credhelper fails first"


@pytest.mark.parametrize("mode", MODES)
def test_binary_stdin_reaches_stdout_byte_exact(home: UserHome, mode: list[str]) -> None:
    payload = random.Random(7).randbytes(1024 * 1024)
    result = subprocess.run(
        [sys.executable, "-m", "credhelper", "exec", "bedrock", *mode, "--", *CHILD, "LOG", "--cat"],
        env=home.env,
        input=payload,
        capture_output=True,
        timeout=60,
        cwd=home.root,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == payload, "stdin must reach the command and its stdout come back unchanged"


# -- supervising: signals, restarts ----------------------------------------------------------


def test_signals_are_passed_on_and_sigterm_ends_exec_with_the_commands_status(home: UserHome) -> None:
    run = Exec(home, "--restart-on-refresh", "--", *CHILD, "LOG")
    (start,) = run.wait_starts(1, timeout=30)
    assert start["pid"] != run.process.pid and start["pgid"] == start["pid"]
    argvs = [Path(f"/proc/{pid}/cmdline").read_text() for pid in (run.process.pid, start["pid"])]
    assert_no_secret(home, *argvs)
    sent = ["SIGUSR1", "SIGUSR2", "SIGWINCH", "SIGHUP", "SIGINT", "SIGQUIT"]
    for name in sent:
        run.process.send_signal(getattr(signal, name))
        wait_for(lambda name=name: name in _signals(run), 10)
    assert _signals(run) == sent, "each signal must reach the command exactly once"
    assert run.finish() == 128 + signal.SIGTERM
    assert _signals(run)[-1] == "SIGTERM"


@pytest.mark.slow(seconds=16)
def test_restart_on_refresh_restarts_the_whole_group_onto_new_credentials(home: UserHome) -> None:
    home.write_config(HOOK, **FAST_RENEWAL)
    env_before = home.app_env.read_bytes()
    warm_up = in_process(home, "credential-process", "bedrock")  # the cache alone: no target, no hook
    assert warm_up.returncode == 0, warm_up.stderr
    warm = cached_record(home)
    time.sleep(max(0.0, warm["Expiration"] - 895 - time.time()))  # the cached set is now due
    run = Exec(home, "--restart-on-refresh", "--", *CHILD, "LOG", "--grandchild")
    run.wait_starts(1)
    run.process.send_signal(signal.SIGHUP)  # many apps reload on it: it must not end the restarts
    starts = run.wait_starts(3)
    assert starts[0]["key"] != warm["AccessKeyId"], "a due cached set is renewed before the first start"
    assert len({s["key"] for s in starts}) == len(starts), "each restart must bring a new key"
    assert len({s["pid"] for s in starts}) == len(starts)
    for start in starts:
        assert start["still_alive"] == [], "the old command and its children must be gone before it restarts"
    assert all(s["key"].startswith("ASIA") for s in starts)
    exits = [e["pid"] for e in run.events() if e.get("event") == "exit"]
    assert exits[: len(starts) - 1] == [s["pid"] for s in starts[:-1]], "each old command got SIGTERM first"
    assert run.finish() == 128 + signal.SIGTERM
    assert _messages(run) == []
    assert home.app_env.read_bytes() == env_before, "exec must not touch the profile's .env"
    assert not (home.root / "hook-ran").exists(), "exec must not run on_refresh hooks"


@pytest.mark.slow(seconds=7)
def test_a_command_ignoring_sigterm_is_killed_after_the_grace(home: UserHome) -> None:
    home.write_config(**FAST_RENEWAL)
    run = Exec(home, "--restart-on-refresh", "--grace", "1", "--", *CHILD, "LOG", "--ignore-term")
    first, second = run.wait_starts(2)[:2]
    asked = [e for e in run.events() if e.get("event") == "signal" and e["pid"] == first["pid"]]
    assert [e["signal"] for e in asked] == ["SIGTERM"]
    assert second["still_alive"] == [], "the stubborn command must be killed before the new one starts"
    assert second["time"] - asked[0]["time"] >= 0.9, "the command must get its grace period"
    assert run.finish(signal.SIGKILL) == -signal.SIGKILL


def test_a_killed_exec_does_not_leave_its_command_running(home: UserHome) -> None:
    run = Exec(home, "--restart-on-refresh", "--", *CHILD, "LOG")
    (start,) = run.wait_starts(1)

    os.kill(run.process.pid, signal.SIGKILL)  # not its group: nothing but exec itself ends
    run.process.wait(20)

    wait_for(lambda: "SIGTERM" in _signals(run), 20)
    wait_for(lambda: _session_of(start["pid"]) is None, 20)


def _alive(pid: int) -> bool:
    return _session_of(pid) is not None  # neither gone nor a zombie


def _ends_within(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while _alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _parent_of(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def _children_of(pid: int) -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit() and _parent_of(int(name)) == pid]


def _running_in_session(session: int, argv: list[str]) -> list[int]:
    """The live processes of `session` running exactly `argv`."""
    wanted = "\0".join(argv).encode() + b"\0"
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit() and _session_of(int(name)) == session:
            with contextlib.suppress(OSError):
                if Path(f"/proc/{name}/cmdline").read_bytes() == wanted:
                    found.append(int(name))
    return found


def _holds(pid: int, variable: str) -> bool:
    """Whether the process has `variable` set, non-empty, in its environment (its value unread)."""
    prefix = variable.encode() + b"="
    entries = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return any(entry.startswith(prefix) and len(entry) > len(prefix) for entry in entries)


@pytest.mark.parametrize(
    ("mode", "script", "secret"),
    [
        pytest.param(["--restart-on-refresh"], "sleep 77; echo", "AWS_SESSION_TOKEN", id="restart"),
        pytest.param(["--endpoint"], "sleep 77; echo", "AWS_CONTAINER_AUTHORIZATION_TOKEN", id="endpoint"),
        pytest.param(
            ["--restart-on-refresh", "--grace", "1"],
            "trap '' TERM; sleep 77; echo",
            "AWS_SESSION_TOKEN",
            id="restart-sigterm-ignored",
        ),
    ],
)
def test_a_sigkilled_exec_leaves_no_process_of_its_command_running(
    home: UserHome, mode: list[str], script: str, secret: str
) -> None:
    """The parent-death signal reaches the command itself; its children (here the `sleep` of
    `sh -c`) hold the credentials too, and must end with exec all the same."""
    run = Exec(home, *mode, "--", "sh", "-c", script)
    (grandchild,) = wait_for(lambda: _running_in_session(run.process.pid, ["sleep", "77"]), 30)
    assert _holds(grandchild, secret), "the command's child holds credentials in its environment"
    helpers = _children_of(run.process.pid)  # the command, and whatever exec started beside it
    os.kill(run.process.pid, signal.SIGKILL)
    run.process.wait(10)
    assert _ends_within(grandchild, 20), "a SIGKILLed exec left its command's child running (and its secret)"
    assert all(_ends_within(pid, 20) for pid in helpers), "what exec started beside the command must end too"


def test_what_the_command_leaves_running_ends_with_exec(home: UserHome) -> None:
    result = home.run(
        "exec", "bedrock", "--restart-on-refresh", "--", "sh", "-c", "sleep 77 >/dev/null 2>&1 & echo $!"
    )
    assert result.returncode == 0, result.stderr
    background = int(result.stdout)
    assert _ends_within(background, 20), "a process the command left in its group outlived exec"


@pytest.mark.slow(seconds=5)
@pytest.mark.parametrize("ending", ["signal-to-exec", "command-exits"])
def test_a_renewal_waiting_on_a_hanging_sts_delays_no_signal_and_no_exit(home: UserHome, ending: str) -> None:
    """STS hangs: the renewal waits out botocore's timeouts and retries (about a minute). Signals
    must reach the command meanwhile, and exec must exit as soon as the command has."""
    home.write_config(**FAST_RENEWAL)
    run = Exec(home, "--restart-on-refresh", "--", *CHILD, "LOG")
    (start,) = run.wait_starts(1)
    home.proxy.add_fault(Fault("delay", action="AssumeRole", seconds=300))
    wait_for(lambda: home.proxy.in_flight > 0, 40)  # the renewal now waits on STS
    if ending == "signal-to-exec":
        for name in ("SIGHUP", "SIGINT"):  # passed on; the command carries on
            run.process.send_signal(getattr(signal, name))
            wait_for(lambda name=name: name in _signals(run), 5)
        run.process.send_signal(signal.SIGTERM)
    else:
        os.kill(start["pid"], signal.SIGTERM)  # the command ends on its own
    sent = time.monotonic()
    with contextlib.suppress(subprocess.TimeoutExpired):
        run.process.wait(10)
    took = time.monotonic() - sent
    assert run.process.poll() == 128 + signal.SIGTERM, (
        f"exec was still running {took:.0f} s after its command ended, waiting for STS"
    )
    assert _signals(run)[-1] == "SIGTERM"
    assert home.proxy.count("AssumeRole") >= 2, "the renewal had started"
    assert_no_secret(home, run.stderr)


@pytest.mark.slow(seconds=6)
def test_sigterm_while_the_renewal_before_the_start_hangs_ends_exec_at_once(home: UserHome) -> None:
    home.write_config(**FAST_RENEWAL)
    warm_up = in_process(home, "credential-process", "bedrock")  # the cache alone: no target, no hook
    assert warm_up.returncode == 0, warm_up.stderr
    warm = cached_record(home)
    time.sleep(max(0.0, warm["Expiration"] - 895 - time.time()))  # the cached set is now due
    home.proxy.add_fault(Fault("delay", action="AssumeRole", seconds=300))
    run = Exec(home, "--restart-on-refresh", "--", *CHILD, "LOG")
    wait_for(lambda: home.proxy.in_flight > 0, 40)  # renewed before the command starts: STS hangs
    run.process.send_signal(signal.SIGTERM)
    sent = time.monotonic()
    with contextlib.suppress(subprocess.TimeoutExpired):
        run.process.wait(10)
    took = time.monotonic() - sent
    assert run.process.poll() == 128 + signal.SIGTERM, f"exec was still running {took:.0f} s after SIGTERM"
    assert run.starts() == [], "a command asked to end before it started must not start"
    assert_no_secret(home, run.stderr)


@pytest.mark.slow(seconds=12)
def test_a_failed_renewal_keeps_the_command_running_until_sts_is_back(home: UserHome) -> None:
    home.write_config(**FAST_RENEWAL)
    run = Exec(home, "--restart-on-refresh", "--", *CHILD, "LOG")
    (first,) = run.wait_starts(1)
    home.proxy.add_fault(Fault("code", action="AssumeRole"))  # AccessDenied: not retried within a renewal
    wait_for(lambda: home.proxy.count("AssumeRole") >= 3, 60)  # the first call, then two failed renewals
    assert [s["pid"] for s in run.starts()] == [first["pid"]], "a failed renewal must not restart the command"
    assert run.process.poll() is None
    home.proxy.clear_faults()
    second = run.wait_starts(2)[1]
    assert second["key"] != first["key"], "once STS answers, the command restarts on a new key"
    assert run.finish() == 128 + signal.SIGTERM
    assert _messages(run) == [], "no message while the command's credentials are still valid"


@pytest.mark.slow(seconds=6)
def test_a_node_app_sees_the_new_key_after_a_restart(home: UserHome) -> None:
    home.write_config(**FAST_RENEWAL)
    script = str(NODE_DIR / "exec-child.js")
    run = Exec(home, "--restart-on-refresh", "--", "node", script, "LOG")
    first, second = run.wait_starts(2)[:2]
    record = cached_record(home)
    assert first["key"] != second["key"]
    assert second["key"] == record["AccessKeyId"], "the restarted app must use the renewed credentials"
    assert run.finish() == 0


BOTOCORE_CALLER = (
    "import json, os, sys, botocore.session; "
    "client = botocore.session.get_session().create_client('sts', endpoint_url=sys.argv[1]); "
    "print(json.dumps({'arn': client.get_caller_identity()['Arn'], "
    "'url': os.environ['AWS_CONTAINER_CREDENTIALS_FULL_URI'], "
    "'static': sorted(k for k in os.environ if os.environ[k] and k in "
    "('AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN')), "
    "'token_file': 'AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE' in os.environ}))"
)


def test_endpoint_serves_botocore_and_the_js_sdk_for_as_long_as_the_command_runs(home: UserHome) -> None:
    home.env.update(AWS_ACCESS_KEY_ID="AKIAIOSFODNN7EXAMPLE", AWS_PROFILE="elsewhere")
    result = home.run(
        "exec", "bedrock", "--endpoint", "--", sys.executable, "-c", BOTOCORE_CALLER, home.proxy.url
    )
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    assert seen["arn"] == ASSUMED, "botocore must get the role's identity from exec's endpoint"
    assert seen["static"] == [], "no static credentials in the command's environment under --endpoint"
    assert not seen["token_file"], "the token comes in AWS_CONTAINER_AUTHORIZATION_TOKEN only"
    assert seen["url"].startswith("http://127.0.0.1:") and seen["url"].endswith("/v1/credentials/bedrock")
    port = int(seen["url"].split(":")[2].split("/")[0])
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port), timeout=5):
        pass  # the endpoint ends with the command
    node = home.run(
        "exec", "bedrock", "--endpoint", "--", "node", str(NODE_DIR / "caller-identity.js"), home.proxy.url
    )
    assert node.returncode == 0, node.stderr
    assert node.stdout == ASSUMED, (
        "the JS SDK's default chain must get the role's identity from exec's endpoint"
    )
    assert home.proxy.count("AssumeRole") == 1, "the endpoint serves the shared cache"
    assert_no_secret(home, result.stdout, result.stderr, node.stdout, node.stderr)


def test_endpoint_refuses_a_request_without_its_token(home: UserHome) -> None:
    script = (
        "import os, urllib.request, urllib.error; "
        "url = os.environ['AWS_CONTAINER_CREDENTIALS_FULL_URI']; "
        "token = os.environ['AWS_CONTAINER_AUTHORIZATION_TOKEN']; "
        "status = lambda h: urllib.request.urlopen(urllib.request.Request(url, headers=h)).status; "
        "print(status({'Authorization': token}), end=' ')\n"
        "try: status({'Authorization': 'wrong'})\n"
        "except urllib.error.HTTPError as e: print(e.code, len(token) >= 32)"
    )
    result = home.run("exec", "bedrock", "--endpoint", "--", sys.executable, "-c", script)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["200", "403", "True"]


# An app that loads its .env with python-dotenv at start (what the environment has set already
# wins), then uses botocore. argv: the .env. Prints, as JSON, where botocore's credentials came
# from, their key id, how each credential variable stands after dotenv ("unset", "empty", "set";
# never a value), and how a Bedrock call would be authorized (scheme, and the key id it signs with).
DOTENV_APP = """
import json, os, sys
import botocore.session
from dotenv import load_dotenv

load_dotenv(sys.argv[1])
names = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
         "AWS_CREDENTIAL_EXPIRATION", "AWS_BEARER_TOKEN_BEDROCK")
session = botocore.session.get_session()
credentials = session.get_credentials()

class Sent(Exception):
    pass

def stop_before_sending(request, **kwargs):
    header = request.headers.get("Authorization", b"")
    header = header.decode() if isinstance(header, bytes) else header
    key = header.split("Credential=", 1)[1].split("/", 1)[0] if "Credential=" in header else None
    raise Sent(header.split(" ", 1)[0], key)

bedrock = session.create_client(
    "bedrock-runtime", region_name="us-east-1", endpoint_url="https://127.0.0.1:9"
)
bedrock.meta.events.register("before-send", stop_before_sending)
try:
    bedrock.converse(modelId="m", messages=[{"role": "user", "content": [{"text": "hi"}]}])
except Sent as sent:
    signed = list(sent.args)
standing = lambda n: "unset" if n not in os.environ else "empty" if not os.environ[n] else "set"
print(json.dumps({
    "method": credentials.method,
    "key": credentials.get_frozen_credentials().access_key,
    "variables": {n: standing(n) for n in names},
    "bedrock": signed,
}))
"""


@pytest.mark.parametrize("bedrock_api_key", [False, True], ids=["plain-profile", "bedrock-api-key"])
def test_endpoint_wins_over_the_keys_an_apps_dotenv_loads_from_the_profiles_env(
    home: UserHome, bedrock_api_key: bool
) -> None:
    if bedrock_api_key:
        home.write_config(bedrock_api_key="true")
    refreshed(home)
    written = read_env(home.app_env)
    assert (written["AWS_ACCESS_KEY_ID"] or "").startswith("ASIA") and written["AWS_CREDENTIAL_EXPIRATION"]
    assert bool(written.get("AWS_BEARER_TOKEN_BEDROCK")) == bedrock_api_key
    key_id = cached_record(home)["AccessKeyId"]
    hidden = {
        "AWS_ACCESS_KEY_ID": "empty",
        "AWS_SECRET_ACCESS_KEY": "empty",
        "AWS_SESSION_TOKEN": "empty",
        "AWS_CREDENTIAL_EXPIRATION": "empty",
        # Set, even empty, botocore and the JS SDK would send it to Bedrock as a key: only a
        # profile whose .env holds one has it hidden.
        "AWS_BEARER_TOKEN_BEDROCK": "empty" if bedrock_api_key else "unset",
    }

    python = home.run(
        "exec", "bedrock", "--endpoint", "--", sys.executable, "-c", DOTENV_APP, str(home.app_env)
    )
    assert python.returncode == 0, python.stderr
    seen = json.loads(python.stdout)
    assert seen["variables"] == hidden, "python-dotenv loaded the .env's credentials over the endpoint"
    assert (seen["method"], seen["key"]) == ("container-role", key_id), "botocore must use exec's endpoint"
    if not bedrock_api_key:
        assert seen["bedrock"] == ["AWS4-HMAC-SHA256", key_id], "Bedrock calls must be signed with them"

    node = home.run(
        "exec", "bedrock", "--endpoint", "--", "node", str(NODE_DIR / "dotenv-app.js"), str(home.app_env)
    )
    assert node.returncode == 0, node.stderr
    seen = json.loads(node.stdout)
    assert seen["variables"] == hidden, "Node's dotenv loaded the .env's credentials over the endpoint"
    assert "CREDENTIALS_HTTP" in seen["sources"] and "CREDENTIALS_ENV_VARS" not in seen["sources"], (
        "the JS SDK must use exec's endpoint, not the .env's keys"
    )
    assert seen["key"] == key_id
    assert_no_secret(home, python.stdout, python.stderr, node.stdout, node.stderr)


# Run as the session leader of a new session, it makes the terminal named in argv[1] its
# controlling terminal and stdin/stdout/stderr, then becomes the rest of argv: a login on a terminal.
ON_A_TERMINAL = (
    "import os, sys; fd = os.open(sys.argv[1], os.O_RDWR); "
    "[os.dup2(fd, n) for n in (0, 1, 2)]; os.execvp(sys.argv[2], sys.argv[2:])"
)


def on_a_terminal(home: UserHome, terminal: int, *argv: str) -> subprocess.Popen[bytes]:
    """`argv` started as a login on the terminal open at `terminal` would start it."""
    return started(
        subprocess.Popen(
            [sys.executable, "-c", ON_A_TERMINAL, os.ttyname(terminal), *argv],
            env=home.env,
            cwd=home.root,
            start_new_session=True,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    )


def test_on_a_terminal_ctrl_c_reaches_the_command_once(home: UserHome) -> None:
    log = home.root.parent / "tty-child.jsonl"
    exec_argv = ["exec", "bedrock", "--restart-on-refresh", "--", *CHILD, str(log)]
    controller, terminal = os.openpty()
    try:
        process = on_a_terminal(home, terminal, sys.executable, "-m", "credhelper", *exec_argv)
        run = Exec.__new__(Exec)
        run.log = log
        wait_for(lambda: run.events(), 30)
        (start,) = run.starts()
        assert start["foreground"], "the command's group must be the terminal's foreground group"
        os.write(controller, b"\x03")  # Ctrl-C
        wait_for(lambda: "SIGINT" in _signals(run), 10)
        process.send_signal(signal.SIGUSR1)  # passed on after any SIGINT exec would have sent
        wait_for(lambda: "SIGUSR1" in _signals(run), 10)
        assert _signals(run) == ["SIGINT", "SIGUSR1"], "Ctrl-C must reach the command exactly once"
        os.write(controller, b"\x1a")  # Ctrl-Z: the command stops, and exec with it, as a shell job
        wait_for(lambda: _state(process.pid) == "T" and _state(start["pid"]) == "T", 10)
        process.send_signal(signal.SIGCONT)  # `fg`
        wait_for(lambda: _state(start["pid"]) != "T", 10)
        os.write(controller, b"\x03")
        wait_for(lambda: _signals(run).count("SIGINT") == 2, 10)
        process.send_signal(signal.SIGTERM)
        assert process.wait(20) == 128 + signal.SIGTERM
    finally:
        os.close(controller)
        os.close(terminal)


# Like `less` in `credhelper exec ... | less`: a member of exec's job that reads the terminal, here
# once the command has started. argv: the command's log, the file to copy the line read to.
READS_THE_TERMINAL = (
    "import os, sys, time\n"
    "while not os.path.exists(sys.argv[1]) or not os.path.getsize(sys.argv[1]): time.sleep(0.05)\n"
    "line = open('/dev/tty').readline()\n"
    "open(sys.argv[2], 'w').write(line)\n"
)


def test_piped_on_a_terminal_the_terminal_stays_with_the_job(home: UserHome) -> None:
    log = home.root.parent / "piped-child.jsonl"
    copied = home.root.parent / "read-from-the-terminal"
    exec_argv = [sys.executable, "-m", "credhelper", "exec", "bedrock", "--restart-on-refresh", "--"]
    reader = [sys.executable, "-c", READS_THE_TERMINAL, str(log), str(copied)]
    pipeline = f"{shlex.join([*exec_argv, *CHILD, str(log)])} | {shlex.join(reader)}"
    controller, terminal = os.openpty()
    try:
        shell = on_a_terminal(home, terminal, "sh", "-c", pipeline)
        run = Exec.__new__(Exec)
        run.log = log
        wait_for(lambda: run.starts(), 30)
        (start,) = run.starts()
        assert not start["foreground"], "exec gave the terminal to the command although its stdout is a pipe"
        assert os.tcgetpgrp(controller) == shell.pid, "the terminal's foreground must stay with the job"
        os.write(controller, b"typed\n")
        read = wait_for(lambda: copied.exists() and copied.read_text(), 10)
        assert read == "typed\n", "the job's terminal reader must read what was typed, not be stopped"
        exec_pid = _parent_of(start["pid"])
        assert exec_pid is not None
        os.kill(exec_pid, signal.SIGTERM)
        wait_for(lambda: "SIGTERM" in _signals(run), 10)
        assert shell.wait(20) == 0
    finally:
        os.close(controller)
        os.close(terminal)


def _state(pid: int) -> str:
    """A process's state letter from /proc (T: stopped)."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


def _messages(run: Exec) -> list[str]:
    """exec's stderr, less the warning every command gives for sessions this short."""
    return [line for line in run.stderr.splitlines() if "under 30 minutes" not in line]


def _signals(run: Exec) -> list[str]:
    return [e["signal"] for e in run.events() if e.get("event") == "signal"]


# -- what a command starts with --------------------------------------------------------------

READ_STATUS = ["cat", "/proc/self/status"]  # the command itself reads its own signal state
PYTHON_IGNORED = (1 << (signal.SIGPIPE - 1)) | (1 << (signal.SIGXFSZ - 1))


@contextlib.contextmanager
def launched_with_a_blocked_signal() -> Iterator[None]:
    """Processes started meanwhile begin with SIGALRM blocked, as under a launcher that blocked it."""
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)


def _signal_masks(status: str) -> tuple[int, int]:
    """(ignored, blocked) from a /proc/PID/status text."""
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    return int(fields["SigIgn"], 16), int(fields["SigBlk"], 16)


def assert_as_a_shell_starts_it(status: str, what: str) -> None:
    """Nothing ignored that a command started from here (as from a shell) would not have ignored,
    SIGPIPE and SIGXFSZ least of all, and nothing blocked."""
    ignored, blocked = _signal_masks(status)
    direct, _ = _signal_masks(subprocess.run(READ_STATUS, capture_output=True, text=True, check=True).stdout)
    assert not ignored & PYTHON_IGNORED, f"{what} starts with SIGPIPE or SIGXFSZ ignored ({ignored:#x})"
    assert not ignored & ~direct, f"{what} starts with signals ignored ({ignored:#x}, not {direct:#x})"
    assert not blocked, f"{what} starts with signals blocked ({blocked:#x})"


@pytest.mark.parametrize(
    "mode",
    [
        pytest.param([], id="plain"),
        pytest.param(["--restart-on-refresh"], id="restart"),
        pytest.param(["--endpoint"], id="endpoint"),
    ],
)
def test_the_command_starts_with_the_signal_state_a_shell_gives(home: UserHome, mode: list[str]) -> None:
    with launched_with_a_blocked_signal():
        cold = home.run("exec", "bedrock", *mode, "--", *READ_STATUS)
        warm = home.run("exec", "bedrock", *mode, "--", *READ_STATUS)  # plain: the fast path
    for result in (cold, warm):
        assert result.returncode == 0, result.stderr
        assert_as_a_shell_starts_it(result.stdout, "the command")


def test_hooks_start_with_nothing_ignored_or_blocked(home: UserHome, daemons: list[DaemonProcess]) -> None:
    hook_status = home.root / "hook-status"
    home.write_config('on_refresh = ["cp", "/proc/self/status", "~/hook-status"]\n')
    with launched_with_a_blocked_signal():
        assert home.run("refresh").returncode == 0
    assert_as_a_shell_starts_it(hook_status.read_text(), "a hook of `refresh`")
    hook_status.unlink()
    with launched_with_a_blocked_signal():
        daemons.append(DaemonProcess(home))  # its hooks run from a refresh thread
    wait_for(lambda: hook_status.exists() and hook_status.read_text(), 30)
    assert_as_a_shell_starts_it(hook_status.read_text(), "a hook of the daemon")


@contextlib.contextmanager
def launched_as_a_background_job() -> Iterator[None]:
    """Processes started meanwhile inherit SIGINT and SIGQUIT ignored, as a script's `cmd &` does."""
    previous = {signum: signal.signal(signum, signal.SIG_IGN) for signum in (signal.SIGINT, signal.SIGQUIT)}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def test_what_credhelper_supervises_starts_with_nothing_ignored(
    home: UserHome, daemons: list[DaemonProcess]
) -> None:
    """A hook, or a restarted command, is credhelper's child, not the shell's: it starts with no
    signal ignored, whatever credhelper itself inherited."""
    status = home.root / "child-status"
    home.write_config('on_refresh = ["cp", "/proc/self/status", "~/child-status"]\n')
    with launched_as_a_background_job():
        assert home.run("refresh").returncode == 0
    assert _signal_masks(status.read_text())[0] == 0, "a hook of `refresh` starts with signals ignored"
    status.unlink()
    with launched_as_a_background_job():
        daemons.append(DaemonProcess(home))
    wait_for(lambda: status.exists() and status.read_text(), 30)
    assert _signal_masks(status.read_text())[0] == 0, "a hook of the daemon starts with signals ignored"
    daemons[-1].stop()
    status.unlink()
    home.write_config()
    with launched_as_a_background_job():
        result = home.run(
            "exec", "bedrock", "--restart-on-refresh", "--", "cp", "/proc/self/status", str(status)
        )
    assert result.returncode == 0, result.stderr
    assert _signal_masks(status.read_text())[0] == 0, "a supervised command starts with signals ignored"


# -- decisions (pure) ------------------------------------------------------------------------


def _profile(**settings: Any) -> Profile:
    return Profile(
        "bedrock", "arn:aws:iam::123456789012:role/BedrockAccessRole", "credhelper-test", **settings
    )


def _credentials(expiration: float) -> Credentials:
    return Credentials("ASIAEXAMPLEEXAMPLE12", "fake-secret-value", "fake-token-value", expiration)


def test_child_environment_drops_what_would_win_and_keeps_the_rest() -> None:
    parent = {
        "PATH": "/bin",
        "AWS_PROFILE": "p",
        "AWS_DEFAULT_PROFILE": "p",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI": "u",
        "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE": "f",
        "AWS_WEB_IDENTITY_TOKEN_FILE": "w",
        "AWS_ROLE_ARN": "r",
        "AWS_ACCESS_KEY_ID": "AKIAIOSFODNN7EXAMPLE",
        "AWS_SECRET_ACCESS_KEY": "s",
        "AWS_REGION": "eu-west-1",
        "AWS_ENDPOINT_URL_BEDROCK": "http://127.0.0.1:1",
    }
    assert child_environment(parent, {"AWS_CONTAINER_CREDENTIALS_FULL_URI": "mine"}) == {
        "PATH": "/bin",
        "AWS_REGION": "eu-west-1",
        "AWS_ENDPOINT_URL_BEDROCK": "http://127.0.0.1:1",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI": "mine",
    }


@pytest.mark.parametrize(
    ("returncode", "status"), [(0, 0), (3, 3), (-signal.SIGTERM, 143), (-signal.SIGKILL, 137)]
)
def test_exit_status_is_128_plus_the_signal(returncode: int, status: int) -> None:
    assert exit_status(returncode) == status


@pytest.mark.parametrize(
    ("seconds_left", "renew_in"),
    [
        (3600, 3600 - 1200),  # the refresh point, less at most 30 s of jitter
        (1000, 500),  # already due on arrival: half the remaining life
        (90, 60),  # but never sooner than 60 s
    ],
)
def test_renewal_time(seconds_left: float, renew_in: float) -> None:
    now = 1_000_000.0
    at = supervised_renewal_time(_credentials(now + seconds_left), _profile(), now, random.Random(1))
    assert renew_in - 30 <= at - now <= renew_in


def test_a_failed_renewal_is_reported_once_the_commands_credentials_have_expired() -> None:
    held = _credentials(1000.0)
    error = StsUnavailableError("profile bedrock: STS could not be reached after retries")
    assert renewal_failure_message(_profile(), error, held, 999.0, 5.0) is None
    message = renewal_failure_message(_profile(), error, held, 1001.0, 5.0)
    assert message is not None
    assert "expired" in message and "STS could not be reached" in message and "next try in 5 s" in message
    assert "fake-secret-value" not in message and "fake-token-value" not in message


class _SleepingLaptop:
    def __init__(self) -> None:
        self.wall_now, self.mono_now = 1_000_000.0, 50.0

    def wall(self) -> float:
        return self.wall_now

    def mono(self) -> float:
        return self.mono_now


def test_a_renewal_missed_during_sleep_happens_on_wake() -> None:
    clock = _SleepingLaptop()
    deadline = Deadline.after(clock, clock.wall() + 3000)
    assert wait_limit(deadline.seconds_left(clock)) == WAKE_CHECK_SECONDS, "the supervisor must look often"
    assert wait_limit(None) == WAKE_CHECK_SECONDS
    clock.wall_now += 4000  # asleep: the monotonic clock stood still
    assert deadline.passed(clock)
    assert wait_limit(deadline.seconds_left(clock)) == 0.0
    assert AwsRefusedError.exit_code == 77
