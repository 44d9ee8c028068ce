"""What `bedrock_api_key = true` costs: one `.env` write with and without the key, making the key
alone, and importing the code that makes it (credhelper's own against AWS's token generator).
Prints medians, and one decoded key with its secrets masked.

Run: .venv/bin/python benchmarks/bedrock_key.py
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from credhelper.credentials import Credentials, mask_key_id  # noqa: E402
from credhelper.formats.bedrockkey import bedrock_api_key, decode_bedrock_api_key  # noqa: E402
from credhelper.profile import parse_profiles  # noqa: E402
from credhelper.targets.delivery import deliver  # noqa: E402
from tests.conftest import AGENT0_ENV_DEFAULT  # noqa: E402

WRITES = int(os.environ.get("BENCH_RUNS", "300"))
IMPORTS = int(os.environ.get("BENCH_IMPORTS", "20"))
ROLE = "arn:aws:iam::123456789012:role/BedrockAccessRole"


def fake_session(n: int) -> Credentials:
    """Shaped like STS's: a 40-character secret, a session token of about 800 characters."""
    now = time.time()
    return Credentials(
        access_key_id=f"ASIAIOSFODNN7EXAMPL{n}",
        secret_access_key=f"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKE{n}",
        session_token=("FwoGZXIvYXdzEXAMPLE" * 42)[:-1] + str(n),
        expiration=now + 3600,
        issued_at=now,
    )


def write_medians_ms(directory: Path) -> dict[bool, tuple[float, int]]:
    """Writes with and without the key, interleaved so both see the same load on the machine."""
    lock_dir = directory / "locks"
    lock_dir.mkdir(exist_ok=True)
    sessions = [fake_session(0), fake_session(1)]  # alternate, so that every write changes the file
    environ = {"HOME": str(directory)}
    profiles, samples = {}, {}
    for bedrock in (False, True):
        env_file = directory / f"{'with' if bedrock else 'without'}.env"
        env_file.write_text(AGENT0_ENV_DEFAULT)
        env_file.chmod(0o600)
        settings = {"role_arn": ROLE, "region": "us-east-1", "env_files": [str(env_file)]}
        settings["bedrock_api_key"] = bedrock
        profiles[bedrock] = parse_profiles({"profiles": {"bedrock": settings}}, "bench", "bench")["bedrock"]
        samples[bedrock] = []
    for i in range(WRITES):
        for bedrock, profile in profiles.items():
            start = time.perf_counter()
            report = deliver(profile, sessions[i % 2], lock_dir, environ, run_hook=False)
            samples[bedrock].append((time.perf_counter() - start) * 1000)
            assert report.written and not report.errors
    return {
        bedrock: (statistics.median(samples[bedrock]), Path(profile.env_files[0]).stat().st_size)
        for bedrock, profile in profiles.items()
    }


def key_median_us() -> float:
    session = fake_session(0)
    samples = []
    for _ in range(2000):
        start = time.perf_counter()
        bedrock_api_key(session, "us-east-1", time.time())
        samples.append((time.perf_counter() - start) * 1e6)
    return statistics.median(samples)


def import_median_ms(statement: str) -> float | None:
    samples = []
    for _ in range(IMPORTS):
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", statement], cwd=ROOT, capture_output=True)
        samples.append((time.perf_counter() - start) * 1000)
        if done.returncode != 0:
            return None
    return statistics.median(samples)


def masked_key(session: Credentials) -> str:
    fields = decode_bedrock_api_key(bedrock_api_key(session, "us-east-1", time.time()))
    assert fields is not None
    key_id, _, scope = fields["X-Amz-Credential"].partition("/")
    fields["X-Amz-Credential"] = f"{mask_key_id(key_id)}/{scope}"
    fields["X-Amz-Security-Token"] = f"[session token, {len(fields['X-Amz-Security-Token'])} characters]"
    fields["X-Amz-Signature"] = f"[{len(fields['X-Amz-Signature'])} hex digits]"
    return json.dumps(fields, indent=2, ensure_ascii=False)


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="credhelper-bench-") as scratch:
        figures = write_medians_ms(Path(scratch))
    print(f"writes per figure: {WRITES} (medians, in process, agent0's .env, fsync included)")
    for bedrock, label in ((False, "without"), (True, "with")):
        median, size = figures[bedrock]
        print(f".env write {label + ' the key:':<18}{median:7.2f} ms  ({size} bytes)")
    print(f"making the key alone:         {key_median_us():7.1f} µs")
    print(f"imports on the write path, whole process ({IMPORTS} runs each, medians):")
    bare = import_median_ms("pass")
    ours = import_median_ms("import credhelper.targets.delivery")
    theirs = import_median_ms("import credhelper.targets.delivery, aws_bedrock_token_generator")
    print(f"  python -c pass:                                        {bare:7.1f} ms")
    print(f"  credhelper.targets.delivery (own key maker included):  {ours:7.1f} ms")
    if theirs is None:
        print("  ... plus aws_bedrock_token_generator:    not installed (pip install '.[test]')")
    else:
        print(f"  ... plus aws_bedrock_token_generator (botocore):       {theirs:7.1f} ms")
    print("a key for a made-up session, decoded, secrets masked:")
    print(masked_key(fake_session(0)))


if __name__ == "__main__":
    main()
