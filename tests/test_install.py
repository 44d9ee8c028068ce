"""The README's install from a clone, done as a user does it: a fresh virtualenv, a real (not
editable) `pip install .`, a link in ~/.local/bin, then the installed command against STS. And the
wheel `pip` builds from a clone (what it installed): the package and nothing of the developer tools."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import UserHome

REPO = Path(__file__).resolve().parent.parent
NOT_IN_A_CLONE = shutil.ignore_patterns(
    ".git", ".venv", "node_modules", "build", "*.egg-info", "__pycache__", ".*_cache", ".hypothesis"
)


def install_like_the_readme(home: Path, clone: Path) -> Path:
    """python3 -m venv ~/.local/share/credhelper; .../bin/pip install .; ln -s into ~/.local/bin."""
    venv = home / ".local" / "share" / "credhelper"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    # The user's own pip configuration and cache (the real environment, not the test HOME).
    pip = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "--quiet", "."],
        cwd=clone,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert pip.returncode == 0, f"`pip install .` failed:\n{pip.stderr}"
    link = home / ".local" / "bin" / "credhelper"
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(venv / "bin" / "credhelper")
    return link


@pytest.mark.slow(seconds=30)
def test_install_from_a_clone_gives_a_working_command(home: UserHome, tmp_path: Path) -> None:
    clone = tmp_path / "clone"
    shutil.copytree(REPO, clone, ignore=NOT_IN_A_CLONE, symlinks=True)
    command = install_like_the_readme(home.root, clone)
    shutil.rmtree(clone)  # the installed command must not need the source tree
    env = {key: value for key, value in home.env.items() if key != "PYTHONPATH"}
    env["PATH"] = f"{command.parent}{os.pathsep}{env.get('PATH', '')}"

    help_text = subprocess.run(
        ["credhelper", "--help"], env=env, capture_output=True, text=True, timeout=60, cwd=home.root
    )
    assert help_text.returncode == 0, help_text.stderr
    assert "credential-process" in help_text.stdout

    answer = subprocess.run(
        ["credhelper", "credential-process", "bedrock"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=home.root,
    )
    assert answer.returncode == 0, answer.stderr
    record = json.loads(answer.stdout)
    assert record["Version"] == 1 and record["AccessKeyId"].startswith("ASIA")
    origin = subprocess.run(
        [str(command.resolve().parent / "python"), "-c", "import credhelper; print(credhelper.__file__)"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=home.root,
    )
    assert str(home.root / ".local" / "share" / "credhelper") in origin.stdout, origin.stdout
    assert_the_wheel_held_the_package_and_no_developer_tool(home.root / ".local" / "share" / "credhelper")


def assert_the_wheel_held_the_package_and_no_developer_tool(venv: Path) -> None:
    """What `pip install .` installed (the wheel it built from the clone, as its RECORD lists it):
    every module of credhelper/, its subpackages included, and neither the local STS nor the demo
    (devtools/), nor the tests or benchmarks."""
    (record,) = venv.glob("lib/python*/site-packages/credhelper-*.dist-info/RECORD")
    names = [line.split(",")[0] for line in record.read_text().splitlines() if line]
    outside = [
        name for name in names if not name.startswith(("credhelper/", "credhelper-", "../../../bin/"))
    ]
    assert not outside, f"the wheel holds files outside the package: {outside}"
    tools = [name for name in names if "localsts" in name or "demo" in name or "devtools" in name]
    assert not tools, f"the wheel holds developer tools: {tools}"
    modules = {path.relative_to(REPO).as_posix() for path in (REPO / "credhelper").rglob("*.py")}
    missing = modules - set(names)
    assert not missing, f"the wheel lacks modules of the package: {sorted(missing)}"
