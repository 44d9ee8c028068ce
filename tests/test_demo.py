"""`sh dev demo --keep`: a local STS and a scratch HOME to try credhelper by hand, until Ctrl-C."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import clean_environment
from tests.daemonproc import wait_for

REPO = Path(__file__).resolve().parent.parent
WHO_AM_I = "import boto3; print(boto3.client('sts').get_caller_identity()['Arn'])"
# Starts the rest of argv with SIGINT at its default, as a shell starts a job on a terminal where
# Ctrl-C is typed. Run from a shell in the background (`sh dev test &`), the suite and all it starts
# inherit SIGINT ignored, and a Python program left so never gets KeyboardInterrupt.
AS_A_TERMINAL_JOB = (
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
    "os.execv(sys.argv[1], sys.argv[1:])"
)


def group_alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    return True


def sts_answers(url: str) -> bool:
    try:
        urllib.request.urlopen(url + "/moto-api/", timeout=5).read()
    except (urllib.error.URLError, ConnectionError):
        return False
    return True


DEMO_KEEP = [sys.executable, "-u", "-m", "devtools.demo", "--keep"]


def start_demo(arguments: list[str], env: dict[str, str], output_path: Path) -> subprocess.Popen[bytes]:
    """The demo as a terminal's job would run it, everything it prints going to `output_path`."""
    with output_path.open("w") as output:
        return subprocess.Popen(
            [sys.executable, "-c", AS_A_TERMINAL_JOB, *arguments],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=REPO,
            start_new_session=True,
        )


def test_demo_keep_prints_a_world_to_play_in_and_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    env = clean_environment(tmp_path)
    output_path = tmp_path / "demo.out"
    demo = start_demo(DEMO_KEEP, env, output_path)
    try:
        wait_for(lambda: "Ctrl-C here stops it" in output_path.read_text() or demo.poll() is not None, 60)
        printed = output_path.read_text()
        assert demo.poll() is None, printed
        assert "[profiles.bedrock]" in printed and 'role_arn = "arn:aws:iam::' in printed
        assert "[profile bedrock]" in printed and "credential-process bedrock" in printed
        sts_url = re.search(r"STS endpoint: (\S+)", printed)
        activate = re.search(r"^  \. (\S+/activate)", printed, re.M)
        assert sts_url and activate, printed
        home = Path(activate.group(1)).parent

        # The commands it suggests, in a fresh shell that sourced the activate script.
        script = (
            f". {activate.group(1)} && credhelper refresh && credhelper status && "
            f'AWS_PROFILE=bedrock python -c "{WHO_AM_I}"'
        )
        played = subprocess.run(
            ["sh", "-c", script],
            env=clean_environment(tmp_path),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert played.returncode == 0, played.stderr
        assert "assumed-role/BedrockAccessRole/" in played.stdout.splitlines()[-1], "the SDK got no role"
        assert re.search(r"^AWS_ACCESS_KEY_ID=ASIA", (home / "agent0" / ".env").read_text(), re.M)

        demo.send_signal(signal.SIGINT)
        assert demo.wait(60) == 0, output_path.read_text()  # about a second; the bound is for a hang
        assert "Traceback" not in output_path.read_text()
        assert not home.exists(), "the scratch HOME was left behind"
        assert not sts_answers(sts_url.group(1)), "the local STS still runs after Ctrl-C"
    finally:
        if demo.poll() is None:
            os.killpg(demo.pid, signal.SIGKILL)
            demo.wait()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP], ids=["sigterm", "sighup"])
def test_demo_keep_stops_cleanly_on_sigterm(tmp_path: Path, signum: int) -> None:
    """`kill PID`, or the terminal closing (SIGHUP), ends `--keep` as Ctrl-C does: the scratch
    HOME (which holds the local STS's key pair) removed, the local STS stopped, exit 0."""
    output_path = tmp_path / "demo.out"
    demo = start_demo(DEMO_KEEP, clean_environment(tmp_path), output_path)
    try:
        wait_for(lambda: "Ctrl-C here stops it" in output_path.read_text() or demo.poll() is not None, 60)
        printed = output_path.read_text()
        activate = re.search(r"^  \. (\S+/activate)", printed, re.M)
        sts_url = re.search(r"STS endpoint: (\S+)", printed)
        assert demo.poll() is None and activate and sts_url, printed
        demo.send_signal(signum)
        assert demo.wait(60) == 0, output_path.read_text()  # about a second; the bound is for a hang
        assert "Traceback" not in output_path.read_text()
        assert not Path(activate.group(1)).parent.exists(), "the scratch HOME was left behind"
        assert not sts_answers(sts_url.group(1)), "the local STS still runs after the signal"
    finally:
        if demo.poll() is None:
            os.killpg(demo.pid, signal.SIGKILL)
            demo.wait()


