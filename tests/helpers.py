from __future__ import annotations

import contextlib
import json
import logging
import os
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from credhelper.paths import profile_file
from tests.conftest import UserHome


def cached_record(home: UserHome, profile: str = "bedrock") -> dict[str, Any]:
    data = json.loads(Path(profile_file(str(home.cache_dir), profile, "json")).read_text())
    record: dict[str, Any] = data["credentials"]
    return record


def secrets_of(home: UserHome, profile: str = "bedrock") -> list[str]:
    """The secret parts of the cached credentials, and the source key's secret."""
    found = [home.sts.secret_access_key]
    path = Path(profile_file(str(home.cache_dir), profile, "json"))
    if path.exists():
        record = cached_record(home, profile)
        found += [record["SecretAccessKey"], record["SessionToken"]]
    return found


def assert_no_secret(home: UserHome, *texts: str) -> None:
    for secret in secrets_of(home):
        for text in texts:
            assert secret not in text, "a secret reached the output"


def assert_one_line_failure(result: subprocess.CompletedProcess[str], exit_code: int, *needles: str) -> str:
    assert result.returncode == exit_code, (result.returncode, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert lines[0].startswith("credhelper: error: ")
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


@contextlib.contextmanager
def as_the_user(home: UserHome, **variables: str) -> Iterator[None]:
    """This process in `home`'s environment (its HOME, no inherited AWS variables) and directory,
    as `home.run` starts credhelper; everything restored after."""
    saved_environ, saved_directory = dict(os.environ), os.getcwd()
    os.environ.clear()
    os.environ.update({**home.env, **variables})
    os.chdir(home.root)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved_environ)
        os.chdir(saved_directory)


def refreshed(home: UserHome, profile: str = "bedrock", **variables: str) -> None:
    """What `credhelper refresh PROFILE` leaves (the cache entry, every target written, hooks run),
    made through the same code in this process: for the tests whose subject comes after it, which
    need no process of its own for it. The command's own behaviour is tested as users run it
    (test_cli_refresh and others)."""
    from credhelper.cache import Cache, cache_dir_path
    from credhelper.config import load_config
    from credhelper.refresher import Refresher
    from credhelper.supply import refresh_and_deliver
    from credhelper.targets.delivery import check_targets

    with as_the_user(home, **variables):
        (selected,) = load_config(None, os.environ).select([profile])
        check_targets(selected, os.environ)
        refresher = Refresher(Cache(cache_dir_path(os.environ)))
        report = refresh_and_deliver(refresher, selected, os.environ).report
    assert not report.errors, [str(error) for error in report.errors]


def in_process(
    home: UserHome, *args: str, input: str | None = None, **variables: str
) -> subprocess.CompletedProcess[str]:
    """`credhelper ARGS` through the CLI's own entry (`cli.run`: its one-line errors and exit
    codes) in this process, as `home.run` would start it: HOME's environment and directory, stdin,
    stdout and stderr its own. For the commands that set up a test's subject (an `init`, an
    `adopt-keys` before the command under test), which need no process of their own. Each
    command's own behaviour is tested as users run it, in a process."""
    from click.testing import CliRunner

    from credhelper.cli import run

    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        with as_the_user(home, **variables), CliRunner().isolation(input=input) as (out, err, _):
            code = run(list(args))
            stdout, stderr = out.getvalue().decode(), err.getvalue().decode()
    finally:
        root.handlers[:], root.level = handlers, level  # the CLI sets up logging for its process
    return subprocess.CompletedProcess(["credhelper", *args], code, stdout, stderr)


def read_env(path: Path) -> dict[str, str | None]:
    from dotenv import dotenv_values

    return dict(dotenv_values(path))


def roots_own_directory(prefix: str) -> Path:
    """A fresh directory in one of root's own that no one else may write (for the tests of root
    keeping another user's files: the way to them must be one no third user controls, and /tmp,
    where the tests' own directories live, is not)."""
    for parent in ("/var/lib", "/srv", "/opt"):
        info = os.stat(parent) if os.path.isdir(parent) else None
        if info is not None and info.st_uid == 0 and not info.st_mode & 0o022:
            path = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
            os.chmod(path, 0o755)
            return path
    raise RuntimeError("no directory of root's that no one else may write: /var/lib, /srv or /opt")


def ready_answer_recorded(home: UserHome, profile: str = "bedrock", **variables: str) -> None:
    """A warm cache and the ready answer of `credential-process PROFILE` recorded with `variables`
    in the environment; the call after the recording one is served from it."""
    past = 1_000_000_000
    os.utime(home.config_file, (past, past))  # settled: an answer is recorded against it
    refreshed(home, profile, **variables)
    for _ in range(2):  # the long way records the ready answer, the next call is served from it
        result = home.run("credential-process", profile, **variables)
        assert result.returncode == 0, result.stderr
    assert (home.cache_dir / f"{profile}.answer").exists()
