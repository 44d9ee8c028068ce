"""A walk-through against the embedded local STS: `sh dev demo`.

It provisions what an administrator would (an IAM user, its key, BedrockAccessRole), writes a
credhelper configuration for an agent0-like app in a scratch HOME, and runs credhelper the way a
user does, showing each command and what it changed. Secrets are masked in everything it prints.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from .localsts import profile_toml, scratch_home, start_local_sts

APP_ENV = """\
# agent0 (packages/agent0/.env), as copied from .env.default
AGENT_DATABASE_URL="file:./agent0.db"
COOKIE_SECRET=change-me
AUTH_SERVER=http://localhost:5000
AWS_REGION=us-east-1
AWS_ACCESS_KEY_ID=
AWS_SECRET_ACCESS_KEY=
# AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE
"""
_SECRET_LINE = re.compile(
    r"^([^\S\n]*(?:export[^\S\n]+)?AWS_(?:SECRET_ACCESS_KEY|SESSION_TOKEN)[^\S\n]*=[^\S\n]*)(\S+)", re.M
)
_KEY_ID = re.compile(r"\b(ASIA|AKIA)[A-Z0-9]{12}([A-Z0-9]{4})\b")


def masked(text: str) -> str:
    text = _SECRET_LINE.sub(lambda m: f"{m.group(1)}<{len(m.group(2))} characters, hidden>", text)
    return _KEY_ID.sub(lambda m: f"{m.group(1)}…{m.group(2)}", text)


def say(text: str) -> None:
    print(f"\n\033[1m== {text}\033[0m", flush=True)


def run(home: Path, env: dict[str, str], *args: str, show_stdout: bool = True) -> str:
    print(f"$ credhelper {' '.join(args)}", flush=True)
    result = subprocess.run(
        [sys.executable, "-m", "credhelper", *args], env=env, capture_output=True, text=True, timeout=120
    )
    if show_stdout and result.stdout:
        print(masked(result.stdout.rstrip()))
    if result.stderr:
        print(masked(result.stderr.rstrip()))
    print(f"(exit {result.returncode})", flush=True)
    return result.stdout


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="sh dev demo", description=__doc__)
    parser.add_argument("--seconds", type=int, default=40, help="how long to watch the daemon")
    options = parser.parse_args(argv)

    say("Starting the embedded local STS (moto) on 127.0.0.1, authentication enforced")
    sts = start_local_sts()
    print(f"STS endpoint: {sts.url}")
    print(f"IAM user bedrock-developer, access key {masked(sts.access_key_id)}")
    print(f"Role: {sts.role_arn}")

    home, env = scratch_home(
        sts,
        "credhelper-demo-",
        profile_toml(
            sts,
            extra="duration_seconds = 900         # the shortest session STS allows...\n"
            "refresh_before_seconds = 885   # ...renewed every ~15 s, so there is something to watch\n"
            'env_files = ["~/agent0/.env"]',
        ),
    )
    config = home / ".config" / "credhelper" / "config.toml"
    app = home / "agent0"
    app.mkdir()
    (app / ".env").write_text(APP_ENV)
    (app / ".env").chmod(0o600)
    say(f"A scratch HOME at {home}, with this configuration ({config.relative_to(home)}):")
    print(config.read_text().rstrip())
    say("The app's .env before")
    print(masked((app / ".env").read_text().rstrip()))

    say("1. Refresh once: assume the role, cache it, write the .env")
    run(home, env, "refresh")
    say("The app's .env after: only the AWS keys changed, every other line is as it was")
    print(masked((app / ".env").read_text().rstrip()))

    say("2. What an AWS SDK gets from `credential_process = credhelper credential-process bedrock`")
    out = run(home, env, "credential-process", "bedrock", show_stdout=False)
    print(
        masked(out.rstrip().replace('"SessionToken"', '"SessionToken (hidden)"')).split(
            ', "SecretAccessKey"'
        )[0]
        + ", ...} (from the cache: no STS call)"
    )

    say("3. Status, from the cache alone")
    run(home, env, "status")

    say(f"4. The daemon: `credhelper run` for {options.seconds} s; watch the key id in the .env change")
    process = subprocess.Popen(
        [sys.executable, "-m", "credhelper", "--log-level", "info", "run"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    last = ""
    deadline = time.monotonic() + options.seconds
    try:
        while time.monotonic() < deadline and process.poll() is None:
            text = (app / ".env").read_text()
            key = re.search(r"^AWS_ACCESS_KEY_ID=(\S*)", text, re.M)
            current = key.group(1) if key else ""
            if current != last:
                print(f"  {time.strftime('%H:%M:%S')}  .env now holds {masked(current)}", flush=True)
                last = current
            time.sleep(0.2)
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=10)
    print("Daemon log:")
    print("\n".join("  " + masked(line) for line in output.rstrip().splitlines()))
    say("Done. Try it on your own app: see the README's quick start.")
    sts.stop()
    shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
