"""A supervised exec's command and job control: a command stopped (by the terminal or by hand) is
never left hanging, in a pipeline on a terminal or not (real processes, real ptys)."""

from __future__ import annotations

import os
import select
import shlex
import signal
import subprocess
import sys
import time

from credhelper.appexec.groups import Terminal, stop_group
from credhelper.schedule import SystemClock
from tests.conftest import UserHome
from tests.daemonproc import wait_for
from tests.test_exec import (  # noqa: F401 (no_process_left_behind: the autouse fixture, here too)
    CHILD,
    Exec,
    _signals,
    _state,
    no_process_left_behind,
    on_a_terminal,
)

# The command of `credhelper exec ... | cat` on a terminal: reads a line from the terminal (its
# stdin), as a prompt would, and writes it to the file in argv[1].
READS_A_LINE = "import sys; line = sys.stdin.readline(); open(sys.argv[1], 'w').write(line)"
# Run by the shell after the pipeline: whether the terminal came back to the shell's job.
FOREGROUND_IS_MINE = "import os; print(os.tcgetpgrp(0) == os.getpgrp())"


def test_in_a_pipeline_a_command_that_reads_the_terminal_gets_it_and_gives_it_back(home: UserHome) -> None:
    read = home.root.parent / "read-by-the-command"
    after = home.root.parent / "foreground-after"
    command = [sys.executable, "-c", READS_A_LINE, str(read)]
    exec_argv = [sys.executable, "-m", "credhelper", "exec", "bedrock", "--restart-on-refresh", "--"]
    script = (
        f"{shlex.join([*exec_argv, *command])} | cat; "
        f"{shlex.join([sys.executable, '-c', FOREGROUND_IS_MINE])} > {shlex.quote(str(after))}"
    )
    controller, terminal = os.openpty()
    try:
        shell = on_a_terminal(home, terminal, "sh", "-c", script)
        os.write(controller, b"typed\n")  # waits in the terminal until someone reads it
        try:
            text = wait_for(lambda: read.exists() and read.read_text(), 30)
        except AssertionError:
            raise AssertionError(
                "the command was left stopped on reading the terminal (SIGTTIN), and exec with it"
            ) from None
        assert text == "typed\n", "the command must read what was typed"
        assert shell.wait(30) == 0
        assert after.read_text() == "True\n", "the terminal's foreground must come back to exec's job"
    finally:
        os.close(controller)
        os.close(terminal)


def test_a_stopped_command_still_ends_on_the_sigterm_exec_passes_on(home: UserHome) -> None:
    run = Exec(home, "--restart-on-refresh", "--", *CHILD, "LOG")
    (start,) = run.wait_starts(1)
    os.killpg(start["pgid"], signal.SIGSTOP)  # as a terminal stops it: the whole group
    wait_for(lambda: _state(start["pid"]) == "T", 10)
    assert run.finish(signal.SIGTERM, timeout=10) == 128 + signal.SIGTERM, (
        "exec passed SIGTERM on to a stopped group without SIGCONT: nothing happened"
    )
    assert "SIGTERM" in _signals(run)


def test_a_restart_ends_a_stopped_command_without_waiting_for_the_grace_period() -> None:
    child = subprocess.Popen(["sleep", "60"], process_group=0)
    try:
        os.kill(child.pid, signal.SIGSTOP)
        wait_for(lambda: _state(child.pid) == "T", 10)
        began = time.monotonic()
        returncode = stop_group(child, 20.0, SystemClock(), lambda s: time.sleep(min(s, 0.02)), Terminal())
        took = time.monotonic() - began
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert returncode == -signal.SIGTERM, "the stopped command must end on the restart's SIGTERM, not SIGKILL"
    assert took < 5, f"the restart waited {took:.1f} s of the 20 s grace period on a stopped command"


def test_under_a_job_control_shell_fg_and_ctrl_z_work_as_for_the_command_alone(home: UserHome) -> None:
    """Real bash: `exec ... &` of a command that reads the terminal shows as stopped and reads
    what is typed after `fg`; Ctrl-Z in `exec ... | cat` stops the whole job, and after `fg`
    the command has the terminal again."""
    out = home.root.parent / "typed"
    command = [sys.executable, "-c", f"open({str(out)!r}, 'w').write(input())"]
    exec_line = shlex.join([sys.executable, "-m", "credhelper", "exec", "bedrock", "--restart-on-refresh"])
    exec_line += " -- " + shlex.join(command)
    controller, terminal = os.openpty()
    seen = b""

    def screen() -> bytes:
        nonlocal seen
        while select.select([controller], [], [], 0.05)[0]:
            seen += os.read(controller, 4096)
        return seen

    def typed(text: bytes) -> str:
        os.write(controller, text)
        return str(wait_for(lambda: out.exists() and out.read_text(), 30))

    try:
        on_a_terminal(home, terminal, "bash", "--norc", "--noprofile", "-i")
        os.write(controller, b"set -b\n")  # job changes reported at once, not at the next prompt
        os.write(controller, f"{exec_line} &\n".encode())
        wait_for(lambda: b"Stopped" in screen(), 30)
        os.write(controller, b"fg\n")
        assert typed(b"hello\n") == "hello", "after fg, the command must read the terminal"
        out.unlink()
        os.write(controller, f"{exec_line} | cat\n".encode())
        wait_for(lambda: b"| cat" in screen(), 10)
        time.sleep(2)  # the command is reading the terminal it was lent
        os.write(controller, b"\x1a")
        wait_for(lambda: screen().count(b"Stopped") >= 2, 30)
        os.write(controller, b"fg\n")
        assert typed(b"again\n") == "again", "after Ctrl-Z and fg, the command must have the terminal"
        os.write(controller, b"exit\n")
    finally:
        os.close(controller)
        os.close(terminal)
