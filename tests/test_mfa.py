"""MFA: one code for a long GetSessionToken session, role sessions renewed from it without asking."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import select
import subprocess
import sys
import tempfile
import termios
import time
from collections.abc import Callable

import pytest

from tests.conftest import UserHome
from tests.helpers import assert_no_secret, assert_one_line_failure, cached_record, read_env

MFA_SERIAL = '"arn:aws:iam::123456789012:mfa/bedrock-developer"'
PROMPT = "MFA code for arn:aws:iam::123456789012:mfa/bedrock-developer (profile bedrock): "
WAIT = 60  # seconds before a test that would hang fails instead; nothing here is timed


def run_on_a_terminal(
    home: UserHome, *args: str, typed: bytes | Callable[[], bytes], stdin_is_the_terminal: bool = True
) -> tuple[subprocess.CompletedProcess[str], str]:
    """credhelper as started from a shell: its own session, a pseudo-terminal as its controlling
    terminal (its /dev/tty), stdout and stderr apart. `typed` is typed once the prompt is on the
    screen (a function: called then, while the prompt waits, and what it returns is typed).
    Returns the result and everything the terminal showed."""
    controller, terminal = pty.openpty()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "credhelper", *args],
            stdin=terminal if stdin_is_the_terminal else subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            env=home.env,
            cwd=home.root,
            start_new_session=True,
            # after setsid: the pty becomes the new session's controlling terminal
            preexec_fn=lambda: fcntl.ioctl(terminal, termios.TIOCSCTTY, 0),
            pass_fds=(terminal,),  # held open until credhelper exits, as a shell's children hold theirs
        )
        os.close(terminal)
        screen = b""
        try:
            while True:
                ready, _, _ = select.select([controller], [], [], WAIT)
                assert ready, (
                    f"credhelper neither exited nor wrote in {WAIT} s; the terminal shows {screen!r}"
                )
                try:
                    chunk = os.read(controller, 4096)
                except OSError:  # EIO: every process holding the terminal has exited
                    chunk = b""
                if not chunk:
                    break
                if PROMPT.encode() not in screen and PROMPT.encode() in screen + chunk:
                    os.write(controller, typed if isinstance(typed, bytes) else typed())
                screen += chunk
            process.wait(WAIT)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
            os.close(controller)
        out.seek(0)
        err.seek(0)
        result = subprocess.CompletedProcess(
            process.args, process.returncode, out.read().decode(), err.read().decode()
        )
    return result, screen.decode(errors="replace")


@pytest.mark.parametrize(
    ("command", "stdin_is_the_terminal"),
    [("refresh", True), ("credential-process", False)],  # a person; an SDK started from a shell
)
def test_a_code_typed_at_the_terminal_gets_credentials(
    home: UserHome, command: str, stdin_is_the_terminal: bool
) -> None:
    home.write_config(mfa_serial=MFA_SERIAL)
    home.sts.set_auth(enforced=False)  # as in test_mfa_command_gives_one_code_for_many_role_sessions
    try:
        result, screen = run_on_a_terminal(
            home,
            "--log-level",
            "debug",  # botocore's wire logging too: the code must not be in it
            command,
            "bedrock",
            typed=b"246810\n",
            stdin_is_the_terminal=stdin_is_the_terminal,
        )
    finally:
        home.sts.set_auth(enforced=True)
    assert result.returncode == 0, (result.stderr[-2000:], screen)
    assert PROMPT in screen, "the MFA prompt was not shown on the terminal"
    # Booleans, not the texts: on a failure, pytest would print credential-process's stdout.
    prompt_on_stdout = "MFA code" in result.stdout
    assert not prompt_on_stdout, "the MFA prompt went to stdout"
    code_shown = "246810" in result.stdout + result.stderr
    assert not code_shown, "the MFA code reached the output or the log"
    assert_no_secret(home, result.stderr, screen)
    assert [request["TokenCode"] for request in home.proxy.requests if "TokenCode" in request] == [["246810"]]
    record = cached_record(home)
    if command == "credential-process":  # the credentials on stdout, and nothing else there
        handed_out = json.loads(result.stdout)["SessionToken"] == record["SessionToken"]
    else:
        assert_no_secret(home, result.stdout)
        handed_out = read_env(home.app_env)["AWS_SESSION_TOKEN"] == record["SessionToken"]
    assert handed_out, f"{command} did not deliver the credentials it got with the typed code"


def test_while_a_person_is_asked_for_a_code_others_are_told_at_once(home: UserHome) -> None:
    """No lock is held while a person reads the prompt: credential-process elsewhere (an SDK, no
    terminal) and a second refresh on another terminal answer at once, 77, saying who is asking,
    instead of waiting 120 s behind the cache lock. The code typed then gets the credentials."""
    home.write_config(mfa_serial=MFA_SERIAL)
    seen: dict[str, subprocess.CompletedProcess[str] | float] = {}

    def meanwhile() -> bytes:
        started = time.monotonic()
        try:
            seen["sdk"] = home.run("credential-process", "bedrock", timeout=30)
        except subprocess.TimeoutExpired:
            seen["sdk_waited"] = time.monotonic() - started
        try:
            seen["terminal"] = run_on_a_terminal(home, "refresh", "bedrock", typed=b"135790\n")[0]
        except AssertionError:  # it showed the prompt too, or waited: what is checked below
            seen["terminal_waited"] = time.monotonic() - started
        return b"246810\n"

    home.sts.set_auth(enforced=False)  # as in test_mfa_command_gives_one_code_for_many_role_sessions
    try:
        result, screen = run_on_a_terminal(home, "refresh", "bedrock", typed=meanwhile)
    finally:
        home.sts.set_auth(enforced=True)
    assert "sdk_waited" not in seen, "credential-process waited behind a prompt nobody answered"
    sdk = seen["sdk"]
    assert isinstance(sdk, subprocess.CompletedProcess)
    assert sdk.stdout == ""
    assert_one_line_failure(sdk, 77, "an MFA code is needed", "is asking for it on its terminal")
    terminal = seen.get("terminal")
    assert isinstance(terminal, subprocess.CompletedProcess), "a second prompt, or a wait, elsewhere"
    assert_one_line_failure(terminal, 77, "an MFA code is needed", "is asking for it on its terminal")
    assert result.returncode == 0, (result.stderr[-2000:], screen)
    assert [request["TokenCode"] for request in home.proxy.requests if "TokenCode" in request] == [["246810"]]
    assert read_env(home.app_env)["AWS_SESSION_TOKEN"] == cached_record(home)["SessionToken"]
    state = json.loads((home.cache_dir / "bedrock.state.json").read_text())
    assert state["mfa_needed"] is False and state["last_error"] is None


def test_a_typed_answer_that_is_not_six_digits_is_refused_without_repeating_it(home: UserHome) -> None:
    home.write_config(mfa_serial=MFA_SERIAL)
    result, screen = run_on_a_terminal(home, "refresh", "bedrock", typed=b"hunter2\n")
    assert PROMPT in screen, "the MFA prompt was not shown on the terminal"
    assert_one_line_failure(result, 77, "not a 6-digit MFA code", "credhelper refresh bedrock")
    assert "hunter2" not in result.stderr
    assert home.proxy.count("GetSessionToken") == 0


def test_end_of_input_at_the_prompt_is_one_clear_line(home: UserHome) -> None:
    home.write_config(mfa_serial=MFA_SERIAL)
    result, screen = run_on_a_terminal(home, "refresh", "bedrock", typed=b"\x04")  # Ctrl-D
    assert PROMPT in screen, "the MFA prompt was not shown on the terminal"
    assert_one_line_failure(result, 77, "no MFA code was typed", "credhelper refresh bedrock")
    assert home.proxy.count("GetSessionToken") == 0


def test_mfa_command_gives_one_code_for_many_role_sessions(home: UserHome) -> None:
    counter = home.root / "codes-asked"
    command = f"[\"{sys.executable}\", \"-c\", \"open('{counter}', 'a').write('x'); print('123456')\"]"
    home.write_config(mfa_serial=MFA_SERIAL, mfa_command=command)
    # moto answers GetSessionToken with one fixed key pair that no IAM user owns, so AssumeRole
    # from that session passes only with authentication off. Every other test runs with it on.
    home.sts.set_auth(enforced=False)
    try:
        first = home.run("refresh")
        assert first.returncode == 0, first.stderr
        second = home.run("refresh")
        assert second.returncode == 0, second.stderr
    finally:
        home.sts.set_auth(enforced=True)
    assert counter.read_text() == "x"  # one code, two role sessions
    assert home.proxy.count("GetSessionToken") == 1
    assert home.proxy.count("AssumeRole") == 2
    state = json.loads((home.cache_dir / "bedrock.state.json").read_text())
    assert state["mfa_needed"] is False


def test_no_code_to_be_had_is_refused_and_status_says_a_code_is_needed(home: UserHome) -> None:
    home.write_config(mfa_serial=MFA_SERIAL)
    # subprocess without a controlling terminal: /dev/tty cannot be opened
    result = home.run("credential-process", "bedrock")
    assert_one_line_failure(result, 77, "MFA code", "mfa_command")
    assert_one_line_failure(home.run("refresh", "bedrock"), 77, "MFA code", "mfa_command")
    status = home.run("status", "--json")
    assert json.loads(status.stdout)[0]["mfa_code_needed"] is True
    assert home.proxy.count("GetSessionToken") == 0


def test_a_failing_mfa_command_is_refused(home: UserHome) -> None:
    home.write_config(mfa_serial=MFA_SERIAL, mfa_command='["false"]')
    assert_one_line_failure(home.run("refresh"), 77, "mfa_command exited 1")
