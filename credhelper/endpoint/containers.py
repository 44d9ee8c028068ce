"""The daemon's listener for containers (DESIGN section 14): the endpoint once more, on the ECS
address 169.254.170.2, with the same token, bounds and rules, and a Host check that accepts that
address. The address is the host's own only after the one privileged step (`credhelper containers
setup`); until then the daemon says so in one line and serves loopback as before."""

from __future__ import annotations

import errno
import logging
import socket

from ..interfaces import Lookup
from .protocol import CONTAINER_ADDRESS, CONTAINER_HOST
from .server import CredentialServer

log = logging.getLogger("credhelper.server")
PRIVILEGED_PORTS_BELOW = 1024  # unless net.ipv4.ip_unprivileged_port_start says otherwise


def address_is_local() -> bool:
    """Whether 169.254.170.2 is an address of this host (of its network namespace): the route to
    it must be a local one, from itself. A bind is no test: with net.ipv4.ip_nonlocal_bind=1 it
    succeeds for an address the host does not have, and the listener would answer no one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect((CONTAINER_ADDRESS, 9))  # a route lookup; UDP sends nothing here
        except OSError:
            return False  # no route at all
        return bool(probe.getsockname()[0] == CONTAINER_ADDRESS)


def open_container_server(port: int, lookup: Lookup, token: str | None) -> CredentialServer | None:
    """A server listening on 169.254.170.2:`port` (not started), or None after one log line that
    says what is missing: never an exit, never a wait."""
    try:
        if not address_is_local():
            raise OSError(errno.EADDRNOTAVAIL, "not an address of this host")
        return CredentialServer(CONTAINER_ADDRESS, port, lookup, token, allowed_host=CONTAINER_HOST)
    except OSError as error:
        log.warning("%s", container_bind_problem(port, error))
        return None


def container_bind_problem(port: int, error: OSError) -> str:
    """The one line the daemon logs when it cannot listen for containers: what is missing, the fix."""
    where = f"{CONTAINER_ADDRESS}:{port}"
    if error.errno == errno.EADDRNOTAVAIL:
        missing = (
            f"{CONTAINER_ADDRESS} is not an address of this host; add it with "
            "`sudo credhelper containers setup`, then reload the daemon (SIGHUP)"
        )
    elif error.errno == errno.EACCES and port < PRIVILEGED_PORTS_BELOW:
        missing = (
            f"port {port} needs root or net.ipv4.ip_unprivileged_port_start <= {port} "
            "(CAP_NET_BIND_SERVICE does not work in a user unit); see `credhelper containers setup`"
        )
    elif error.errno == errno.EADDRINUSE:
        missing = "another process listens there; set another containers_port in [daemon]"
    else:
        missing = f"{error.strerror or error}"
    return f"containers: cannot listen on {where}: {missing}; containers get no credentials from this daemon"
