"""Containers (DESIGN section 14) without a container engine: a network namespace stands in for the
container (tests/netns.py), a mount namespace for the read-only bind mount of the token's
directory, and botocore and the JS SDK inside it get the role's credentials from the daemon's
listener on 169.254.170.2, renewed ones after a refresh."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator

import pytest
import yaml

from tests.conftest import UserHome
from tests.daemonproc import DaemonProcess, wait_for
from tests.helpers import assert_no_secret, assert_one_line_failure
from tests.netns import HOST_SIDE, Namespaces, namespaces
from tests.nodecheck import NODE_DIR

ASSUMED = "arn:aws:sts::123456789012:assumed-role/BedrockAccessRole/credhelper-test"
ADDRESS = "169.254.170.2"
SERVE_CONTAINERS = "\n[daemon]\nserve_containers = true\n"
MISSING = f"{ADDRESS} is not an address of this host"

NAMESPACES_POSSIBLE = (
    sys.platform == "linux"
    and os.geteuid() == 0
    and all(shutil.which(tool) for tool in ("ip", "unshare", "setpriv"))
)

# botocore's default chain, as an app in the container runs it; prints the key id and the caller.
BOTOCORE_APP = textwrap.dedent("""\
    import json, sys
    import botocore.session
    session = botocore.session.get_session()
    credentials = session.get_credentials().get_frozen_credentials()
    client = session.create_client("sts", region_name="us-east-1", endpoint_url=sys.argv[1])
    arn = client.get_caller_identity()["Arn"]
    print(json.dumps({"keyId": credentials.access_key, "arn": arn}))
    """)

# A container app that lives on: a fresh botocore session per line on stdin, its key id printed,
# or the error it met.
LONG_LIVED_APP = textwrap.dedent("""\
    import json, sys
    import botocore.session
    for line in sys.stdin:
        try:
            credentials = botocore.session.get_session().get_credentials().get_frozen_credentials()
            print(json.dumps({"keyId": credentials.access_key}), flush=True)
        except Exception as error:
            print(json.dumps({"error": type(error).__name__}), flush=True)
    """)

# One raw request: the status the endpoint answers, or "refused" when nothing listens there.
RAW_REQUEST = textwrap.dedent("""\
    import http.client, json, sys
    host, port, path, *headers = sys.argv[1:]
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        connection.putrequest("GET", path, skip_host=True)
        for header in headers:
            name, _, value = header.partition(": ")
            connection.putheader(name, value)
        connection.endheaders()
        response = connection.getresponse()
        print(response.status)
        if response.status == 200:  # and the expiry, the one field that is no secret
            print(json.loads(response.read())["Expiration"])
    except ConnectionRefusedError:
        print("refused")
    """)


@pytest.fixture
def world(home: UserHome) -> Iterator[Namespaces]:
    """The two namespaces; the daemon's STS (the proxy) reachable from the host namespace and the
    local STS from the container's, each on the port and address it has here."""
    if not NAMESPACES_POSSIBLE:
        pytest.skip("network and mount namespaces: Linux, root, ip, unshare and setpriv")
    with namespaces() as made:
        made.forward_port(made.host, port_of(home.proxy.url))
        made.forward_port(made.container, port_of(home.sts.url))
        yield made


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1].split("/")[0])


def start_daemon(
    home: UserHome, world: Namespaces, daemons: list[DaemonProcess], *args: str
) -> DaemonProcess:
    daemon = DaemonProcess(home, *args, wrapper=world.in_host())
    daemons.append(daemon)
    daemon.wait_running()
    return daemon


def container_env(home: UserHome, *args: str) -> dict[str, object]:
    result = home.run("env", "bedrock", "--container", "--format", "json", *args)
    assert result.returncode == 0, result.stderr
    parsed: dict[str, object] = json.loads(result.stdout)
    return parsed


