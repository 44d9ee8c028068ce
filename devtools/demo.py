"""A walk-through against the embedded local STS: `sh dev demo`.

It provisions what an administrator would (an IAM user, its key, BedrockAccessRole), writes a
credhelper configuration for an agent0-like app in a scratch HOME, and runs credhelper the way a
user does, showing each command and what it changed. Secrets are masked in everything it prints.

`sh dev demo --keep` sets up the same world, then leaves the local STS running and prints how to
use it from another terminal, until Ctrl-C.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from .localsts import LocalSts, profile_toml, scratch_home, start_local_sts

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
    _interrupt_if_asked()
    print(f"\n\033[1m== {text}\033[0m", flush=True)


def _interrupt_if_asked() -> None:
    """A Ctrl-C whose KeyboardInterrupt something swallowed on its way (a library's bare
    `except:`, say in an import) still stops the demo, at the next step: its handler ignores
    the next Ctrl-C, so without this the demo would go on as if none had been typed."""
    if CTRL_C_TYPED:
        raise KeyboardInterrupt


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
    parser = argparse.ArgumentParser(
        prog="sh dev demo", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=int, default=40, help="how long to watch the daemon")
    parser.add_argument(
        "--keep",
        action="store_true",
        help="leave the local STS running with a scratch HOME to try commands in, until Ctrl-C",
    )
    options = parser.parse_args(argv)
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:  # not when started ignoring it
        signal.signal(signal.SIGINT, interrupted)
    try:
        say("Starting the embedded local STS (moto) on 127.0.0.1, authentication enforced")
        sts = start_local_sts()  # interrupted in here, its server thread is a daemon thread
        try:
            _interrupt_if_asked()
            print(f"STS endpoint: {sts.url}")
            print(f"IAM user bedrock-developer, access key {masked(sts.access_key_id)}")
            print(f"Role: {sts.role_arn}")
            if options.keep:
                keep_running(sts)
            else:
                tour(sts, options.seconds)
        finally:
            sts.stop()
    except KeyboardInterrupt:
        print("\ndemo: interrupted: the local STS is stopped and the scratch HOME removed", file=sys.stderr)
        # Every cleanup has run. The interpreter's own shutdown after an interrupt that landed while
        # the local STS was starting ended once in about ten runs with the process killed by
        # SIGINT (a shell's 130 lost, cause not found): the demo leaves with its status directly.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(INTERRUPTED)


INTERRUPTED = 130  # 128 + SIGINT, as a shell reports a job Ctrl-C ended


def interrupted(signum: int, frame: object) -> None:
    """The first Ctrl-C stops the demo (KeyboardInterrupt, through every cleanup on the way out);
    one typed while it cleans up cannot cut that short."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    CTRL_C_TYPED.append(signum)
    raise KeyboardInterrupt


CTRL_C_TYPED: list[int] = []


def tour(sts: LocalSts, seconds: int) -> None:
    """The walk-through, in a scratch HOME that is removed however it ends."""
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
    try:
        walk_through(home, env, seconds)
    finally:
        shutil.rmtree(home, ignore_errors=True)


def walk_through(home: Path, env: dict[str, str], seconds: int) -> None:
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

    say(f"4. The daemon: `credhelper run` for {seconds} s; watch the key id in the .env change")
    process: subprocess.Popen[str] | None = None
    last = ""
    deadline = time.monotonic() + seconds
    try:
        # Ctrl-C while the daemon is being started is held until `process` names it, so the
        # cleanup below always stops it (the daemon clears the mask it inherits).
        held = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            process = subprocess.Popen(
                [sys.executable, "-m", "credhelper", "--log-level", "info", "run"],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, held)
        while time.monotonic() < deadline and process.poll() is None:
            text = (app / ".env").read_text()
            key = re.search(r"^AWS_ACCESS_KEY_ID=(\S*)", text, re.M)
            current = key.group(1) if key else ""
            if current != last:
                print(f"  {time.strftime('%H:%M:%S')}  .env now holds {masked(current)}", flush=True)
                last = current
            time.sleep(0.2)
    finally:
        if process is not None:
            process.terminate()
            output, _ = process.communicate(timeout=10)
    print("Daemon log:")
    print("\n".join("  " + masked(line) for line in output.rstrip().splitlines()))
    say("Done. Try it on your own app: see the README's quick start.")


