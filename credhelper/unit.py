"""The systemd user unit, rendered with ExecStart pointing at the credhelper that runs `init`.

The template is systemd/credhelper.service with one placeholder; a test keeps the two equal.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from .paths import config_path

UNIT_NAME = "credhelper.service"
UNIT_TEMPLATE = """\
# credhelper as a systemd user service: keeps every configured target fresh.
#   install:  cp systemd/credhelper.service ~/.config/systemd/user/
#             systemctl --user daemon-reload && systemctl --user enable --now credhelper
#   status:   systemctl --user status credhelper; journalctl --user -u credhelper
[Unit]
Description=credhelper: fresh temporary AWS credentials for your apps
Wants=network-online.target
After=network-online.target

[Service]
Type=notify
NotifyAccess=main
# Where pipx, or the README's virtualenv recipe, links the command; a drop-in can change it.
ExecStart={exec_start}
ExecReload=/bin/kill -HUP $MAINPID
Restart=on-failure
RestartSec=10
# READY=1 comes after the first successful refresh; STS retries take well under this.
TimeoutStartSec=180
# WATCHDOG=1 arrives every WatchdogSec/2 while the scheduler thread is alive.
WatchdogSec=300
UMask=0077

# Hardening: the whole file system is read-only to the daemon except your home directory (the
# .env files, ~/.aws/credentials, the cache) and $XDG_RUNTIME_DIR/credhelper (the endpoint's token
# file, created 0700 by systemd and removed when the service stops). A target outside your home
# needs a drop-in: `systemctl --user edit credhelper`, then [Service] ReadWritePaths=/srv/app.
NoNewPrivileges=yes
ProtectSystem=strict
ReadWritePaths=%h
RuntimeDirectory=credhelper
RuntimeDirectoryMode=0700
PrivateTmp=yes
PrivateDevices=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6
RestrictNamespaces=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
LockPersonality=yes
SystemCallArchitectures=native
SystemCallFilter=@system-service
SystemCallErrorNumber=EPERM

[Install]
WantedBy=default.target
"""


def credhelper_argv(argv0: str | None = None, executable: str | None = None) -> list[str]:
    """This credhelper as an absolute command: the console script that is running (a venv, pipx or
    ~/.local/bin), else this interpreter with `-P -m credhelper`. `-P`: an SDK runs the command in
    the app's directory, and `python -m` alone would import from there first (a `click.py` beside
    the app would run with the user's credentials)."""
    script = Path(argv0 if argv0 is not None else sys.argv[0])
    executable = executable or sys.executable
    if script.name == "credhelper" and script.is_file() and os.access(script, os.X_OK):
        # Not resolved through symlinks: pipx's ~/.local/bin link survives a reinstall.
        return [os.path.abspath(script)]
    # A venv's python is a symlink that must stay one: resolving it would leave the venv.
    return [os.path.abspath(executable), "-P", "-m", "credhelper"]


def imports_from_its_directory(argv: Sequence[str]) -> bool:
    """Whether `argv` runs `python -m credhelper` without -P: python then imports from the
    directory it runs in first (under an SDK, the app's). credhelper_argv spelt it so before."""
    return argv[1:3] == ["-m", "credhelper"]


def earlier_spelling(command: Sequence[str]) -> list[str] | None:
    """`command` (from credhelper_argv) as credhelper_argv spelt it before -P, if it differs:
    init takes a line of that spelling for its own, and replaces it."""
    if list(command[1:4]) == ["-P", "-m", "credhelper"]:
        return [command[0], *command[2:]]
    return None


def config_args(config_file: str) -> list[str]:
    """`--config PATH` when the configuration is not where credhelper looks by default, so the
    daemon and credential_process (which do not share this shell's environment) find it."""
    default = config_path(None, {})
    return [] if os.path.abspath(config_file) == default else ["--config", os.path.abspath(config_file)]


def systemd_quote(word: str) -> str:
    escaped = word.replace("%", "%%")
    if escaped and not any(c in escaped for c in " \t\"'\\$;"):
        return escaped
    return '"' + escaped.replace("\\", "\\\\").replace('"', '\\"').replace("$", "$$") + '"'


def render_unit(command: list[str]) -> str:
    return UNIT_TEMPLATE.format(exec_start=" ".join(systemd_quote(word) for word in [*command, "run"]))


def shell_command(command: list[str]) -> str:
    return " ".join(shlex.quote(word) for word in command)


def unit_path(environ: Mapping[str, str]) -> Path:
    base = environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "systemd" / "user" / UNIT_NAME


def user_manager_answers(output: str) -> bool:
    """Whether `systemctl --user is-system-running` reached a user manager that can start units."""
    state = output.strip().splitlines()[0] if output.strip() else ""
    return state in {"running", "degraded", "starting", "initializing"}


def run_systemctl(command: list[str], timeout: float = 30.0) -> tuple[int, str]:
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        return 1, str(error)
    return done.returncode, (done.stdout + done.stderr)


def user_manager() -> Callable[[list[str]], tuple[int, str]] | None:
    """systemctl, when a user manager answers within a few seconds; else None."""
    if shutil.which("systemctl") is None:
        return None
    _, output = run_systemctl(["systemctl", "--user", "is-system-running"], timeout=5.0)
    return run_systemctl if user_manager_answers(output) else None
