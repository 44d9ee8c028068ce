"""Containers (DESIGN section 14): what `credhelper env PROFILE --container` prints for a container
to get credentials from the daemon's listener on 169.254.170.2, and `credhelper containers setup`,
the one privileged step that makes that address the host's own (on its loopback interface).

Linux only: Docker Desktop runs containers in a VM that cannot reach the host's loopback addresses.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from collections.abc import Callable, Mapping
from urllib.parse import urlsplit

from .endpoint.containers import address_is_local
from .endpoint.discovery import running_endpoint
from .endpoint.protocol import CONTAINER_ADDRESS, CREDENTIALS_PATH, credentials_url
from .errors import CredhelperError, UsageError
from .fileio import read_regular_file
from .profile import Profile

IN_CONTAINER_DIR = "/run/credhelper"  # where the host's token directory is mounted, read-only
IN_CONTAINER_TOKEN = f"{IN_CONTAINER_DIR}/token"
DEFAULT_SERVICE = "app"
ECS_PORT = 80  # the relative URI means http://169.254.170.2:80
UNPRIVILEGED_PORT_START = "/proc/sys/net/ipv4/ip_unprivileged_port_start"
ADD_ADDRESS = ("ip", "addr", "add", f"{CONTAINER_ADDRESS}/32", "dev", "lo")
LINUX_ONLY = (
    "Containers reach this endpoint on Linux only: Docker Desktop (macOS, Windows) runs containers "
    f"in a VM that cannot reach the host's loopback addresses, so {CONTAINER_ADDRESS} on this host "
    "would serve no container."
)


def container_values(
    profile: Profile, endpoint: Mapping[str, str], token: str | None = None
) -> tuple[dict[str, str], str | None]:
    """The variables a container needs for `profile` from the daemon's record `endpoint`, and the
    host directory to mount read-only at /run/credhelper (None with `token`, the token's value,
    which then rides in a variable instead of the file)."""
    url = endpoint["containers_url"]
    if urlsplit(url).port == ECS_PORT:  # SDK paths that take only the ECS relative form
        values = {"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": f"{CREDENTIALS_PATH}{profile.name}"}
    else:
        values = {"AWS_CONTAINER_CREDENTIALS_FULL_URI": credentials_url(url, profile.name)}
    if token is not None:
        values["AWS_CONTAINER_AUTHORIZATION_TOKEN"] = token
    else:
        values["AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"] = IN_CONTAINER_TOKEN
    if profile.region:
        values.update(AWS_REGION=profile.region, AWS_DEFAULT_REGION=profile.region)
    return values, None if token is not None else endpoint["containers_token_dir"]


def container_env(
    profile: Profile,
    environ: Mapping[str, str],
    cache_dir: str,
    output: str,
    service: str | None,
    token_value: bool,
) -> str:
    """What `env PROFILE --container` prints; an error (1) when no running daemon serves containers."""
    endpoint = running_endpoint(environ, cache_dir, profile, containers=True)
    values, mount = container_values(profile, endpoint, read_token(endpoint) if token_value else None)
    return format_container(values, mount, output, service or DEFAULT_SERVICE)


def read_token(endpoint: Mapping[str, str]) -> str:
    """The token's value (`env --container --token-value`), from the daemon's token file."""
    try:
        found = read_regular_file(endpoint["token_file"], 4096)
    except OSError as error:
        raise CredhelperError(f"cannot read the endpoint's token: {error.strerror}") from None
    if found is None:
        raise CredhelperError("the daemon's token file is gone: restart the daemon, then run this again")
    return found[0].decode(errors="replace").strip()


def format_container(values: dict[str, str], mount: str | None, output: str, service: str) -> str:
    """`values` and the mount as `env --container` prints them: sh (export lines), docker (a
    `docker run --env-file` file: KEY=VALUE, no quotes), compose (a service override) or json;
    the `-v` option as a comment in sh and docker."""
    if mount is not None and (any(ord(c) < 32 or c == "\x7f" for c in mount) or "," in mount or ":" in mount):
        raise UsageError(
            f"{mount!r}: the token directory's path holds a control character, ',' or ':', which a "
            "mount option cannot carry; set XDG_RUNTIME_DIR to a plain path"
        )
    volume = f"{mount}:{IN_CONTAINER_DIR}:ro" if mount else None
    if output == "json":
        return json.dumps({"environment": values, "volumes": [volume] if volume else []}, indent=2)
    if output == "compose":
        lines = ["services:", f"  {json.dumps(service)}:", "    environment:"]
        lines += [f"      {key}: {json.dumps(value.replace('$', '$$'))}" for key, value in values.items()]
        if mount:
            # Compose interpolates `$` in every value: `$$` is a literal one
            source = json.dumps(mount.replace("$", "$$"))
            lines += ["    volumes:", "      - type: bind", f"        source: {source}"]
            lines += [f"        target: {IN_CONTAINER_DIR}", "        read_only: true"]
        return "\n".join(lines)
    env_file = "--env-file FILE " if output == "docker" else ""
    comment = [f"# docker run {env_file}-v {shlex.quote(volume)} ..."] if volume else []
    if output == "docker":
        return "\n".join([*comment, *(f"{key}={value}" for key, value in values.items())])
    return "\n".join([*comment, *(f"export {key}={shlex.quote(value)}" for key, value in values.items())])


# -- containers setup -------------------------------------------------------------------------


def address_present() -> bool:
    """Whether 169.254.170.2 is an address of this host (of its network namespace)."""
    return address_is_local()


def add_address() -> None:
    """As root: the address on the loopback interface (`ip addr add`), once."""
    try:
        done = subprocess.run(ADD_ADDRESS, capture_output=True, text=True, timeout=30, check=False)
    except OSError as error:
        raise CredhelperError(f"cannot run `{shlex.join(ADD_ADDRESS)}`: {error.strerror}") from None
    if done.returncode != 0 and not address_present():
        detail = (done.stderr.strip().splitlines() or ["failed"])[-1]
        raise CredhelperError(f"`{shlex.join(ADD_ADDRESS)}` failed: {detail}")


def unprivileged_port_start() -> int | None:
    try:
        with open(UNPRIVILEGED_PORT_START) as file:
            return int(file.read().strip())
    except (OSError, ValueError):
        return None


def setup(echo: Callable[[str], None], platform: str = sys.platform) -> None:
    """`credhelper containers setup`: the address on the host's loopback interface (as root: added,
    once; else the command to run), how to make it permanent, and what port 80 needs."""
    if platform != "linux":
        raise CredhelperError(LINUX_ONLY)
    command = shlex.join(ADD_ADDRESS)
    if address_present():
        echo(f"{CONTAINER_ADDRESS} is an address of this host already: nothing to do now.")
    elif os.geteuid() == 0:
        add_address()
        echo(f"Added {CONTAINER_ADDRESS} to the loopback interface: {command}")
    else:
        echo(f"{CONTAINER_ADDRESS} is not an address of this host yet. As root, run:")
        echo(f"  sudo {command}        (or: sudo credhelper containers setup)")
    start = unprivileged_port_start()
    # `replace` at boot: no failure when something else has added the address already
    echo(PERMANENT.format(address=CONTAINER_ADDRESS, command=command.replace(" add ", " replace ", 1)))
    echo(PORT_80.format(now="unknown" if start is None else start))
    echo(NEXT_STEPS)


PERMANENT = """
The address is gone at the next boot. To keep it, either
  systemd-networkd: /etc/systemd/network/10-credhelper-lo.network
      [Match]
      Name=lo

      [Network]
      KeepConfiguration=yes

      [Address]
      Address={address}/32
    then: sudo networkctl reload
  NetworkManager (1.42 or later manages lo):
      sudo nmcli connection modify lo +ipv4.addresses {address}/32
      sudo nmcli connection up lo
  or a root oneshot unit with ExecStart=/usr/sbin/{command}"""

PORT_80 = """
containers_port = 80 (for SDK paths that take only AWS_CONTAINER_CREDENTIALS_RELATIVE_URI)
needs the daemon to run as root, or net.ipv4.ip_unprivileged_port_start <= 80 (now: {now}):
  sudo sysctl -w net.ipv4.ip_unprivileged_port_start=80
  (and in /etc/sysctl.d/ to keep it). CAP_NET_BIND_SERVICE does not work in a user unit."""

NEXT_STEPS = f"""
Keep it off the network (the token is always required anyway): Linux accepts a packet for any of
its addresses on any interface, so drop the address on each interface facing the network, e.g.
  sudo iptables -I INPUT -i eth0 -d {CONTAINER_ADDRESS} -j DROP
(not on lo, docker0 or your containers' bridges); arp_ignore alone does not stop a neighbour that
routes to it: sudo sysctl -w net.ipv4.conf.all.arp_ignore=1 only hides it from ARP.
Then set serve_containers = true in the [daemon] table of the configuration, restart the daemon
(a daemon already serving, reload: systemctl --user reload credhelper), and run
`credhelper env PROFILE --container --format compose` (or docker).
{LINUX_ONLY}"""