DEMO_TOUR = [sys.executable, "-u", "-m", "devtools.demo", "--seconds", "120"]


@pytest.mark.parametrize(
    "moment",
    ["== Starting the embedded local STS", "== 4. The daemon"],
    ids=["while-the-sts-starts", "while-the-daemon-runs"],
)
def test_ctrl_c_stops_the_demo_with_one_line_and_exit_130(tmp_path: Path, moment: str) -> None:
    """Ctrl-C on a terminal: SIGINT to the whole foreground process group (the demo and the
    credhelper daemon it runs). The demo ends at once with one line, 130 as a shell reports it, and
    leaves no STS, no daemon and no scratch HOME behind; no traceback from anyone."""
    output_path = tmp_path / "demo.out"
    demo = start_demo(DEMO_TOUR, clean_environment(tmp_path), output_path)
    try:
        wait_for(lambda: moment in output_path.read_text() or demo.poll() is not None, 120)
        assert demo.poll() is None, output_path.read_text()
        os.killpg(demo.pid, signal.SIGINT)
        status = demo.wait(60)  # seconds; the bound is for a hang
        printed = output_path.read_text()
        assert status == 130, printed
        assert "Traceback" not in printed and "KeyboardInterrupt" not in printed, printed
        assert printed.strip().splitlines()[-1] == (
            "demo: interrupted: the local STS is stopped and the scratch HOME removed"
        ), printed
        # Nothing of the demo's process group is left running (a member still exiting as the demo
        # ends, on a busy machine, is given a few seconds).
        wait_for(lambda: not group_alive(demo.pid), 10)
        home = re.search(r"A scratch HOME at (\S+),", printed)
        assert home is None or not Path(home.group(1)).exists(), "the scratch HOME was left behind"
        sts_url = re.search(r"STS endpoint: (\S+)", printed)
        assert sts_url is None or not sts_answers(sts_url.group(1)), "the local STS still runs"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(demo.pid, signal.SIGKILL)
        demo.wait()


FAKE_PYTHON = """#!/bin/sh
echo "python $*" >> "$CALLS"
case "$*" in *"pip install"*) exit "${PIP_STATUS:-0}" ;; esac
"""
FAKE_PYTHON3 = """#!/bin/sh
echo "python3 $*" >> "$CALLS"
mkdir -p "$3/bin" && cp "$FAKE_PYTHON" "$3/bin/python"
"""


def test_dev_installs_only_on_a_fresh_clone_or_a_changed_pyproject(tmp_path: Path) -> None:
    """`sh dev demo` in a copy of the checkout's entry point, with a python that only says what it
    was asked: pip runs on a fresh clone, not again while pyproject.toml is the same (a new mtime
    alone changes nothing), again when it changes, and again after an install that failed."""
    clone = tmp_path / "clone"
    clone.mkdir()
    shutil.copy(REPO / "dev", clone / "dev")
    shutil.copy(REPO / "pyproject.toml", clone / "pyproject.toml")
    tools = tmp_path / "bin"
    tools.mkdir()
    for name, text in (("python", FAKE_PYTHON), ("python3", FAKE_PYTHON3)):
        (tools / name).write_text(text)
        (tools / name).chmod(0o755)
    calls = tmp_path / "calls"
    env = {
        **clean_environment(tmp_path),
        "PATH": f"{tools}:{os.environ['PATH']}",
        "CALLS": str(calls),
        "FAKE_PYTHON": str(tools / "python"),
    }

    def dev_demo(**variables: str) -> list[str]:
        calls.write_text("")
        result = subprocess.run(
            ["sh", str(clone / "dev"), "demo", "--seconds", "1"],
            env={**env, **variables},
            capture_output=True,
            text=True,
            timeout=60,
            cwd=tmp_path,
        )
        lines = calls.read_text().splitlines()
        assert result.returncode == (0 if lines[-1].startswith("python -m devtools.demo") else 1), result
        return ["venv" if "-m venv" in line else "pip" if "pip install" in line else "demo" for line in lines]

    assert dev_demo() == ["venv", "pip", "demo"]  # a fresh clone
    assert dev_demo() == ["demo"]
    os.utime(clone / "pyproject.toml")
    assert dev_demo() == ["demo"]
    with (clone / "pyproject.toml").open("a") as pyproject:
        pyproject.write("# a new dependency\n")
    assert dev_demo(PIP_STATUS="1") == ["pip"]  # failed: set -e stops dev before the demo
    assert dev_demo() == ["pip", "demo"]
    assert dev_demo() == ["demo"]
