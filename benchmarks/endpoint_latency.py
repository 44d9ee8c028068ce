"""The container credentials endpoint's latency: p50 and p99 over 1,000 requests (a new connection
each, as SDKs make), one client and 20 at once, beside the SDKs' timeouts (JS SDK 1 s, botocore 2 s).

Run: .venv/bin/python benchmarks/endpoint_latency.py
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from credhelper.localsts import start_local_sts  # noqa: E402

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
    home = Path(tempfile.mkdtemp(prefix="credhelper-endpoint-"))
    (home / ".aws").mkdir()
    (home / ".aws" / "credentials").write_text(
        f"[bedrock-developer]\naws_access_key_id = {sts.access_key_id}\n"
        f"aws_secret_access_key = {sts.secret_access_key}\n"
    )
    config = home / ".config" / "credhelper" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text(
        f'[profiles.bedrock]\nrole_arn = "{sts.role_arn}"\nsource_profile = "bedrock-developer"\n'
        f'region = "us-east-1"\nsts_endpoint_url = "{sts.url}"\n'
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "CREDHELPER_", "XDG_"))}
    env.update(HOME=str(home), PYTHONPATH=str(ROOT))
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