def container_command(
    home: UserHome, world: Namespaces, printed: dict[str, object], *argv: str, file_only: bool = False
) -> tuple[list[str], dict[str, str]]:
    """The command and environment that run `argv` in the container namespace, with the variables
    `env --container` printed and, in a mount namespace of its own, the host directory it printed
    mounted read-only where it said (`file_only`: the token file alone, as people are tempted to)."""
    variables = dict(printed["environment"])  # type: ignore[call-overload]
    mounts = ""
    for volume in printed["volumes"]:  # type: ignore[attr-defined]
        source, target, mode = volume.rsplit(":", 2)
        assert mode == "ro"
        if file_only:
            source, target = f"{source}/token", f"{target}/token"
            mounts += f"mkdir -p {shlex.quote(os.path.dirname(target))} && touch {shlex.quote(target)} && "
        else:
            mounts += f"mkdir -p {shlex.quote(target)} && "
        mounts += f"mount --bind -o ro {shlex.quote(source)} {shlex.quote(target)} && "
    script = f'mount -t tmpfs none /run && {mounts}exec "$@"'
    app_home = home.root.parent / "container-home"
    app_home.mkdir(exist_ok=True)
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": str(app_home),  # no ~/.aws: the container's chain reaches the endpoint
        "PYTHONPATH": home.env["PYTHONPATH"],
        "NODE_PATH": str(NODE_DIR / "node_modules"),
        **variables,
    }
    command = world.in_container("unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh", *argv)
    return command, env


def in_container(
    home: UserHome, world: Namespaces, printed: dict[str, object], *argv: str
) -> subprocess.CompletedProcess[str]:
    command, env = container_command(home, world, printed, *argv)
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=90)


def botocore_in_container(home: UserHome, world: Namespaces, printed: dict[str, object]) -> dict[str, str]:
    result = in_container(home, world, printed, sys.executable, "-c", BOTOCORE_APP, home.sts.url)
    assert result.returncode == 0, result.stderr
    found: dict[str, str] = json.loads(result.stdout)
    return found


def node_in_container(
    home: UserHome, world: Namespaces, printed: dict[str, object], provider: str = "chain"
) -> dict[str, str]:
    node = shutil.which("node")
    assert node and (NODE_DIR / "node_modules" / "@aws-sdk" / "client-sts").is_dir(), "run `sh dev test`"
    script = str(NODE_DIR / "container-credentials.js")
    result = in_container(home, world, printed, node, script, provider, home.sts.url)
    assert result.returncode == 0, result.stderr
    found: dict[str, str] = json.loads(result.stdout)
    return found


