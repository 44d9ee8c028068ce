"""doctor's checks of this machine's side: the shell's environment, the cache directory, the
daemon and its systemd unit, the container-credentials endpoint and its token."""

from __future__ import annotations

import os
import stat
import urllib.error
import urllib.request
from collections.abc import Mapping

from ..config import Config
from ..endpoint.discovery import daemon_lock_held, live_endpoint, recorded_daemon_pid
from ..fileio import read_regular_file
from ..paths import (
    CACHE_DIR_FIX,
    cache_dir_path,
    cache_dir_setting,
    ignored_xdg,
    runtime_dir,
    token_path,
    untrusted_reason,
)
from ..unit import UNIT_NAME, user_manager
from .findings import FAIL, OK, WARN, Finding, exported_credentials


def check_environment(environ: Mapping[str, str]) -> list[Finding]:
    exported = exported_credentials(environ)
    if not exported:
        return [Finding(None, "environment", OK, "no AWS credential variables exported")]
    return [
        Finding(
            None,
            "environment",
            WARN,
            f"{', '.join(exported)} exported in this shell: an app started from it uses that instead of "
            f"its .env (dotenv does not override): unset {' '.join(exported)}",
        )
    ]


def check_cache(environ: Mapping[str, str]) -> list[Finding]:
    """The cache directory, and the setting that chose it when it is not what that setting says."""
    directory = cache_dir_path(environ)
    setting = cache_dir_setting(environ)
    if not os.path.isabs(directory):
        fix = (
            "set CREDHELPER_CACHE_DIR to an absolute path, or unset it to use ~/.cache/credhelper"
            if setting == "CREDHELPER_CACHE_DIR"
            else f"set {setting} to an absolute path"
        )
        return [
            Finding(
                None,
                "cache",
                FAIL,
                f"the cache directory {directory} (from {setting}={environ.get(setting, '')}) is not an "
                "absolute path, so every command refuses it (it would be another directory in every "
                f"working directory): {fix}",
            )
        ]
    findings = []
    if setting != "CREDHELPER_CACHE_DIR" and ignored_xdg(environ, "XDG_CACHE_HOME"):
        findings.append(
            Finding(
                None,
                "cache",
                WARN,
                f"XDG_CACHE_HOME={environ['XDG_CACHE_HOME']} is not an absolute path, so credhelper "
                f"ignores it, as the XDG specification says, and keeps its cache in {directory}: set "
                "XDG_CACHE_HOME to an absolute path, or unset it",
            )
        )
    return findings + cache_directory_findings(directory)


def cache_directory_findings(directory: str) -> list[Finding]:
    try:
        info = os.stat(directory)
    except FileNotFoundError:
        return [Finding(None, "cache", WARN, f"{directory} does not exist yet: run `credhelper refresh`")]
    if not stat.S_ISDIR(info.st_mode):
        return [Finding(None, "cache", FAIL, f"{directory} is not a directory: remove it")]
    reason = untrusted_reason(info, path=directory)
    if reason is not None:
        detail = f"{directory}: credhelper does not trust this cache directory: {reason}; {CACHE_DIR_FIX}"
        return [Finding(None, "cache", FAIL, detail)]
    mode = stat.S_IMODE(info.st_mode)
    if mode != 0o700:
        return [Finding(None, "cache", WARN, f"{directory} has mode {mode:o}: chmod 700 {directory}")]
    loose = []
    for name in sorted(os.listdir(directory)):
        try:
            file_mode = stat.S_IMODE(os.lstat(os.path.join(directory, name)).st_mode)
        except FileNotFoundError:
            continue
        if file_mode & 0o077:
            loose.append(name)
    if loose:
        return [
            Finding(
                None,
                "cache",
                FAIL,
                f"{', '.join(loose)} in {directory} readable by others: chmod 600 "
                + " ".join(os.path.join(directory, name) for name in loose),
            )
        ]
    return [Finding(None, "cache", OK, f"{directory} mode 700, files 600")]


def check_daemon(directory: str, config: Config) -> list[Finding]:
    findings = []
    has_targets = any(p.env_files or p.credentials_files for p in config.profiles.values())
    if daemon_lock_held(directory):
        try:
            pid = recorded_daemon_pid(directory) or "?"
        except OSError:
            pid = "?"
        findings.append(Finding(None, "daemon", OK, f"`credhelper run` is running (pid {pid})"))
    else:
        findings.append(
            Finding(
                None,
                "daemon",
                FAIL if has_targets else WARN,
                "no `credhelper run` holds the lock, so targets go stale when the session ends: "
                "start it (systemctl --user enable --now credhelper, or credhelper init --systemd)",
            )
        )
    systemctl = user_manager()
    if systemctl is not None:
        _, output = systemctl(["systemctl", "--user", "is-active", UNIT_NAME])
        state = output.strip().splitlines()[0] if output.strip() else "unknown"
        findings.append(
            Finding(None, "unit", OK, f"{UNIT_NAME} is active")
            if state == "active"
            else Finding(
                None, "unit", WARN, f"{UNIT_NAME} is {state}: systemctl --user enable --now {UNIT_NAME}"
            )
        )
    return findings


def check_endpoint(environ: Mapping[str, str], directory: str, config: Config) -> list[Finding]:
    endpoint = live_endpoint(environ, directory)
    if endpoint is None:
        return [
            Finding(
                None,
                "endpoint",
                FAIL,
                f"serve = {config.serve} is configured but no endpoint is running: start the daemon",
            )
        ]
    profile = next(iter(config.profiles))
    try:
        found = read_regular_file(endpoint["token_file"], 4096)  # never blocks on a FIFO
        token = found[0].decode().strip() if found is not None else ""
        request = urllib.request.Request(
            f"{endpoint['url']}/v1/credentials/{profile}", headers={"Authorization": token}
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            response.read()
    except urllib.error.HTTPError as error:
        return [
            Finding(
                None,
                "endpoint",
                FAIL,
                f"{endpoint['url']} answered {error.code}: see `journalctl --user -u credhelper`",
            )
        ]
    except (OSError, KeyError, ValueError) as error:
        return [
            Finding(
                None, "endpoint", FAIL, f"{endpoint.get('url')} does not answer ({error}): restart the daemon"
            )
        ]
    return [
        Finding(None, "endpoint", OK, f"{endpoint['url']} answers for profile {profile}"),
        check_token_file(environ, directory, endpoint["token_file"]),
    ]


def check_token_file(environ: Mapping[str, str], directory: str, token_file: str) -> Finding:
    """The endpoint's token: where `credhelper env` looks, this user's, readable by nobody else."""
    expected = token_path(environ, directory)
    if os.path.abspath(token_file) != expected:
        return Finding(
            None,
            "endpoint token",
            WARN,
            f"the daemon published its token at {token_file}, not {expected}: start the daemon and "
            "your apps with the same XDG_RUNTIME_DIR",
        )
    for path, wanted in ((runtime_dir(environ, directory), 0o700), (token_file, 0o600)):
        try:
            info = os.lstat(path)
        except OSError as error:
            return Finding(None, "endpoint token", FAIL, f"{path}: {error.strerror}: restart the daemon")
        mode = stat.S_IMODE(info.st_mode)
        if info.st_uid != os.geteuid() or mode & 0o077:
            return Finding(
                None,
                "endpoint token",
                FAIL,
                f"{path} (mode {mode:o}, uid {info.st_uid}) lets other users read the token: "
                f"chmod {wanted:o} {path} and restart the daemon",
            )
    return Finding(None, "endpoint token", OK, f"{token_file} mode 600, in a directory of mode 700")
