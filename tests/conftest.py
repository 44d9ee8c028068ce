from __future__ import annotations

import compileall
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from devtools.localsts import LocalSts, start_local_sts
from tests.stsproxy import StsProxy

if TYPE_CHECKING:
    from tests.daemonproc import DaemonProcess

AGENT0_ENV_DEFAULT = """\
# Agent0 configuration
AGENT_DATABASE_URL="file:./agent0.db"
COOKIE_SECRET=change-me-to-a-long-random-string
AUTH_SERVER=http://localhost:5000

# OAuth client for the resource server
CLIENT_ID=agent0-client
CLIENT_SECRET="s3cr3t with spaces"
REDIS_SERVER=redis://localhost:6379

# AWS Bedrock (see docs/bedrock-credentials-guide.md)
AWS_REGION=us-east-1
AWS_ACCESS_KEY_ID=
AWS_SECRET_ACCESS_KEY=
# AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE
# AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY
"""


REPO = Path(__file__).resolve().parent.parent


def pytest_configure(config: pytest.Config) -> None:
    """Byte-compiles credhelper once, before any test (in pytest-xdist's controller, or the only
    process): the suite starts credhelper many hundreds of times, each with
    PYTHONDONTWRITEBYTECODE=1 so that no test writes into the tree, and without the compiled
    files each start would compile credhelper's source anew (about a tenth of the suite's CPU).

    Under pytest-xdist, tests are handed out one at a time (--maxschedchunk 1 unless given): its
    load scheduling otherwise starts each worker on a run of consecutive tests, which would give
    one worker every test marked `slow`, first in the order (below)."""
    if not hasattr(config, "workerinput"):
        compileall.compile_dir(REPO / "credhelper", quiet=1)
    if config.getoption("maxschedchunk", None) is None and config.getoption("numprocesses", None):
        config.option.maxschedchunk = 1


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The tests marked `slow` first, longest first, then the rest in their usual order: those that
    wait on real time start at once on every worker, side by side, and the short ones fill in
    around them, instead of one starting last and holding up the end of the run."""

    def seconds(item: pytest.Item) -> float:
        marker = item.get_closest_marker("slow")
        return float(marker.kwargs.get("seconds", 1)) if marker is not None else 0.0

    items.sort(key=seconds, reverse=True)  # stable: the same order on every worker


@pytest.fixture(scope="session")
def local_sts() -> Iterator[LocalSts]:
    sts = start_local_sts()
    yield sts
    sts.stop()


@pytest.fixture
def proxy(local_sts: LocalSts) -> Iterator[StsProxy]:
    server = StsProxy(local_sts.url)
    yield server
    server.close()


@dataclass
class UserHome:
    """A temp HOME with a source profile, a credhelper config and an agent0-like app."""

    root: Path
    sts: LocalSts
    proxy: StsProxy
    env: dict[str, str] = field(default_factory=dict)

    @property
    def app_env(self) -> Path:
        return self.root / "app" / ".env"

    @property
    def config_file(self) -> Path:
        return self.root / ".config" / "credhelper" / "config.toml"

    @property
    def cache_dir(self) -> Path:
        return self.root / ".cache" / "credhelper"

    def write_config(self, extra: str = "", **overrides: str) -> None:
        settings = {
            "role_arn": f'"{self.sts.role_arn}"',
            "source_profile": '"bedrock-developer"',
            "region": '"us-east-1"',
            "sts_endpoint_url": f'"{self.proxy.url}"',
            "env_files": '["~/app/.env"]',
            "role_session_name": '"credhelper-test"',
        }
        settings.update(overrides)
        body = "\n".join(f"{k} = {v}" for k, v in settings.items() if v is not None and v != "")
        self.config_file.parent.mkdir(parents=True, exist_ok=True)
        self.config_file.write_text(f"[profiles.bedrock]\n{body}\n{extra}")

    def run(
        self, *args: str, timeout: float = 60, input: str | None = None, **variables: str
    ) -> subprocess.CompletedProcess[str]:
        """credhelper as a user runs it; `variables` are set in its environment besides HOME's."""
        return subprocess.run(
            [sys.executable, "-m", "credhelper", *args],
            env={**self.env, **variables},
            capture_output=True,
            text=True,
            timeout=timeout,
            input=input,
            cwd=self.root,
            start_new_session=True,  # no controlling terminal, as under an SDK
        )

    def snapshot(self) -> dict[str, bytes]:
        """Every file under HOME except the cache: what must stay untouched after a failure."""
        files: dict[str, bytes] = {}
        for path in sorted(self.root.rglob("*")):
            if path.is_file() and self.cache_dir not in path.parents:
                files[str(path.relative_to(self.root))] = path.read_bytes()
        return files


def clean_environment(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "CREDHELPER_", "XDG_"))}
    env.update(HOME=str(home), PYTHONDONTWRITEBYTECODE="1", LC_ALL="C.UTF-8")
    env["PYTHONPATH"] = str(REPO)
    return env


@pytest.fixture
def home(tmp_path: Path, local_sts: LocalSts, proxy: StsProxy) -> UserHome:
    root = tmp_path / "home"
    (root / ".aws").mkdir(parents=True, mode=0o700)
    (root / ".aws" / "credentials").write_text(
        textwrap.dedent(f"""\
        [bedrock-developer]
        aws_access_key_id = {local_sts.access_key_id}
        aws_secret_access_key = {local_sts.secret_access_key}
        """)
    )
    os.chmod(root / ".aws" / "credentials", 0o600)
    (root / "app").mkdir()
    (root / "app" / ".env").write_text(AGENT0_ENV_DEFAULT)
    os.chmod(root / "app" / ".env", 0o600)
    user = UserHome(root=root, sts=local_sts, proxy=proxy, env=clean_environment(root))
    user.write_config()
    return user


@pytest.fixture
def daemons(home: UserHome) -> Iterator[list[DaemonProcess]]:
    """Daemons a test starts: stopped at its end, and their logs checked for secrets."""
    from tests.helpers import assert_no_secret

    started: list[DaemonProcess] = []
    yield started
    for daemon in started:
        daemon.stop()
    for daemon in started:
        assert_no_secret(home, daemon.log)
