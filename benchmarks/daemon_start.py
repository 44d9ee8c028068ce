"""`credhelper run` from start to READY=1 with every STS answer 150 ms away, at 1 and at 100 profiles
(100 apps, each `.env` in a directory of its own): time to READY=1, peak RSS, then idle CPU,
wake-ups and the threads left, by name.

Run: .venv/bin/python benchmarks/daemon_start.py   (BENCH_SECONDS=60 of idle by default)
Targets (issue): READY=1 under 3 s and peak RSS under 80 MB at 100 profiles; idle no worse than
0.01 CPU-s/min, 14 wake-ups/min, 49 MB and 106 threads.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from daemon_idle import cpu_seconds, rss_mb, wakeups  # noqa: E402

from devtools.localsts import LocalSts, profile_toml, scratch_home, start_local_sts  # noqa: E402
from tests.stsproxy import Fault, StsProxy  # noqa: E402

SECONDS = float(os.environ.get("BENCH_SECONDS", "60"))
STS_DELAY_SECONDS = 0.15
READY_TARGET_SECONDS = 3.0
RSS_TARGET_MB = 80.0


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def thread_names(pid: int) -> Counter[str]:
    names: Counter[str] = Counter()
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):  # the thread ended meanwhile
            names[(task / "comm").read_text().strip()] += 1
    return names


def wait_ready(listener: socket.socket, daemon: subprocess.Popen[bytes]) -> None:
    while True:
        try:
            if listener.recv(4096) == b"READY=1":
                return
        except TimeoutError:
            raise SystemExit(f"no READY=1 within 120 s (daemon exit status {daemon.poll()})") from None


def measure(profiles: int, sts: LocalSts) -> bool:
    """Prints one profile count's figures; True when its targets are met."""
    config = "".join(profile_toml(sts, f"p{i}", f'env_files = ["~/apps/{i}/.env"]') for i in range(profiles))
    home, env = scratch_home(sts, "credhelper-start-", config)
    for i in range(profiles):
        (home / "apps" / str(i)).mkdir(parents=True)
    address = str(home / "notify.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(address)
    listener.settimeout(120)
    started = time.monotonic()
    daemon = subprocess.Popen(
        [sys.executable, "-m", "credhelper", "run"],
        env=dict(env, NOTIFY_SOCKET=address),
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_ready(listener, daemon)
        ready = time.monotonic() - started
        missing = [i for i in range(profiles) if not (home / "apps" / str(i) / ".env").exists()]
        if missing:
            raise SystemExit(f"READY=1 came before {len(missing)} .env file(s) were written")
        time.sleep(2)
        cpu0, wake0, t0 = cpu_seconds(daemon.pid), wakeups(daemon.pid), time.monotonic()
        time.sleep(SECONDS)
        cpu1, wake1, t1 = cpu_seconds(daemon.pid), wakeups(daemon.pid), time.monotonic()
        minutes = (t1 - t0) / 60
        threads = thread_names(daemon.pid)
        peak = peak_rss_mb(daemon.pid)
        print(
            f"{profiles:4d} profile(s): READY=1 after {ready:.2f} s; peak RSS {peak:.1f} MB; "
            f"idle {t1 - t0:.0f} s: {(cpu1 - cpu0) / minutes:.3f} CPU-s/min, "
            f"RSS {rss_mb(daemon.pid):.1f} MB, {(wake1 - wake0) / minutes:.0f} wake-ups/min, "
            f"{sum(threads.values())} threads"
        )
        print("      threads: " + ", ".join(f"{name} x{count}" for name, count in sorted(threads.items())))
    finally:
        listener.close()
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(10)
    return ready < READY_TARGET_SECONDS and peak < RSS_TARGET_MB


def main() -> None:
    sts = start_local_sts()
    proxy = StsProxy(sts.url)
    proxy.add_fault(Fault("delay", action=None, seconds=STS_DELAY_SECONDS))
    behind_proxy = dataclasses.replace(sts, url=proxy.url)
    print(f"every STS answer delayed {STS_DELAY_SECONDS * 1000:.0f} ms by the proxy")
    met = [measure(profiles, behind_proxy) for profiles in (1, 100)]
    proxy.close()
    sts.stop()
    verdict = "met" if all(met) else "NOT met"
    print(f"targets (READY=1 < {READY_TARGET_SECONDS:.0f} s, peak RSS < {RSS_TARGET_MB:.0f} MB): {verdict}")


if __name__ == "__main__":
    main()
