"""`sh dev demo --keep`: a local STS and a scratch HOME to try credhelper by hand, until Ctrl-C."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

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


def sts_answers(url: str) -> bool:
    try:
        urllib.request.urlopen(url + "/moto-api/", timeout=5).read()
    except (urllib.error.URLError, ConnectionError):
        return False
    return True


DEMO_KEEP = [sys.executable, "-u", "-m", "devtools.demo", "--keep"]


def test_demo_keep_prints_a_world_to_play_in_and_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    env = clean_environment(tmp_path)
    output_path = tmp_path / "demo.out"
    with output_path.open("w") as output:
        demo = subprocess.Popen(
            [sys.executable, "-c", AS_A_TERMINAL_JOB, *DEMO_KEEP],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=REPO,
            start_new_session=True,
        )
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
