"""The fork server (tests/forkserver.py) starts credhelper as a new interpreter would: the suite's
commands are its forks, so what it gets wrong, every test would get wrong."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests import forkserver
from tests.conftest import UserHome
from tests.daemonproc import DaemonProcess
from tests.forkserver import ForkedProcess

pytestmark = pytest.mark.skipif(
    os.environ.get("CREDHELPER_TEST_FORK") == "0", reason="every command is a new interpreter"
)

# Answers that depend on nothing but the command line, the files and the environment.
COMMANDS = (
    ["--help"],
    ["--version"],
    ["no-such-command"],
    ["env"],
    ["status"],
    ["status", "no-such-profile"],
    ["credential-process", "no-such-profile"],
    ["refresh", "--help"],
)


def started(home: UserHome, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "credhelper", *args],
        env=home.env,
        cwd=home.root,
        capture_output=True,
        text=True,
        timeout=60,
        start_new_session=True,
    )


def without_key_and_time(report: str) -> str:
    return re.sub(r"ASIA…\S+|\d{4}-\d\d-\d\dT\S+Z", "", report)


def test_a_forked_command_answers_as_a_started_one(home: UserHome) -> None:
    assert forkserver.fork_server(home.env, home.root) is not None
    for args in COMMANDS:
        forked, new = home.run(*args), started(home, *args)
        assert (forked.returncode, forked.stdout, forked.stderr) == (
            new.returncode,
            new.stdout,
            new.stderr,
        ), args


def test_a_refresh_writes_what_a_started_one_does_and_input_reaches_stdin(home: UserHome) -> None:
    forked = home.run("refresh", "bedrock")
    assert forked.returncode == 0, forked.stderr
    names = [line.partition("=")[0] for line in home.app_env.read_text().splitlines()]
    new = started(home, "refresh", "bedrock")
    assert new.returncode == 0, new.stderr
    assert without_key_and_time(new.stdout) == without_key_and_time(forked.stdout)
    assert [line.partition("=")[0] for line in home.app_env.read_text().splitlines()] == names
    payload = "".join(f"line {number}\r\n" for number in range(100_000))  # more than a pipe holds
    echoed = home.run("exec", "bedrock", "--", "cat", input=payload)
    assert echoed.returncode == 0, echoed.stderr
    assert echoed.stdout == payload.replace("\r\n", "\n")  # as subprocess.run(text=True) reads it


def test_a_forked_daemon_is_a_process_of_its_own(
    home: UserHome, daemons: list[DaemonProcess]
) -> None:
    daemon = DaemonProcess(home)
    daemons.append(daemon)
    daemon.wait_running()
    assert isinstance(daemon.process, ForkedProcess)
    pid = daemon.process.pid
    assert os.getsid(pid) == pid  # a session of its own, as start_new_session gives
    assert os.readlink(f"/proc/{pid}/cwd") == str(home.root)
    assert os.readlink(f"/proc/{pid}/fd/0") == os.devnull
    assert Path(os.readlink(f"/proc/{pid}/fd/1")) == daemon.log_path
    # the reload and refresh signals are handled: neither ends it
    daemon.signal(signal.SIGHUP)
    daemon.signal(signal.SIGUSR1)
    assert daemon.stop() == 0


def signal_state(pid: int) -> dict[str, str]:
    fields = dict(line.split(":\t", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    return {name: fields[name] for name in ("SigBlk", "SigIgn", "SigCgt", "Umask")}


def test_a_forked_daemon_starts_with_the_signals_and_umask_its_launcher_gives(
    home: UserHome, daemons: list[DaemonProcess]
) -> None:
    """Ignored signals are kept across execve and the blocked mask is inherited: a test that starts
    credhelper as a background job would (SIGINT, SIGQUIT ignored, SIGALRM blocked) gets a fork
    that starts the same way as a new interpreter would; and with its umask."""
    quit_before, int_before = signal.getsignal(signal.SIGQUIT), signal.getsignal(signal.SIGINT)
    signal.signal(signal.SIGQUIT, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
    umask = os.umask(0o027)
    try:
        forked = DaemonProcess(home)
        daemons.append(forked)
        # `env` execs the daemon (the same pid): a new interpreter; another cache, another lock
        other_cache = {**home.env, "XDG_CACHE_HOME": str(home.root / "other-cache")}
        new = DaemonProcess(home, env=other_cache, wrapper=["env"])
        daemons.append(new)
    finally:
        os.umask(umask)
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        signal.signal(signal.SIGQUIT, quit_before)
        signal.signal(signal.SIGINT, int_before)
    assert isinstance(forked.process, ForkedProcess)
    forked.wait_running()
    new.wait_running()
    assert signal_state(forked.process.pid) == signal_state(new.process.pid)
    ignored = int(signal_state(forked.process.pid)["SigIgn"], 16)
    assert ignored & (1 << (signal.SIGQUIT - 1)), "SIGQUIT ignored by the launcher stays ignored"


def test_past_its_timeout_a_command_is_killed_and_timeout_expired_raised(home: UserHome) -> None:
    with pytest.raises(subprocess.TimeoutExpired):
        home.run("run", timeout=1)
    # nothing keeps running: a second daemon starts and finds no first one
    with pytest.raises(subprocess.TimeoutExpired) as second:
        home.run("run", timeout=2)
    assert "already running" not in (second.value.stderr or "")


def test_what_a_new_interpreter_would_start_differently_gets_one(home: UserHome) -> None:
    for variables in ({"PYTHONIOENCODING": "latin-1"}, {"LC_ALL": "C"}, {"TZ": "America/New_York"}):
        assert forkserver.fork_server({**home.env, **variables}, home.root) is None, variables
    assert forkserver.fork_server(home.env, home.root / "no-such-directory") is None
    result = home.run("--version", PYTHONIOENCODING="latin-1")
    assert result.returncode == 0
    # botocore locates ~/.aws/models when imported: a HOME that has them gets a new interpreter,
    # which reads the broken model there as users' would
    assert forkserver.fork_server(home.env, home.root) is not None
    model = home.root / ".aws" / "models" / "sts" / "2011-06-15" / "service-2.json"
    model.parent.mkdir(parents=True)
    model.write_text("{ not json")
    assert forkserver.fork_server(home.env, home.root) is None
    forked, new = home.run("refresh", "bedrock"), started(home, "refresh", "bedrock")
    assert (forked.returncode, forked.stderr) == (new.returncode, new.stderr) != (0, "")
    model.unlink()
    # `python -m` imports from its directory first: a module there named like one the server has
    # imported gets a new interpreter, which imports it
    (home.root / "click.py").write_text("raise SystemExit(9)\n")
    assert forkserver.fork_server(home.env, home.root) is None
    assert home.run("--version").returncode == started(home, "--version").returncode == 9
    (home.root / "click.py").unlink()
    # a command line and environment too large for one request
    assert forkserver.fork_server(home.env, home.root, ["x" * 70_000]) is None
    assert home.run("--version", NOTE="é" * 40_000).returncode == 0


def test_a_request_that_fails_leaves_the_server_serving(home: UserHome) -> None:
    server = forkserver.fork_server(home.env, home.root)
    assert server is not None
    with open(os.devnull, "rb") as nothing, socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as hung_up:
        hung_up.connect(server.address)
        request = {
            "args": ["--version"],
            "env": home.env,
            "cwd": str(home.root),
            "signals": {"ignored": [], "blocked": []},
            "umask": 0o22,
        }
        socket.send_fds(hung_up, [json.dumps(request).encode()], [nothing.fileno()] * 3)
    with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as garbage:
        garbage.connect(server.address)
        garbage.send(b"not a request")
    assert home.run("--version").returncode == 0
    assert forkserver.fork_server(home.env, home.root) is server
    assert "a request of 13 bytes with 0 descriptors" in server.log_text()


def test_waiting_in_one_thread_holds_up_no_poll_or_wait_in_another(
    home: UserHome, daemons: list[DaemonProcess]
) -> None:
    daemon = DaemonProcess(home)
    daemons.append(daemon)
    daemon.wait_running()  # its SIGTERM handler in place
    waiter = threading.Thread(target=daemon.process.wait)
    waiter.start()
    began = time.monotonic()
    assert daemon.process.poll() is None
    with pytest.raises(subprocess.TimeoutExpired):
        daemon.process.wait(0.2)
    assert time.monotonic() - began < 5
    assert daemon.stop() == 0
    waiter.join(5)
    assert not waiter.is_alive()


def has_ended(pid: int) -> bool:
    """Whether the process has ended: gone, or a zombie left for init to reap."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True


def test_the_commands_of_a_server_that_ended_are_ended_and_a_new_server_serves(
    home: UserHome, daemons: list[DaemonProcess]
) -> None:
    daemon = DaemonProcess(home)
    daemons.append(daemon)
    daemon.wait_running()
    server = forkserver.fork_server(home.env, home.root)
    assert server is not None
    os.kill(server.pid, signal.SIGKILL)
    assert daemon.process.wait(10) == -signal.SIGKILL  # no daemon left running unseen
    assert isinstance(daemon.process, ForkedProcess) and daemon.process.server_lost
    assert has_ended(daemon.process.pid)
    assert home.run("--version").returncode == 0
    assert forkserver.fork_server(home.env, home.root) is not server

