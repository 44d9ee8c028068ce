"""credential-process on a cache hit against a bare interpreter start, both on the interpreter of
the `credhelper` console script of a regular (non-editable) install; the long way (configuration
parsed, cache entry validated) and botocore assuming the same role by itself beside them. Prints
medians of whole-process runs, and the modules a hit imports beyond `python -c pass`.

Run: .venv/bin/python benchmarks/credential_process.py

It builds a throwaway virtualenv and runs `pip install` of a copy of this source tree into it
(the project's own directory stays untouched); set BENCH_VENV=DIR to build it there and reuse it on
the next run (it is reinstalled each time, so it always holds this tree's code).

Target: a hit within 1.3x of `python -c pass`.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from devtools.localsts import profile_toml, scratch_home, start_local_sts  # noqa: E402

RUNS = int(os.environ.get("BENCH_RUNS", "40"))
TARGET = 1.3


def build_venv(venv: Path) -> Path:
    """`venv` holding a regular install of this tree; returns its `credhelper` console script."""
    if not (venv / "bin" / "python").exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    # A current pip: its console scripts no longer import `re` (the one bundled with Python 3.11 does).
    quietly([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--upgrade", "pip"])
    with tempfile.TemporaryDirectory(prefix="credhelper-src-") as source:
        for name in ("pyproject.toml", "README.md", "LICENSE"):
            if (ROOT / name).exists():
                shutil.copy2(ROOT / name, source)
        shutil.copytree(ROOT / "credhelper", Path(source) / "credhelper")
        pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet"]
        quietly([*pip, source])  # with its dependencies: a cold call needs boto3
        quietly([*pip, "--force-reinstall", "--no-deps", source])  # this tree's code
    return venv / "bin" / "credhelper"


def quietly(argv: list[str]) -> None:
    """Run a setup step; its output only when it fails."""
    result = subprocess.run(argv, capture_output=True, text=True)
    if result.returncode:
        sys.exit(f"{' '.join(argv)} failed:\n{result.stdout}{result.stderr}")


def whole_process_ms(argv: list[str], env: dict[str, str], before: Callable[[], None] | None = None) -> float:
    if before is not None:
        before()
    start = time.perf_counter()
    subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL)
    return (time.perf_counter() - start) * 1000


def medians(
    commands: dict[str, tuple[list[str], Callable[[], None] | None]], env: dict[str, str]
) -> dict[str, float]:
    """Runs interleaved, so that a change in machine load falls on every figure alike."""
    samples: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(RUNS):
        for name, (argv, before) in commands.items():
            samples[name].append(whole_process_ms(argv, env, before))
    return {name: statistics.median(values) for name, values in samples.items()}


def imported_modules(argv: list[str], env: dict[str, str]) -> list[str]:
    result = subprocess.run(argv, env={**env, "PYTHONPROFILEIMPORTTIME": "1"}, capture_output=True, text=True)
    return [
        line.split("|")[-1].strip() for line in result.stderr.splitlines() if line.startswith("import time:")
    ][1:]


def hit_imports(python: str, script: Path, env: dict[str, str]) -> list[str]:
    bare = set(imported_modules([python, "-c", "pass"], env))
    hit = imported_modules([python, str(script), "credential-process", "bedrock"], env)
    return [name for name in hit if name not in bare]


def main() -> None:
    own_venv = os.environ.get("BENCH_VENV")
    venv = Path(own_venv) if own_venv else Path(tempfile.mkdtemp(prefix="credhelper-bench-venv-"))
    print(f"installing this tree into {venv} ...", flush=True)
    script = build_venv(venv)
    python = str(venv / "bin" / "python")

    sts = start_local_sts()
    home, env = scratch_home(sts, "credhelper-bench-", profile_toml(sts))
    env.pop("PYTHONPATH", None)  # the installed package, not this tree
    (home / ".aws" / "config").write_text(
        f"[profile assume]\nrole_arn = {sts.role_arn}\nsource_profile = bedrock-developer\n"
        "role_session_name = bench\nregion = us-east-1\n"
    )
    env["AWS_ENDPOINT_URL_STS"] = sts.url
    config = home / ".config" / "credhelper" / "config.toml"
    settled = time.time() - 60
    os.utime(config, (settled, settled))  # an answer is recorded only against a settled configuration
    hit = [str(script), "credential-process", "bedrock"]
    subprocess.run(hit, env=env, check=True, stdout=subprocess.DEVNULL)  # cold: one refresh
    subprocess.run(hit, env=env, check=True, stdout=subprocess.DEVNULL)  # the long way: records the answer
    answer = home / ".cache" / "credhelper" / "bedrock.answer"
    assert answer.exists(), "no ready answer was recorded"

    figures = medians(
        {
            "bare": ([python, "-c", "pass"], None),
            "hit": (hit, None),
            "long": (hit, lambda: answer.unlink(missing_ok=True)),
            "botocore": (
                [
                    python,
                    "-c",
                    "import botocore.session; botocore.session.Session(profile='assume')"
                    ".get_credentials().get_frozen_credentials()",
                ],
                None,
            ),
        },
        env,
    )
    bare = figures["bare"]
    ratio = figures["hit"] / bare
    print(f"interpreter: {python} (regular install); runs per figure: {RUNS} (medians, whole process)")
    rows = [
        ("python -c pass", bare, ""),
        (
            "credhelper credential-process (hit)",
            figures["hit"],
            f"; target {TARGET}x: " + ("met" if ratio <= TARGET else "NOT met"),
        ),
        ("credential-process the long way", figures["long"], " (no ready answer)"),
        ("botocore assuming the role by itself", figures["botocore"], ""),
    ]
    for label, ms, note in rows:
        print(f"{label + ':':<40}{ms:7.1f} ms  ({ms / bare:.2f}x bare{note})")
    print("modules a hit imports beyond `python -c pass`, console script included:")
    print("  " + ", ".join(hit_imports(python, script, env)))
    sts.stop()
    shutil.rmtree(home, ignore_errors=True)
    if not own_venv:
        shutil.rmtree(venv, ignore_errors=True)


if __name__ == "__main__":
    main()
