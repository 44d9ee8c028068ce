"""The container credentials endpoint's latency: p50 and p99 over 1,000 requests (a new connection
each, as SDKs make), one client and 20 at once, beside the SDKs' timeouts (JS SDK 1 s, botocore 2 s).

Run: .venv/bin/python benchmarks/endpoint_latency.py
"""

from __future__ import annotations

import http.client
import json
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from credhelper.localsts import profile_toml, scratch_home, start_local_sts  # noqa: E402

REQUESTS = 1000


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


def main() -> None:
    sts = start_local_sts()
    home, env = scratch_home(sts, "credhelper-endpoint-", profile_toml(sts))
    daemon = subprocess.Popen([sys.executable, "-m", "credhelper", "run", "--serve", "127.0.0.1:0"], env=env)
    endpoint_file = home / ".cache" / "credhelper" / "endpoint.json"
    while not endpoint_file.exists():
        time.sleep(0.05)
    info = json.loads(endpoint_file.read_text())
    port = int(info["url"].rsplit(":", 1)[1])
    token = Path(info["token_file"]).read_text()
    path = "/v1/credentials/bedrock"
    one_request(port, path, token)  # the first refresh

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
    for label, samples in (("1 client", serial), ("20 clients at once", concurrent)):
        print(
            f"{label:>20}: {len(samples)} requests, p50 {statistics.median(samples):.2f} ms, "
            f"p99 {percentile(samples, 0.99):.2f} ms, max {max(samples):.2f} ms "
            "(timeouts: JS SDK 1000 ms, botocore 2000 ms)"
        )
    daemon.send_signal(signal.SIGTERM)
    daemon.wait(10)
    sts.stop()


if __name__ == "__main__":
    main()
