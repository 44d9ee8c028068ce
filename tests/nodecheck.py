"""Reading files with Node's dotenv, the reader agent0 uses."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

NODE_DIR = Path(__file__).resolve().parent / "node"


def node_dotenv_parse(paths: list[Path]) -> list[dict[str, str]]:
    node = shutil.which("node")
    assert node, "Node.js is required for these tests; `sh dev test` installs it"
    assert (NODE_DIR / "node_modules" / "dotenv").is_dir(), "run `sh dev test` to install Node's dotenv"
    result = subprocess.run(
        [node, str(NODE_DIR / "read-env.js"), *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    parsed: list[dict[str, str]] = json.loads(result.stdout)
    return parsed
