"""Running `credhelper run` as a subprocess, the way systemd does."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from tests import forkserver
from tests.conftest import UserHome
from tests.forkserver import ForkedProcess


def wait_for(predicate: Callable[[], Any], timeout: float, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s")


class DaemonProcess:
    def __init__(
        self,
        home: UserHome,
        *args: str,
        env: dict[str, str] | None = None,
        wrapper: Sequence[str] = (),
    ) -> None:
        """`wrapper`: a command that execs the daemon's argv given after it (same pid), such as
        `unshare -m sh -c '...; exec "$@"' sh`."""
        self.home = home
        self.log_path = home.root.parent / f"daemon-{time.monotonic_ns()}.log"
        self.log_file = self.log_path.open("w")
        argv = ["--log-level", "info", "run", *args]
        self.process: subprocess.Popen[bytes] | ForkedProcess
        if wrapper:
            self.process = subprocess.Popen(
                [*wrapper, sys.executable, "-m", "credhelper", *argv],
                env=env or home.env,
                stdout=self.log_file,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=home.root,
                start_new_session=True,
            )
        else:
            with open(os.devnull, "rb") as nothing:
                self.process = forkserver.popen(
                    argv,
                    env=env or home.env,
                    cwd=home.root,
                    stdin=nothing.fileno(),
                    stdout=self.log_file.fileno(),
                    stderr=self.log_file.fileno(),
                )

    def wait_running(self, timeout: float = 30.0) -> None:
        wait_for(lambda: "running:" in self.log, timeout)

    @property
    def log(self) -> str:
        return self.log_path.read_text()

    def signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def stop(self, timeout: float = 20.0) -> int:
        """SIGTERM, then its exit status. The daemon's contract is to stop within 2 s; `timeout`
        only bounds a hang, with room for a machine busy with other work."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()
            self.log_file.close()

    def env_key_id(self, path: Path | None = None) -> str | None:
        from tests.helpers import read_env

        try:
            return read_env(path or self.home.app_env).get("AWS_ACCESS_KEY_ID") or None
        except FileNotFoundError:
            return None

    def cached_key_id(self) -> str | None:
        try:
            data = json.loads((self.home.cache_dir / "bedrock.json").read_text())
        except (FileNotFoundError, ValueError):
            return None
        key_id: str = data["credentials"]["AccessKeyId"]
        return key_id

    def wait_written(self, timeout: float = 30.0) -> str:
        self.wait_running(timeout)
        key_id: str = wait_for(lambda: (k := self.env_key_id()) and k.startswith("ASIA") and k, timeout)
        return key_id
