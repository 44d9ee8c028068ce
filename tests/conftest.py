from __future__ import annotations

import compileall
import contextlib
import importlib
import json
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
from tests import forkserver
from tests.secretservice import SecretService
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
    """Compiles once, in pytest-xdist's controller (or the only process), what would otherwise be
    compiled again and again: PYTHONDONTWRITEBYTECODE=1 (set on this machine, and by the tests for
    every command they start, so that no test writes into the tree) leaves no compiled file behind.
    - credhelper: the suite starts it many hundreds of times, each start compiling its source
      anew (about a tenth of the suite's CPU).
    - the test modules, with pytest's assertion rewriting: each worker imports all of them, and
      rewrote and compiled them all itself (two seconds of CPU per worker, at its start).

    Under pytest-xdist, tests are handed out one at a time (--maxschedchunk 1 unless given): its
    load scheduling otherwise starts each worker on a run of consecutive tests, which would give
    one worker every test marked `slow`, first in the order (below)."""
    if not hasattr(config, "workerinput"):
        compileall.compile_dir(REPO / "credhelper", quiet=1)
        if config.getoption("numprocesses", None):
            _rewrite_test_modules_once()
    if config.getoption("maxschedchunk", None) is None and config.getoption("numprocesses", None):
        config.option.maxschedchunk = 1


def _rewrite_test_modules_once() -> None:
    """Imports every test module through pytest's rewriting import hook with compiled files
    written, for the workers to read. A module that fails to import is left to the workers to
    report, as they always do."""
    writes_no_bytecode = sys.dont_write_bytecode
    sys.dont_write_bytecode = False
    try:
        for path in sorted((REPO / "tests").glob("test_*.py")):
            with contextlib.suppress(Exception, pytest.skip.Exception):
                importlib.import_module(f"tests.{path.stem}")
    finally:
        sys.dont_write_bytecode = writes_no_bytecode


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The tests marked `slow` (long waits on real time, little CPU) spread over the first half of
    the run, longest first, each followed by an even share of the others in their usual order.
    Every long wait then starts early, none holds up the end of the run, and while some workers
    wait the others keep both cores busy (all of them waiting at once would leave the CPU idle)."""

    def seconds(item: pytest.Item) -> float:
        marker = item.get_closest_marker("slow")
        return float(marker.kwargs.get("seconds", 1)) if marker is not None else 0.0

    slow = sorted((item for item in items if seconds(item)), key=seconds, reverse=True)
    if not slow:
        return
    rest = [item for item in items if not seconds(item)]
    share = len(rest) // (2 * len(slow))
    ordered: list[pytest.Item] = []
    for index, item in enumerate(slow):
        ordered += [item, *rest[index * share : (index + 1) * share]]
    items[:] = ordered + rest[len(slow) * share :]  # the same order on every worker


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
        """credhelper as a user runs it, in a new session (no controlling terminal, as under an
        SDK); `variables` are set in its environment besides HOME's. The process is a fork of an
        interpreter that has imported credhelper already (tests/forkserver.py)."""
        return forkserver.run(
            args, env={**self.env, **variables}, cwd=self.root, input=input, timeout=timeout
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
def secret_service(home: UserHome, tmp_path: Path) -> Iterator[SecretService]:
    """A Secret Service on the home's session bus (tests/secretservice.py): credhelper finds it
    through DBUS_SESSION_BUS_ADDRESS, as in a desktop session."""
    service = SecretService(home.root, tmp_path / "runtime")
    home.env["DBUS_SESSION_BUS_ADDRESS"] = service.address
    yield service
    service.stop()


KEYRING_ENTRY = "bedrock-developer"


@pytest.fixture
def keyring_home(home: UserHome, secret_service: SecretService) -> UserHome:
    """The home with its long-term pair in the keyring (entry bedrock-developer), none in
    ~/.aws/credentials, and the profile reading it through source_keyring."""
    pair = {"aws_access_key_id": home.sts.access_key_id, "aws_secret_access_key": home.sts.secret_access_key}
    secret_service.store(KEYRING_ENTRY, json.dumps(pair))
    (home.root / ".aws" / "credentials").unlink()
    home.write_config(source_profile="", source_keyring=f'"{KEYRING_ENTRY}"')
    return home


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
