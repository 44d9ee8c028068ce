"""What one `.env` write costs as the file grows, against python-dotenv's own parse of the same
text measured side by side (DESIGN §11: the write path is linear, at most a few python-dotenv reads
of the file). Generated files of 64 KB to 1 MiB: many KEY=value lines, comments, quoted multi-line
values, an `export ` prefix, and credhelper's own temporary set from an earlier write.

Columns, medians in ms:
  python-dotenv  parse_stream over the text: the yardstick
  Node reader    credhelper's port of Node dotenv 16's parse
  merge+verify   merge_env_verified: the merge and its read-back under both readers
  guard          guard_long_term_keys: the long-term key and lone-secret checks
  whole write    deliver() to the file in a temp dir, as the daemon writes a target (lock, read,
                 guard, render, read-back, temp file, fsync, re-read, rename)
  ratio          whole write / python-dotenv

Then one delivery to twelve 50 KB targets, the case a SIGTERM must not cut short.

Run: .venv/bin/python benchmarks/write_path.py   (BENCH_RUNS=N samples per figure, default 3)
"""

from __future__ import annotations

import io
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bedrock_key import fake_session  # noqa: E402  (benchmarks/bedrock_key.py)
from dotenv.parser import parse_stream  # noqa: E402

from credhelper.formats.dotenv import merge_env_verified  # noqa: E402
from credhelper.formats.nodedotenv import node_bindings  # noqa: E402
from credhelper.profile import Profile, parse_profiles  # noqa: E402
from credhelper.targets.delivery import deliver  # noqa: E402
from credhelper.targets.envfile import guard_long_term_keys  # noqa: E402

RUNS = int(os.environ.get("BENCH_RUNS", "3"))
SIZES_KB = (64, 128, 256, 512, 1024)
ROLE = "arn:aws:iam::123456789012:role/BedrockAccessRole"
EARLIER_SET = (
    "AWS_REGION=us-east-1\n"
    "AWS_ACCESS_KEY_ID=ASIAIOSFODNN7EXAMPLE\n"
    "AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n"
    f"AWS_SESSION_TOKEN={'FwoGZXIvYXdzEXAMPLE' * 42}\n"
    "AWS_CREDENTIAL_EXPIRATION=2026-01-01T12:00:00Z\n"
)


def service_block(number: int) -> str:
    """About 400 bytes of what apps keep in a `.env`."""
    return (
        f"# --- service {number}: read once at start ---\n"
        f"SERVICE_{number}_URL=https://service-{number}.example.com/api/v2\n"
        f'SERVICE_{number}_CLIENT_ID="client-{number}-EXAMPLE"\n'
        f"export SERVICE_{number}_TIMEOUT=30\n"
        f"SERVICE_{number}_NAME='Service number {number}'  # shown in the UI\n"
        f'SERVICE_{number}_CERT="-----BEGIN CERTIFICATE-----\n'
        f"MIIBEXAMPLEEXAMPLEEXAMPLEEXAMPLEEXAMPLEEXAMPLEEXAMPLE{number:08d}\n"
        f'-----END CERTIFICATE-----"\n'
        f"SERVICE_{number}_EMPTY=\n"
        f"# SERVICE_{number}_DEBUG=true\n"
        "\n"
    )


def env_text(size: int) -> str:
    """A `.env` of at most `size` bytes (1 MiB is what a target may hold): the managed keys near the
    top (where a template has them), a commented-out example pair, then services up to the size."""
    parts = ["# app settings\n", EARLIER_SET, "# AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE\n\n"]
    total = sum(map(len, parts))
    number = 0
    while total + len(block := service_block(number)) <= size:
        parts.append(block)
        total += len(block)
        number += 1
    return "".join(parts)


def never_adopted(key_id: str, secret: str | None) -> bool:
    return False


def env_profile(env_files: list[Path]) -> Profile:
    settings = {"role_arn": ROLE, "region": "us-east-1", "env_files": [str(path) for path in env_files]}
    return parse_profiles({"profiles": {"bench": settings}}, "bench", "bench")["bench"]


def timed_ms(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return (time.perf_counter() - start) * 1000


def row(directory: Path, size_kb: int) -> list[float]:
    text = env_text(size_kb * 1024)
    session = fake_session(1)
    values = session.env_values("us-east-1")
    env_file = directory / f"{size_kb}.env"
    profile = env_profile([env_file])
    environ = {"HOME": str(directory)}

    def whole_write() -> None:
        report = deliver(profile, session, directory, environ, run_hook=False)
        assert report.written and not report.errors, report.errors

    steps: list[Callable[[], object]] = [
        lambda: list(parse_stream(io.StringIO(text))),
        lambda: node_bindings(text),
        lambda: merge_env_verified(text, values),
        lambda: guard_long_term_keys(env_file, text, never_adopted, "bench"),
        whole_write,
    ]
    samples: list[list[float]] = [[] for _ in steps]
    for _ in range(RUNS):  # interleaved: every column sees the same load on the machine
        for column, step in zip(samples, steps, strict=True):
            env_file.write_text(text)  # the earlier set, so that every write changes the file
            env_file.chmod(0o600)
            column.append(timed_ms(step))
    return [statistics.median(column) for column in samples]


def twelve_targets_ms(directory: Path) -> float:
    files = [directory / f"app{number}.env" for number in range(12)]
    text = env_text(50 * 1024)
    profile = env_profile(files)
    samples = []
    for run in range(RUNS):
        for path in files:
            path.write_text(text)
            path.chmod(0o600)
        start = time.perf_counter()
        report = deliver(profile, fake_session(run % 10), directory, {"HOME": str(directory)}, run_hook=False)
        samples.append((time.perf_counter() - start) * 1000)
        assert len(report.written) == 12 and not report.errors, report.errors
    return statistics.median(samples)


def main() -> None:
    print(f"medians of {RUNS} runs, in ms; ratio = whole write / one python-dotenv parse")
    header = ("size", "python-dotenv", "Node reader", "merge+verify", "guard", "whole write", "ratio")
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("-" * (len(name) + 2) for name in header) + "|")
    with tempfile.TemporaryDirectory(prefix="credhelper-bench-") as scratch:
        for size_kb in SIZES_KB:
            figures = row(Path(scratch), size_kb)
            size = f"{size_kb // 1024} MiB" if size_kb >= 1024 else f"{size_kb} KB"
            cells = [size, *(f"{figure:,.0f}" for figure in figures), f"{figures[-1] / figures[0]:.1f}"]
            print("| " + " | ".join(cells) + " |", flush=True)
        print(f"one delivery to twelve 50 KB targets: {twelve_targets_ms(Path(scratch)):,.0f} ms")


if __name__ == "__main__":
    main()
