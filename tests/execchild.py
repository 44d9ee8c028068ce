"""A child for `credhelper exec` tests: records its start (pid, key id, which earlier processes are
still alive), every signal it receives, and its exit, one JSON line each, to the file in argv[1].

Options: --ignore-term (SIGTERM is recorded and otherwise ignored), --grandchild (starts a
`sleep` in its process group), --exit N (exits with N at once), --cat (copies stdin to stdout).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from types import FrameType

RECORDED = ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGWINCH")


def record(path: str, **event: object) -> None:
    line = json.dumps({"pid": os.getpid(), "time": time.time(), **event}) + "\n"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def bedrock_key_id(token: str | None) -> str | None:
    """The access key id a short-term Bedrock API key was signed with (none for no key)."""
    if not token or not token.startswith("bedrock-api-key-"):
        return None
    query = base64.b64decode(token.removeprefix("bedrock-api-key-")).decode().partition("?")[2]
    fields = dict(field.partition("=")[::2] for field in query.split("&"))
    return fields.get("X-Amz-Credential", "").split("%2F")[0] or None


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def earlier_pids(path: str) -> list[int]:
    pids: list[int] = []
    if os.path.exists(path):
        with open(path) as lines:
            for line in lines:
                event = json.loads(line)
                if event["event"] == "start":
                    pids.append(event["pid"])
                    pids.extend(event.get("grandchildren", []))
    return pids


def main(argv: list[str]) -> int:
    path, options = argv[0], argv[1:]
    if "--cat" in options:
        shutil.copyfileobj(sys.stdin.buffer, sys.stdout.buffer)
        return 0
    if "--exit" in options:
        return int(options[options.index("--exit") + 1])
    ignore_term = "--ignore-term" in options

    def on_signal(signum: int, frame: FrameType | None) -> None:
        record(path, event="signal", signal=signal.Signals(signum).name)
        if signum == signal.SIGTERM and not ignore_term:
            record(path, event="exit")
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGTERM)

    for name in RECORDED:
        signal.signal(getattr(signal, name), on_signal)
    grandchildren = []
    if "--grandchild" in options:
        grandchildren.append(subprocess.Popen(["sleep", "1000"]).pid)
    earlier = earlier_pids(path)
    record(
        path,
        event="start",
        pgid=os.getpgrp(),
        key=os.environ.get("AWS_ACCESS_KEY_ID"),
        bedrock_key=bedrock_key_id(os.environ.get("AWS_BEARER_TOKEN_BEDROCK")),
        grandchildren=grandchildren,
        still_alive=[pid for pid in earlier if alive(pid)],
        argv=sys.argv[1:],
        foreground=os.isatty(0) and os.tcgetpgrp(0) == os.getpgrp(),
        aws={
            k: ("<set>" if "SECRET" in k or "TOKEN" in k else v) for k, v in os.environ.items() if "AWS" in k
        },
    )
    while True:
        signal.pause()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