def raw_status(world: Namespaces, host: str, port: int, *headers: str) -> str:
    path = "/v1/credentials/bedrock"
    result = subprocess.run(
        world.in_container(sys.executable, "-c", RAW_REQUEST, host, str(port), path, *headers),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().replace("\n", " ")


def setup_in_host(home: UserHome, world: Namespaces) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        world.in_host(sys.executable, "-m", "credhelper", "containers", "setup"),
        env=home.env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_containers_setup_adds_the_address_once_and_says_how_to_keep_it(
    home: UserHome, world: Namespaces
) -> None:
    first = setup_in_host(home, world)
    assert first.returncode == 0, first.stderr
    assert f"Added {ADDRESS} to the loopback interface" in first.stdout
    assert f"{ADDRESS}/32" in world.host_loopback_addresses()
    for permanent in ("systemd-networkd", "NetworkManager", "ip_unprivileged_port_start", "arp_ignore"):
        assert permanent in first.stdout
    again = setup_in_host(home, world)
    assert again.returncode == 0, again.stderr
    assert "already" in again.stdout
    assert world.host_loopback_addresses().count(f"{ADDRESS}/32") == 1


def test_sdks_in_a_container_get_the_roles_credentials_and_renewed_ones(
    home: UserHome, world: Namespaces, daemons: list[DaemonProcess]
) -> None:
    assert setup_in_host(home, world).returncode == 0
    home.write_config(extra=SERVE_CONTAINERS)
    daemon = start_daemon(home, world, daemons)
    printed = container_env(home)
    variables = printed["environment"]
    assert variables["AWS_CONTAINER_CREDENTIALS_FULL_URI"] == f"http://{ADDRESS}:9911/v1/credentials/bedrock"
    assert variables["AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"] == "/run/credhelper/token"

    botocore_saw = botocore_in_container(home, world, printed)
    node_saw = node_in_container(home, world, printed)
    assert botocore_saw["arn"] == node_saw["arn"] == ASSUMED
    first = wait_for(daemon.cached_key_id, 30)
    assert botocore_saw["keyId"] == node_saw["keyId"] == first

    daemon.signal(signal.SIGUSR1)  # a renewal: every profile refreshed now
    renewed = wait_for(lambda: (key := daemon.cached_key_id()) != first and key, 30)
    assert botocore_in_container(home, world, printed)["keyId"] == renewed
    assert node_in_container(home, world, printed, "http")["keyId"] == renewed
    assert_no_secret(home, daemon.log, json.dumps(printed))


def test_the_token_and_the_host_are_checked_and_nothing_listens_on_the_veth(
    home: UserHome, world: Namespaces, daemons: list[DaemonProcess]
) -> None:
    world.add_container_address()
    daemon = start_daemon(home, world, daemons, "--serve-containers")
    token = (home.cache_dir / "containers" / "token").read_text()
    assert token and not token.endswith("\n")  # botocore refuses a token with a newline
    host = f"Host: {ADDRESS}:9911"
    status, expiration = raw_status(world, ADDRESS, 9911, host, f"Authorization: {token}").split()
    assert status == "200" and expiration.endswith("Z")  # the JS SDK refuses +00:00
    assert raw_status(world, ADDRESS, 9911, host) == "401"
    assert raw_status(world, ADDRESS, 9911, host, f"Authorization: {token[:-1]}!") == "403"
    for other in ("Host: attacker.example", "Host: 127.0.0.1:9911", f"Host: {HOST_SIDE}:9911"):
        assert raw_status(world, ADDRESS, 9911, other, f"Authorization: {token}") == "421"
    # Only 169.254.170.2 is bound: the host side of the veth serves nothing.
    assert raw_status(world, HOST_SIDE, 9911, f"Host: {ADDRESS}:9911", f"Authorization: {token}") == "refused"
    assert token not in daemon.log


def test_without_the_address_the_daemon_says_what_is_missing_once_and_serves_loopback(
    home: UserHome, world: Namespaces, daemons: list[DaemonProcess]
) -> None:
    home.write_config(extra=SERVE_CONTAINERS + 'serve = "127.0.0.1:9911"\n')
    daemon = start_daemon(home, world, daemons)
    missing = [line for line in daemon.log.splitlines() if "169.254.170.2" in line]
    assert len(missing) == 1 and MISSING in missing[0] and "credhelper containers setup" in missing[0]
    assert daemon.process.poll() is None
    served = home.run("env", "bedrock", "--format", "json")
    assert served.returncode == 0, served.stderr
    url = json.loads(served.stdout)["AWS_CONTAINER_CREDENTIALS_FULL_URI"]
    assert url == "http://127.0.0.1:9911/v1/credentials/bedrock"
    token = (home.cache_dir / "token").read_text()
    answered = subprocess.run(
        world.in_host(
            sys.executable,
            "-c",
            RAW_REQUEST,
            "127.0.0.1",
            "9911",
            "/v1/credentials/bedrock",
            "Host: 127.0.0.1:9911",
            f"Authorization: {token}",
        ),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert answered.stdout.startswith("200\n"), answered.stderr
    assert_one_line_failure(
        home.run("env", "bedrock", "--container"), 1, "no running daemon serves containers"
    )
    assert not (home.cache_dir / "containers" / "token").exists()
    told = setup_in_host(home, world)  # the fix the line names, then a reload: containers served
    assert told.returncode == 0 and f"Added {ADDRESS}" in told.stdout
    daemon.signal(signal.SIGHUP)
    wait_for(lambda: f"listening on http://{ADDRESS}:9911" in daemon.log, 30)
    printed = container_env(home)
    assert printed["volumes"] == [f"{home.cache_dir / 'containers'}:/run/credhelper:ro"]
    assert (home.cache_dir / "containers" / "token").read_text() == token  # one token for both
    assert botocore_in_container(home, world, printed)["arn"] == ASSUMED


def test_env_container_formats_for_docker_compose_and_sh_hold_no_secret(
    home: UserHome, world: Namespaces, daemons: list[DaemonProcess]
) -> None:
    world.add_container_address()
    home.write_config(extra=SERVE_CONTAINERS)
    daemon = start_daemon(home, world, daemons)
    token_dir = home.cache_dir / "containers"
    token = (token_dir / "token").read_text()
    volume = f"{token_dir}:/run/credhelper:ro"
    url = f"http://{ADDRESS}:9911/v1/credentials/bedrock"
    outputs = []

    docker = home.run("env", "bedrock", "--container", "--format", "docker")
    assert docker.returncode == 0, docker.stderr
    outputs.append(docker.stdout)
    comments = [line for line in docker.stdout.splitlines() if line.startswith("#")]
    assert len(comments) == 1 and f"-v {volume}" in comments[0]
    pairs = dict(line.split("=", 1) for line in docker.stdout.splitlines() if not line.startswith("#"))
    assert pairs == {  # docker's --env-file takes every character after `=` literally: no quotes
        "AWS_CONTAINER_CREDENTIALS_FULL_URI": url,
        "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE": "/run/credhelper/token",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
    }

    compose = home.run("env", "bedrock", "--container", "--format", "compose", "--service", "agent0")
    assert compose.returncode == 0, compose.stderr
    outputs.append(compose.stdout)
    service = yaml.safe_load(compose.stdout)["services"]["agent0"]
    assert service["environment"] == pairs
    assert service["volumes"] == [
        {"type": "bind", "source": str(token_dir), "target": "/run/credhelper", "read_only": True}
    ]
    default = home.run("env", "bedrock", "--container", "--format", "compose")
    assert list(yaml.safe_load(default.stdout)["services"]) == ["app"]

    sh = home.run("env", "bedrock", "--container")
    assert sh.returncode == 0, sh.stderr
    outputs.append(sh.stdout)
    assert f"# docker run -v {volume}" in sh.stdout
    assert f"export AWS_CONTAINER_CREDENTIALS_FULL_URI={url}" in sh.stdout.splitlines()

    for output in outputs:
        assert token not in output
        assert_no_secret(home, output, daemon.log)

    valued = home.run("env", "bedrock", "--container", "--format", "docker", "--token-value")
    assert valued.returncode == 0, valued.stderr
    assert f"AWS_CONTAINER_AUTHORIZATION_TOKEN={token}" in valued.stdout.splitlines()
    assert "TOKEN_FILE" not in valued.stdout and "-v " not in valued.stdout


def test_port_80_gives_the_relative_uri_and_the_js_sdks_container_metadata_provider(
    home: UserHome, world: Namespaces, daemons: list[DaemonProcess]
) -> None:
    world.add_container_address()
    home.write_config(extra=SERVE_CONTAINERS + "containers_port = 80\n")
    daemon = start_daemon(home, world, daemons)  # as root in its namespace: it may bind port 80
    printed = container_env(home)
    assert printed["environment"]["AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"] == "/v1/credentials/bedrock"
    assert "AWS_CONTAINER_CREDENTIALS_FULL_URI" not in printed["environment"]
    first = wait_for(daemon.cached_key_id, 30)
    assert botocore_in_container(home, world, printed)["keyId"] == first
    valued = container_env(home, "--token-value")
    assert valued["volumes"] == []
    node_saw = node_in_container(home, world, valued, "metadata")
    assert node_saw == {"keyId": first, "arn": ASSUMED, "expiration": node_saw["expiration"]}


def test_env_container_without_a_daemon_serving_containers_exits_1(
    home: UserHome, daemons: list[DaemonProcess]
) -> None:
    assert_one_line_failure(home.run("env", "bedrock", "--container"), 1, "serve_containers = true")
    daemon = DaemonProcess(home, "--serve", "127.0.0.1:0")  # loopback only
    daemons.append(daemon)
    daemon.wait_running()
    assert_one_line_failure(home.run("env", "bedrock", "--container", "--format", "docker"), 1, "containers")


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("--format", "docker"), "--format docker is for --container"),
        (("--container", "--format", "dotenv"), "--container prints"),
        (("--container", "--service", "web"), "--service"),
        (("--container", "--format", "compose", "--service", "no way"), "--service"),
        (("--token-value",), "--token-value is for --container"),
        (("--container", "--static"), "choose one"),
    ],
)
def test_env_container_options_that_do_not_go_together_are_a_usage_error(
    home: UserHome, args: tuple[str, ...], needle: str
) -> None:
    result = home.run("env", "bedrock", *args)
    assert result.returncode == 2, result.stderr
    assert needle in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("table", "needle"),
    [
        ('serve_containers = "yes"', "serve_containers: must be true or false"),
        ("containers_port = 0", "containers_port: must be a port number"),
        ('containers_port = "80"', "containers_port: must be a port number"),
        ("serve_container = true", "[daemon] takes"),
    ],
)
def test_daemon_table_mistakes_are_one_line_78(home: UserHome, table: str, needle: str) -> None:
    home.write_config(extra=f"\n[daemon]\n{table}\n")
    assert_one_line_failure(home.run("env", "bedrock", "--container"), 78, needle)


