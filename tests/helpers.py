from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from tests.conftest import UserHome


def cached_record(home: UserHome, profile: str = "bedrock") -> dict[str, Any]:
    data = json.loads((home.cache_dir / f"{profile}.json").read_text())
    record: dict[str, Any] = data["credentials"]
    return record


def secrets_of(home: UserHome, profile: str = "bedrock") -> list[str]:
    """The secret parts of the cached credentials, and the source key's secret."""
    found = [home.sts.secret_access_key]
    path = home.cache_dir / f"{profile}.json"
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


def read_env(path: Path) -> dict[str, str | None]:
    from dotenv import dotenv_values

    return dict(dotenv_values(path))
