"""credential-process on a cache hit, against a bare interpreter start and against botocore
assuming the same role by itself. Prints medians.

Run: .venv/bin/python benchmarks/credential_process.py

Target (DESIGN §8): a cache hit within 2.5x of `python -c pass`.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from credhelper.localsts import profile_toml, scratch_home, start_local_sts  # noqa: E402

RUNS = int(os.environ.get("BENCH_RUNS", "40"))


def median_ms(argv: list[str], env: dict[str, str]) -> float:
    samples = []
    for _ in range(RUNS):
        start = time.perf_counter()
        subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL)
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


def main() -> None:
    sts = start_local_sts()
    home, env = scratch_home(sts, "credhelper-bench-", profile_toml(sts))
    (home / ".aws" / "config").write_text(
        f"[profile assume]\nrole_arn = {sts.role_arn}\nsource_profile = bedrock-developer\n"
        "role_session_name = bench\nregion = us-east-1\n"
    )
    env["AWS_ENDPOINT_URL_STS"] = sts.url
    script = Path(sys.executable).parent / "credhelper"
    helper = [str(script)] if script.exists() else [sys.executable, "-m", "credhelper"]
    subprocess.run([*helper, "credential-process", "bedrock"], env=env, check=True, stdout=subprocess.DEVNULL)

    bare = median_ms([sys.executable, "-c", "pass"], env)
    hit = median_ms([*helper, "credential-process", "bedrock"], env)
    botocore_alone = median_ms(
        [
            sys.executable,
            "-c",
            "import botocore.session; botocore.session.Session(profile='assume')"
            ".get_credentials().get_frozen_credentials()",
        ],
        env,
    )
    print(f"runs per figure: {RUNS} (medians, whole process)")
    print(f"python -c pass:                          {bare:7.1f} ms")
    print(f"credhelper credential-process (hit):     {hit:7.1f} ms  ({hit / bare:.2f}x bare; target 2.5x)")
    ratio = botocore_alone / bare
    print(f"botocore assuming the role by itself:    {botocore_alone:7.1f} ms  ({ratio:.2f}x bare)")
    sts.stop()


if __name__ == "__main__":
    main()
