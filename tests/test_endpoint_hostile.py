"""The credentials endpoint under a hostile local user: floods of idle connections, slow clients,
ambiguous requests, and a token directory it cannot use."""

from __future__ import annotations

import contextlib
import os
import resource
import select
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import UserHome
from tests.daemonproc import DaemonProcess, wait_for
from tests.helpers import assert_one_line_failure
from tests.stsproxy import Fault
from tests.test_endpoint import endpoint_of, get, serving

PROFILE_PATH = "/v1/credentials/bedrock"


@pytest.fixture
def endpoint(home: UserHome, tmp_path: Path) -> Iterator[tuple[DaemonProcess, str, str]]:
    """A serving daemon, its endpoint URL and its token."""
    with serving(home, tmp_path) as (daemon, variables):
        url, token = endpoint_of(variables)
        yield daemon, url, token


def address_of(url: str) -> tuple[str, int]:
    host, port = url.split("//")[1].split("/")[0].rsplit(":", 1)
    return host, int(port)


def raw_status(url: str, request: str) -> int:
    """Send `request` as typed; the status the endpoint answers with."""
    with socket.create_connection(address_of(url), timeout=30) as sock:
        sock.sendall(request.encode())
        received = b""
        while chunk := sock.recv(4096):
            received += chunk
    return int(received.split(b" ", 2)[1])


def read_response(sock: socket.socket) -> bytes:
    """One response, by its Content-Length, leaving the connection as the server left it."""
    received = b""
    while b"\r\n\r\n" not in received:
        chunk = sock.recv(4096)
        assert chunk, "closed before a response"
        received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    length = int(
        next(
            line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")
        )
    )
    while len(body) < length:
        body += sock.recv(4096)
    return head


def closed_by_peer(sock: socket.socket) -> bool:
    try:
        return sock.recv(4096) == b""
    except (ConnectionResetError, BrokenPipeError):
        return True


