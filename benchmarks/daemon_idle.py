"""The daemon idle, with 1 and with 100 profiles: CPU seconds, RSS and wake-ups per minute.

Run: .venv/bin/python benchmarks/daemon_idle.py   (BENCH_SECONDS=60 by default)
Targets (issue): under 0.2 CPU-seconds per idle minute and under 80 MB RSS at 100 profiles.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from devtools.localsts import LocalSts, profile_toml, scratch_home, start_local_sts  # noqa: E402

SECONDS = float(os.environ.get("BENCH_SECONDS", "60"))
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def wakeups(pid: int) -> int:
    """Voluntary context switches of every thread: each is a thread that slept and woke. (The
    involuntary ones are other processes preempting it: they count the machine's load, not ours.)"""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        for line in (task / "status").read_text().splitlines():
            if line.startswith("voluntary_ctxt_switches"):
                total += int(line.split()[1])
    return total


def measure(profiles: int, sts: LocalSts) -> None:
    config = "".join(profile_toml(sts, f"p{i}", f'env_files = ["~/apps/{i}.env"]') for i in range(profiles))
    home, env = scratch_home(sts, "credhelper-idle-", config)
    (home / "apps").mkdir()
    daemon = subprocess.Popen([sys.executable, "-m", "credhelper", "run"], env=env, stderr=subprocess.DEVNULL)
    started = time.monotonic()
    while not all((home / "apps" / f"{i}.env").exists() for i in range(profiles)):
        if time.monotonic() - started > 120:
            raise SystemExit("the daemon did not write every target within 120 s")
        time.sleep(0.2)
    warm = time.monotonic() - started
    time.sleep(2)
    cpu0, wake0, t0 = cpu_seconds(daemon.pid), wakeups(daemon.pid), time.monotonic()
    time.sleep(SECONDS)
    cpu1, wake1, t1 = cpu_seconds(daemon.pid), wakeups(daemon.pid), time.monotonic()
    minutes = (t1 - t0) / 60
    print(
        f"{profiles:4d} profile(s): first refresh of all {warm:5.1f} s; idle {t1 - t0:.0f} s: "
        f"{(cpu1 - cpu0) / minutes:.3f} CPU-s/min, RSS {rss_mb(daemon.pid):.1f} MB, "
        f"{(wake1 - wake0) / minutes:.0f} wake-ups/min"
    )
    daemon.send_signal(signal.SIGTERM)
    daemon.wait(10)


def main() -> None:
    sts = start_local_sts()
    for profiles in (1, 100):
        measure(profiles, sts)
    sts.stop()


if __name__ == "__main__":
    main()
