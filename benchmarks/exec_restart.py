"""`credhelper exec`: how long a restart leaves the app down, and what plain exec adds to a run.

- Restart gap: from the old child's last instruction (its SIGTERM handler, just before it exits)
  to the new child's first, under `--restart-on-refresh` with a renewal every ~5 s (the STS call
  happens before the old child is stopped, so it is not in the gap). The gap includes starting a
  Python interpreter for the new child; "bare" below is that part.
- Plain overhead: `credhelper exec PROFILE -- python -c pass` against `python -c pass` itself,
  medians of whole runs on a warm cache.

Run: .venv/bin/python benchmarks/exec_restart.py   (credhelper from a regular install in a throwaway
virtualenv, as users run it; BENCH_VENV=DIR builds it there and reuses it)

Targets: a gap under 200 ms beyond the child's own shutdown; plain overhead under 2x a bare
interpreter start.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from credential_process import build_venv  # noqa: E402

from devtools.localsts import profile_toml, scratch_home, start_local_sts  # noqa: E402

RUNS = int(os.environ.get("BENCH_RUNS", "30"))
RESTARTS = int(os.environ.get("BENCH_RESTARTS", "4"))

CHILD = """\
import time; started = time.time()
import json, os, signal, sys
def record(**event):
    with open(sys.argv[1], "a") as log:
        log.write(json.dumps(event) + "\\n")
def on_term(signum, frame):
    record(event="exit", time=time.time())
    os._exit(0)
signal.signal(signal.SIGTERM, on_term)
record(event="start", time=started)
while True:
    signal.pause()
"""


def median_ms(argv: list[str], env: dict[str, str]) -> float:
    samples = []
    for _ in range(RUNS):
        start = time.perf_counter()
        subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL)
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


def interpreter_start_ms(env: dict[str, str]) -> float:
    """From launching a Python interpreter to its first line: the part of a restart gap that is
    the new child's own start."""
    samples = []
    for _ in range(RUNS):
        launched = time.time()
        first_line = subprocess.run(
            [sys.executable, "-c", "import time; print(time.time())"],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        samples.append((float(first_line) - launched) * 1000)
    return statistics.median(samples)


def restart_gaps_ms(helper: list[str], env: dict[str, str], home: Path) -> list[float]:
    log = home / "restarts.jsonl"
    process = subprocess.Popen(
        [*helper, "exec", "fast", "--restart-on-refresh", "--", sys.executable, "-c", CHILD, str(log)],
        env=env,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 10 * (RESTARTS + 1)
    events: list[dict[str, object]] = []
    while time.monotonic() < deadline:
        events = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
        if sum(e["event"] == "start" for e in events) > RESTARTS:
            break
        time.sleep(0.2)
    process.send_signal(signal.SIGTERM)
    process.wait(30)
    gaps = []
    for before, after in itertools.pairwise(events):
        if before["event"] == "exit" and after["event"] == "start":
            gaps.append((float(after["time"]) - float(before["time"])) * 1000)  # type: ignore[arg-type]
    return gaps


def main() -> None:
    sts = start_local_sts()
    fast = "duration_seconds = 900\nrefresh_before_seconds = 895\n"
    config = profile_toml(sts) + profile_toml(sts, "fast", fast)
    home, env = scratch_home(sts, "credhelper-bench-", config)
    env.pop("PYTHONPATH", None)  # the installed package, not this tree
    own_venv = os.environ.get("BENCH_VENV")
    venv = Path(own_venv) if own_venv else Path(tempfile.mkdtemp(prefix="credhelper-bench-venv-"))
    print(f"installing this tree into {venv} ...", flush=True)
    helper = [str(build_venv(venv))]
    subprocess.run([*helper, "exec", "bedrock", "--", "true"], env=env, check=True)  # warm the cache

    bare = median_ms([sys.executable, "-c", "pass"], env)
    wrapped = median_ms([*helper, "exec", "bedrock", "--", sys.executable, "-c", "pass"], env)
    overhead = wrapped - bare
    child_start = interpreter_start_ms(env)
    gaps = restart_gaps_ms(helper, env, home)
    print(f"runs per figure: {RUNS} (medians, whole process); restarts measured: {len(gaps)}")
    print(f"python -c pass:                               {bare:7.1f} ms")
    print(f"credhelper exec bedrock -- python -c pass:    {wrapped:7.1f} ms")
    print(
        f"plain exec overhead:                          {overhead:7.1f} ms  "
        f"({overhead / bare:.2f}x bare; target 2x)"
    )
    if gaps:
        beyond = statistics.median(gaps) - child_start
        print(
            f"restart gap (old exit -> new first line):     {statistics.median(gaps):7.1f} ms median, "
            f"{max(gaps):.1f} ms max"
        )
        print(f"  of which the new interpreter's own start:   {child_start:7.1f} ms (launch to first line)")
        print(f"  credhelper's part:                          {beyond:7.1f} ms  (target under 200 ms)")
    sts.stop()


if __name__ == "__main__":
    main()