def threads_of(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/task"))


def descriptors_of(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def test_a_thousand_idle_connections_starve_neither_the_endpoint_nor_the_daemon(
    home: UserHome, endpoint: tuple[DaemonProcess, str, str]
) -> None:
    daemon, url, token = endpoint
    pid = daemon.process.pid
    resource.prlimit(pid, resource.RLIMIT_NOFILE, (1024, 1024))  # a common default limit
    assert get(url, {"Authorization": token})[0] == 200
    first_key = daemon.wait_written()
    threads_before = threads_of(pid)
    idle: list[socket.socket] = []
    try:
        for _ in range(1100):
            idle.append(socket.create_connection(address_of(url), timeout=10))
        threads, descriptors = threads_of(pid), descriptors_of(pid)
        assert get(url, {"Authorization": token})[0] == 200
        daemon.signal(signal.SIGUSR1)  # a refresh needs descriptors: a lock file, a connection to STS
        wait_for(lambda: daemon.env_key_id() not in (None, first_key), timeout=30)
    finally:
        for sock in idle:
            sock.close()
    assert threads <= threads_before + 1, (threads_before, threads)
    assert descriptors < 400, descriptors
    assert "Too many open files" not in daemon.log


@pytest.mark.slow(seconds=5)
def test_idle_slow_and_kept_alive_connections_are_dropped(
    endpoint: tuple[DaemonProcess, str, str],
) -> None:
    _, url, token = endpoint
    host, port = address_of(url)
    idle = socket.create_connection((host, port), timeout=30)
    trickling = socket.create_connection((host, port), timeout=30)
    trickling.sendall(f"GET {PROFILE_PATH} HTTP/1.1\r\n".encode())
    kept_alive = socket.create_connection((host, port), timeout=30)
    kept_alive.sendall(
        f"GET {PROFILE_PATH} HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: {token}\r\n\r\n".encode()
    )
    assert read_response(kept_alive).startswith(b"HTTP/1.1 200")
    still_open = {"idle": idle, "trickling": trickling, "kept alive": kept_alive}
    give_up = time.monotonic() + 30  # bounds the test; the endpoint's own deadline is much shorter
    while still_open and time.monotonic() < give_up:
        readable, _, _ = select.select(list(still_open.values()), [], [], 0.5)
        for name, sock in list(still_open.items()):
            if sock in readable and closed_by_peer(sock):
                del still_open[name]
        if "trickling" in still_open:
            try:  # one more header line every half second, never the end of the head
                trickling.sendall(b"X-Slow: 1\r\n")
            except (BrokenPipeError, ConnectionResetError):
                del still_open["trickling"]
    for sock in (idle, trickling, kept_alive):
        sock.close()
    assert not still_open, f"still open after 30 s: {sorted(still_open)}"


def test_ambiguous_or_unusual_requests_are_refused(endpoint: tuple[DaemonProcess, str, str]) -> None:
    _, url, token = endpoint
    host, port = address_of(url)
    loopback = f"Host: {host}:{port}"
    auth = f"Authorization: {token}"

    def request(line: str, *headers: str) -> str:
        return line + "\r\n" + "".join(h + "\r\n" for h in headers) + "Connection: close\r\n\r\n"

    get_line = f"GET {PROFILE_PATH} HTTP/1.1"
    assert raw_status(url, request(get_line, loopback, auth)) == 200
    assert raw_status(url, request(get_line, loopback, "Host: attacker.example", auth)) == 400
    assert raw_status(url, request(get_line, "Host: attacker.example", loopback, auth)) == 400
    assert raw_status(url, request(get_line, f"Host: attacker.example@{host}:{port}", auth)) == 421
    assert raw_status(url, request(get_line, f"Host: {host}:{port}@attacker.example", auth)) == 421
    assert raw_status(url, request(get_line, "Host: localhost.", auth)) == 421
    assert raw_status(url, request(get_line, loopback, auth, auth)) == 400
    assert raw_status(url, request(get_line, loopback, "X-Folded: a", " b", auth)) == 400
    assert raw_status(url, request(get_line, loopback, f"Authorization : {token}")) == 400
    absolute = f"GET http://attacker.example{PROFILE_PATH} HTTP/1.1"
    assert raw_status(url, request(absolute, loopback, auth)) == 400
    # SDKs always send Host; without one the DNS-rebinding check has nothing to check
    assert raw_status(url, request(f"GET {PROFILE_PATH} HTTP/1.0", auth)) == 400
    assert raw_status(url, request(f"GET {PROFILE_PATH} HTTP/1.0", loopback, auth)) == 200
    assert raw_status(url, request(f"GET {PROFILE_PATH} HTTP/2.0", loopback, auth)) == 505


def test_sigterm_ends_a_serving_daemon_while_requests_wait_and_clients_idle(
    home: UserHome, tmp_path: Path
) -> None:
    home.proxy.add_fault(Fault("delay", action="AssumeRole", seconds=60))
    with serving(home, tmp_path) as (daemon, variables):
        url, token = endpoint_of(variables)
        token_file = Path(variables["AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"])
        waiting = threading.Thread(target=lambda: _get_quietly(url, token), daemon=True)
        waiting.start()  # waits for the refresh STS is holding up
        idle = [socket.create_connection(address_of(url), timeout=10) for _ in range(50)]
        wait_for(lambda: home.proxy.count("AssumeRole") >= 1, timeout=30)
        assert daemon.stop() == 0  # raises if it is still running 5 s after SIGTERM
        for sock in idle:
            sock.close()
    assert not token_file.exists()


def _get_quietly(url: str, token: str) -> None:
    with contextlib.suppress(OSError, ValueError):  # the daemon stops under it
        get(url, {"Authorization": token})


def _mount_namespaces_work() -> bool:
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        return False
    return subprocess.run(["unshare", "-m", "true"], capture_output=True).returncode == 0


@pytest.mark.skipif(not _mount_namespaces_work(), reason="needs root and unshare -m for a read-only mount")
@pytest.mark.parametrize("directory_present", [True, False], ids=["credhelper-dir-present", "absent"])
def test_run_serve_with_a_read_only_token_directory_says_so_and_exits(
    home: UserHome, tmp_path: Path, directory_present: bool
) -> None:
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    if directory_present:
        (runtime / "credhelper").mkdir(mode=0o700)
    home.env["XDG_RUNTIME_DIR"] = str(runtime)
    read_only = 'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" "$0" && exec "$@"'
    command = [sys.executable, "-m", "credhelper", "run", "--serve", "127.0.0.1:0"]
    result = subprocess.run(
        ["unshare", "-m", "sh", "-c", read_only, str(runtime), *command],
        env=home.env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=home.root,
        start_new_session=True,
    )
    assert_one_line_failure(result, 1, "Read-only file system", "XDG_RUNTIME_DIR")


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give a directory to another user")
def test_run_serve_refuses_a_token_directory_another_user_owns(home: UserHome, tmp_path: Path) -> None:
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    foreign = runtime / "credhelper"
    foreign.mkdir(mode=0o700)
    os.chown(foreign, 4242, 4242)  # whoever owns it could swap the token or the endpoint
    home.env["XDG_RUNTIME_DIR"] = str(runtime)
    result = home.run("run", "--serve", "127.0.0.1:0", timeout=60)
    assert_one_line_failure(result, 78, "belongs to uid 4242", "XDG_RUNTIME_DIR")
    assert list(foreign.iterdir()) == []