def test_containers_setup_elsewhere_than_linux_says_linux_only() -> None:
    from credhelper.containers import setup
    from credhelper.errors import CredhelperError

    with pytest.raises(CredhelperError, match="Linux only: Docker Desktop"):
        setup(print, platform="darwin")


@pytest.mark.parametrize("file_only", [False, True], ids=["directory-mount", "file-mount"])
def test_a_daemon_restart_reaches_a_running_container_through_the_directory_mount_only(
    home: UserHome, world: Namespaces, daemons: list[DaemonProcess], file_only: bool
) -> None:
    world.add_container_address()
    home.write_config(extra=SERVE_CONTAINERS)
    first = start_daemon(home, world, daemons)
    printed = container_env(home)
    command, env = container_command(
        home, world, printed, sys.executable, "-c", LONG_LIVED_APP, file_only=file_only
    )
    app = subprocess.Popen(command, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert app.stdin and app.stdout

        def ask() -> dict[str, str]:
            app.stdin.write("\n")  # type: ignore[union-attr]
            app.stdin.flush()  # type: ignore[union-attr]
            answer: dict[str, str] = json.loads(app.stdout.readline())  # type: ignore[union-attr]
            return answer

        assert ask()["keyId"] == first.cached_key_id()
        old_token = (home.cache_dir / "containers" / "token").read_text()
        first.stop()
        second = start_daemon(home, world, daemons)
        assert (home.cache_dir / "containers" / "token").read_text() != old_token
        if file_only:  # the old inode: the old token, refused
            assert ask() == {"error": "CredentialRetrievalError"}
        else:
            assert ask()["keyId"] == second.cached_key_id()
    finally:
        app.kill()
        app.wait()


def test_port_80_without_the_right_to_bind_it_is_one_line_and_loopback_goes_on(
    home: UserHome, world: Namespaces, daemons: list[DaemonProcess]
) -> None:
    world.add_container_address()
    home.write_config(extra=SERVE_CONTAINERS + 'containers_port = 80\nserve = "127.0.0.1:9911"\n')
    # Root without CAP_NET_BIND_SERVICE, as a user unit is; the namespace's own
    # net.ipv4.ip_unprivileged_port_start is the default 1024.
    no_bind = ["setpriv", "--bounding-set", "-net_bind_service", "--inh-caps", "-net_bind_service"]
    daemon = DaemonProcess(home, wrapper=[*world.in_host(), *no_bind])
    daemons.append(daemon)
    daemon.wait_running()
    told = [line for line in daemon.log.splitlines() if "169.254.170.2" in line]
    assert len(told) == 1 and "ip_unprivileged_port_start <= 80" in told[0], daemon.log
    assert daemon.process.poll() is None
    assert home.run("env", "bedrock").returncode == 0
    assert_one_line_failure(
        home.run("env", "bedrock", "--container"), 1, "no running daemon serves containers"
    )


def test_a_reload_opens_closes_and_moves_the_listener_as_the_configuration_now_says(
    home: UserHome, world: Namespaces, daemons: list[DaemonProcess]
) -> None:
    """One SIGHUP is enough each way: serve_containers added, containers_port changed, and
    serve_containers removed (a container then gets nothing: the exposure is off when it says so)."""
    world.add_container_address()
    loopback = '\n[daemon]\nserve = "127.0.0.1:9911"\n'
    home.write_config(extra=loopback)
    daemon = start_daemon(home, world, daemons)
    token = (home.cache_dir / "token").read_text()
    asked = (f"Host: {ADDRESS}", f"Authorization: {token}")

    home.write_config(extra=SERVE_CONTAINERS + 'serve = "127.0.0.1:9911"\ncontainers_port = 9912\n')
    daemon.signal(signal.SIGHUP)
    wait_for(lambda: f"listening on http://{ADDRESS}:9912" in daemon.log, 30)
    wait_for(lambda: home.run("env", "bedrock", "--container").returncode == 0, 30)
    assert raw_status(world, ADDRESS, 9912, *asked).startswith("200")

    home.write_config(extra=SERVE_CONTAINERS + 'serve = "127.0.0.1:9911"\ncontainers_port = 9913\n')
    daemon.signal(signal.SIGHUP)
    wait_for(lambda: f"listening on http://{ADDRESS}:9913" in daemon.log, 30)
    assert raw_status(world, ADDRESS, 9913, *asked).startswith("200")
    assert raw_status(world, ADDRESS, 9912, *asked).startswith("refused")
    assert ":9913/" in json.dumps(container_env(home))

    home.write_config(extra=loopback)
    daemon.signal(signal.SIGHUP)
    wait_for(lambda: "no longer serving containers" in daemon.log, 30)
    assert raw_status(world, ADDRESS, 9913, *asked).startswith("refused")
    off = home.run("env", "bedrock", "--container")
    assert_one_line_failure(off, 1, "no running daemon serves containers")
    assert not (home.cache_dir / "containers" / "token").exists()
    assert home.run("env", "bedrock").returncode == 0, "the loopback endpoint went with it"


def test_a_token_directory_that_is_a_symlink_or_holds_other_files_is_refused(
    home: UserHome, world: Namespaces, daemons: list[DaemonProcess]
) -> None:
    """The directory is mounted into containers whole: never where a symlink points (the user's
    ~/.aws, say), never beside other files."""
    world.add_container_address()
    home.write_config(extra=SERVE_CONTAINERS)
    home.cache_dir.mkdir(parents=True, mode=0o700, exist_ok=True)
    shared = home.cache_dir / "containers"
    shared.symlink_to(home.root / ".aws")
    daemon = DaemonProcess(home, wrapper=world.in_host())
    daemons.append(daemon)
    assert daemon.process.wait(60) == 78
    assert "is a symlink" in daemon.log and "Traceback" not in daemon.log
    assert os.listdir(home.root / ".aws") == ["credentials"], "the token was written where it points"

    shared.unlink()
    shared.mkdir(mode=0o700)
    (shared / "notes.txt").write_text("mine\n")
    again = DaemonProcess(home, wrapper=world.in_host())
    daemons.append(again)
    assert again.process.wait(60) == 78
    assert "holds notes.txt" in again.log


def test_an_address_a_nonlocal_bind_would_take_is_not_taken_for_the_hosts(
    home: UserHome, world: Namespaces, daemons: list[DaemonProcess]
) -> None:
    """With net.ipv4.ip_nonlocal_bind=1 a bind to 169.254.170.2 succeeds without the address:
    setup must still add it, and a daemon without it must say what is missing."""
    subprocess.run(world.in_host("sysctl", "-qw", "net.ipv4.ip_nonlocal_bind=1"), check=True)
    home.write_config(extra=SERVE_CONTAINERS + 'serve = "127.0.0.1:9911"\n')
    daemon = start_daemon(home, world, daemons)
    assert MISSING in daemon.log
    assert home.run("env", "bedrock", "--container").returncode == 1
    told = setup_in_host(home, world)
    assert told.returncode == 0 and f"Added {ADDRESS}" in told.stdout, told.stdout
    assert f"{ADDRESS}/32" in world.host_loopback_addresses()


def test_the_printed_mount_cannot_carry_another_line_or_an_interpolation() -> None:
    from credhelper.containers import format_container
    from credhelper.errors import UsageError

    values = {"AWS_REGION": "us-east-1"}
    for mount in ("/run/user/1000\nAWS_CONTAINER_CREDENTIALS_FULL_URI=http://x/", "/a:b", "/a,b"):
        with pytest.raises(UsageError, match="XDG_RUNTIME_DIR"):
            format_container(values, mount, "docker", "app")
    compose = format_container(values, "/home/me/$HOME/containers", "compose", "app")
    assert 'source: "/home/me/$$HOME/containers"' in compose