def credhelper_command() -> str:
    """The command a user of this checkout runs: the virtualenv's script, else `python -m`."""
    script = Path(sys.executable).parent / "credhelper"
    return shlex.quote(str(script)) if script.exists() else f"{shlex.quote(sys.executable)} -m credhelper"


def write_activate(home: Path, sts: LocalSts) -> Path:
    """A script to source in another shell: the scratch HOME, this checkout's credhelper first on
    PATH, AWS SDKs pointed at the local STS, and nothing inherited that would win over them."""
    bin_dir = Path(sys.executable).parent
    activate = home / "activate"
    activate.write_text(
        "# Sourced by `. activate`: a shell in credhelper's demo world (your own HOME is untouched).\n"
        "unset AWS_PROFILE AWS_DEFAULT_PROFILE AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY "
        "AWS_SESSION_TOKEN AWS_CONTAINER_CREDENTIALS_FULL_URI AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE "
        "CREDHELPER_CONFIG CREDHELPER_CACHE_DIR XDG_CONFIG_HOME XDG_CACHE_HOME XDG_RUNTIME_DIR\n"
        f"export HOME={shlex.quote(str(home))}\n"
        f'export PATH={shlex.quote(str(bin_dir))}:"$PATH"\n'
        f"export PYTHONPATH={shlex.quote(str(Path(__file__).resolve().parent.parent))}\n"
        f"export AWS_ENDPOINT_URL={shlex.quote(sts.url)} AWS_REGION=us-east-1\n"
        'PS1="(credhelper demo) $PS1"\n'
        "cd\n"
    )
    return activate


def keep_running(sts: LocalSts) -> None:
    """Set up the scratch world, print how to play in it, and wait for Ctrl-C (or SIGTERM, SIGHUP)."""
    home, _ = scratch_home(sts, "credhelper-demo-", profile_toml(sts, extra='env_files = ["~/agent0/.env"]'))
    app = home / "agent0"
    app.mkdir()
    (app / ".env").write_text(APP_ENV)
    (app / ".env").chmod(0o600)
    command = credhelper_command()
    aws_config = home / ".aws" / "config"
    aws_config.write_text(
        f"[profile bedrock]\ncredential_process = {command} credential-process bedrock\nregion = us-east-1\n"
    )
    activate = write_activate(home, sts)
    config = home / ".config" / "credhelper" / "config.toml"
    say(f"A scratch HOME at {home}")
    print(f"~/.config/credhelper/config.toml:\n{config.read_text().rstrip()}")
    print(f"\n~/.aws/config:\n{aws_config.read_text().rstrip()}")
    print("\n~/.aws/credentials: [bedrock-developer], the IAM user's key pair")
    who_am_i = """python -c 'import boto3; print(boto3.client("sts").get_caller_identity()["Arn"])'"""
    say("In another terminal (each new terminal: source the activate script first):")
    print(
        f"""  . {shlex.quote(str(activate))}   # HOME, PATH and AWS_ENDPOINT_URL for the demo
  credhelper refresh                   # assume the role, write ~/agent0/.env
  credhelper status
  cat ~/agent0/.env
  AWS_PROFILE=bedrock {who_am_i}   # an SDK through credential_process
  credhelper run --serve               # the daemon and its endpoint; Ctrl-C stops it
  eval "$(credhelper env bedrock)"; {who_am_i}   # (in a second terminal) an SDK through the endpoint
  printf 'AWS_ACCESS_KEY_ID=\\n' > ~/agent0/.env   # while `run` runs: the credentials are back in a second"""
    )
    say("The local STS keeps running. Ctrl-C here stops it and removes the scratch HOME.")
    for signum in (signal.SIGTERM, signal.SIGHUP):  # `kill PID`; the terminal closed
        signal.signal(signum, lambda *_: sys.exit(0))
    try:
        while True:
            signal.pause()
    except KeyboardInterrupt:
        pass  # how --keep is meant to end: exit 0
    finally:  # the local STS is stopped by main, once: a second stop would wait for ever
        shutil.rmtree(home, ignore_errors=True)
        print(f"\nRemoved {home}; stopping the local STS.", flush=True)


if __name__ == "__main__":
    main()
