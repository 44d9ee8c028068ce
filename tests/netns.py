"""A container without a container engine (DESIGN section 14): a "host" network namespace, where
the daemon runs and 169.254.170.2 goes on the loopback interface, and a "container" namespace
joined to it by a veth pair with link-local addresses and a default route through the host side.
The machine's own interfaces are never touched: everything lives in namespaces made here and
removed at the end, also on a failure.

The daemon and the SDKs reach the local STS (in the machine's namespace, on loopback) through a
forwarder whose listening socket is opened inside their namespace, on the same port: the URLs in
the configuration stay the same everywhere."""

from __future__ import annotations

import contextlib
import ctypes
import os
import socket
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

CLONE_NEWNET = 0x40000000
HOST_SIDE = "169.254.201.1"  # the veth's addresses: link-local, never 169.254.170.2
CONTAINER_SIDE = "169.254.201.2"
_counter = iter(range(1_000_000))


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30, check=check)


def _setns(fd: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        error = ctypes.get_errno()
        raise OSError(error, os.strerror(error))


def listen_in(namespace: str, port: int) -> socket.socket:
    """A listening socket on 127.0.0.1:`port` inside `namespace`, opened by this thread, which
    goes back to its own namespace before returning (or raising)."""
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    target = os.open(f"/run/netns/{namespace}", os.O_RDONLY)
    try:
        _setns(target)
        try:
            return socket.create_server(("127.0.0.1", port))
        finally:
            _setns(own)
    finally:
        os.close(own)
        os.close(target)


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while chunk := source.recv(65536):
            sink.sendall(chunk)
    with contextlib.suppress(OSError):
        sink.shutdown(socket.SHUT_WR)


def forward(listener: socket.socket, port: int) -> None:
    """Each connection accepted on `listener` joined to 127.0.0.1:`port` of this namespace."""

    def serve() -> None:
        while True:
            try:
                inside, _ = listener.accept()
            except OSError:
                return  # closed
            try:
                outside = socket.create_connection(("127.0.0.1", port), timeout=30)
            except OSError:
                inside.close()
                continue
            for a, b in ((inside, outside), (outside, inside)):
                threading.Thread(target=_pipe, args=(a, b), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()


@dataclass
class Namespaces:
    host: str
    container: str
    listeners: list[socket.socket] = field(default_factory=list)

    def in_host(self, *argv: str) -> list[str]:
        return ["ip", "netns", "exec", self.host, *argv]

    def in_container(self, *argv: str) -> list[str]:
        return ["ip", "netns", "exec", self.container, *argv]

    def forward_port(self, namespace: str, port: int) -> None:
        listener = listen_in(namespace, port)
        self.listeners.append(listener)
        forward(listener, port)

    def add_container_address(self) -> None:
        ip("-n", self.host, "addr", "add", "169.254.170.2/32", "dev", "lo")

    def host_loopback_addresses(self) -> str:
        return ip("-n", self.host, "-4", "-o", "addr", "show", "dev", "lo").stdout


@contextlib.contextmanager
def namespaces() -> Iterator[Namespaces]:
    number = next(_counter)
    made = Namespaces(f"chh-{os.getpid()}-{number}", f"chc-{os.getpid()}-{number}")
    try:
        ip("netns", "add", made.host)
        ip("netns", "add", made.container)
        # Made inside the host namespace, its peer moved straight into the container's.
        ip(
            "-n",
            made.host,
            "link",
            "add",
            "vh",
            "type",
            "veth",
            "peer",
            "name",
            "vc",
            "netns",
            made.container,
        )
        ip("-n", made.host, "addr", "add", f"{HOST_SIDE}/30", "dev", "vh")
        ip("-n", made.container, "addr", "add", f"{CONTAINER_SIDE}/30", "dev", "vc")
        for namespace, link in ((made.host, "vh"), (made.container, "vc")):
            ip("-n", namespace, "link", "set", "lo", "up")
            ip("-n", namespace, "link", "set", link, "up")
        ip("-n", made.container, "route", "add", "default", "via", HOST_SIDE)
        yield made
    finally:
        for listener in made.listeners:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)  # ends the accept() blocked on it
            listener.close()
        for namespace in (made.container, made.host):  # removing one removes its end of the veth
            ip("netns", "del", namespace, check=False)
