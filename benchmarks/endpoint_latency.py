"""The container credentials endpoint's latency: p50 and p99 over 1,000 requests (a new connection
each, as SDKs make), one client and 20 at once, beside the SDKs' timeouts (JS SDK 1 s, botocore 2 s);
then the same while another process holds 300 idle connections open (reopening each one the
endpoint drops), with the daemon's thread count and open descriptors meanwhile.

Run: .venv/bin/python benchmarks/endpoint_latency.py
"""

from __future__ import annotations

import http.client
import json
import os
import selectors
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from devtools.localsts import profile_toml, scratch_home, start_local_sts  # noqa: E402

REQUESTS = 1000
IDLE_CONNECTIONS = 300
HOLD_SECONDS_AT_MOST = 300


def one_request(port: int, path: str, token: str) -> float:
    start = time.perf_counter()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    connection.request("GET", path, headers={"Authorization": token})
    response = connection.getresponse()
    response.read()
    connection.close()
    if response.status != 200:
        raise SystemExit(f"HTTP {response.status}")
    return (time.perf_counter() - start) * 1000


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def measure(port: int, path: str, token: str) -> dict[str, list[float]]:
    serial = [one_request(port, path, token) for _ in range(REQUESTS)]
    concurrent: list[float] = []
    lock = threading.Lock()

    def client() -> None:
        for _ in range(REQUESTS // 20):
            took = one_request(port, path, token)
            with lock:
                concurrent.append(took)

    threads = [threading.Thread(target=client) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {"1 client": serial, "20 clients at once": concurrent}


def report(title: str, runs: dict[str, list[float]]) -> None:
    print(title)
    for label, samples in runs.items():
        print(
            f"{label:>20}: {len(samples)} requests, p50 {statistics.median(samples):.2f} ms, "
            f"p99 {percentile(samples, 0.99):.2f} ms, max {max(samples):.2f} ms "
            "(timeouts: JS SDK 1000 ms, botocore 2000 ms)"
        )


def process_counts(pid: int) -> tuple[int, int]:
    """The daemon's threads and open file descriptors, from /proc."""
    return len(os.listdir(f"/proc/{pid}/task")), len(os.listdir(f"/proc/{pid}/fd"))


def sampled_while(
    pid: int, work: Callable[[], dict[str, list[float]]]
) -> tuple[dict[str, list[float]], int, int]:
    """Run `work` while sampling the daemon every 20 ms; the largest counts seen."""
    most = [0, 0]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.02):
            threads, descriptors = process_counts(pid)
            most[0], most[1] = max(most[0], threads), max(most[1], descriptors)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        runs = work()
    finally:
        done.set()
        sampler.join()
    return runs, most[0], most[1]


def hold_idle(port: int, count: int) -> None:
    """Another process: keep `count` idle connections open until stdin closes (or a bounded time)."""
    selector = selectors.DefaultSelector()
    selector.register(sys.stdin, selectors.EVENT_READ, None)
    reopened = 0

    def open_one() -> None:
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ, sock)

    for _ in range(count):
        open_one()
    print("holding", flush=True)
    give_up = time.monotonic() + HOLD_SECONDS_AT_MOST
    while time.monotonic() < give_up:
        for key, _ in selector.select(1.0):
            if key.data is None:
                print(f"reopened {reopened}", flush=True)
                return
            sock = key.data
            try:
                closed = sock.recv(1) == b""
            except OSError:
                closed = True
            if closed:
                selector.unregister(sock)
                sock.close()
                open_one()
                reopened += 1


def main() -> None:
    sts = start_local_sts()
    home, env = scratch_home(sts, "credhelper-endpoint-", profile_toml(sts))
    daemon = subprocess.Popen([sys.executable, "-m", "credhelper", "run", "--serve", "127.0.0.1:0"], env=env)
    try:
        endpoint_file = home / ".cache" / "credhelper" / "endpoint.json"
        deadline = time.monotonic() + 60
        while not endpoint_file.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        info = json.loads(endpoint_file.read_text())
        port = int(info["url"].rsplit(":", 1)[1])
        token = Path(info["token_file"]).read_text()
        path = "/v1/credentials/bedrock"
        one_request(port, path, token)  # the first refresh

        threads, descriptors = process_counts(daemon.pid)
        print(f"daemon at rest: {threads} threads, {descriptors} open descriptors")
        report("plain:", measure(port, path, token))

        holder = subprocess.Popen(
            [sys.executable, __file__, "--hold-idle", str(port), str(IDLE_CONNECTIONS)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert holder.stdout is not None and holder.stdin is not None
        if holder.stdout.readline().strip() != "holding":
            raise SystemExit("the idle-connection holder did not start")
        started = time.monotonic()
        runs, threads, descriptors = sampled_while(daemon.pid, lambda: measure(port, path, token))
        took = time.monotonic() - started
        holder.stdin.close()
        reopened = holder.stdout.readline().strip()
        holder.wait(10)
        report(f"with {IDLE_CONNECTIONS} idle connections held by another process:", runs)
        print(
            f"daemon meanwhile: at most {threads} threads, {descriptors} open descriptors; "
            f"the holder {reopened} dropped connections in {took:.1f} s"
        )
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(10)
        sts.stop()


if __name__ == "__main__":
    if sys.argv[1:2] == ["--hold-idle"]:
        hold_idle(int(sys.argv[2]), int(sys.argv[3]))
    else:
        main()
