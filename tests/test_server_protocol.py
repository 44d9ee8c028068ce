"""The endpoint's request rules as pure functions, and its connection cap on an in-process server."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator

import pytest

from credhelper.credentials import Credentials
from credhelper.endpoint.protocol import BadRequest, UnknownProfile, answer, head_length, parse_head
from credhelper.endpoint.server import CredentialServer, connection_cap
from credhelper.errors import CredhelperError

TOKEN = "test-token"
FAKE = Credentials("ASIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "FwoGZXEXAMPLE", 4e9)


def lookup(name: str) -> Credentials:
    if name == "bedrock":
        return FAKE
    if name == "broken":
        raise CredhelperError("profile broken: AccessDenied")
    raise UnknownProfile(name)


def status_of(head: str) -> int:
    try:
        request = parse_head(head.encode())
    except BadRequest as refused:
        return refused.response.status
    return answer(request, TOKEN, lookup).status


GOOD = "GET /v1/credentials/bedrock HTTP/1.1\r\nHost: 127.0.0.1:9911\r\nAuthorization: test-token\r\n\r\n"


@pytest.mark.parametrize(
    ("head", "status"),
    [
        (GOOD, 200),
        (GOOD.replace("\r\n", "\n"), 200),
        (GOOD.replace("bedrock", "nobody"), 404),
        (GOOD.replace("bedrock", "broken"), 503),
        (GOOD.replace("bedrock HTTP", "bedrock?x=1 HTTP"), 404),
        (GOOD.replace("GET", "POST"), 405),
        (GOOD.replace("Authorization: test-token\r\n", ""), 401),
        (GOOD.replace("test-token", "test-tokem"), 403),
        (GOOD.replace("Host:", "hOsT:"), 200),
        (GOOD.replace("127.0.0.1:9911", "[::1]:9911"), 200),
        (GOOD.replace("127.0.0.1:9911", "localhost"), 200),
        (GOOD.replace("127.0.0.1:9911", "evil.example"), 421),
        (GOOD.replace("127.0.0.1:9911", "evil.example@127.0.0.1"), 421),
        (GOOD.replace("127.0.0.1:9911", "127.0.0.1:9911, evil.example"), 421),
        (GOOD.replace("127.0.0.1:9911", ""), 421),
        (GOOD.replace("Host: 127.0.0.1:9911\r\n", ""), 400),
        (GOOD.replace("Host: 127.0.0.1:9911", "Host: 127.0.0.1\r\nHost: evil.example"), 400),
        (GOOD.replace("Host: 127.0.0.1:9911", "Host: 127.0.0.1\r\nHost: 127.0.0.1"), 400),
        (GOOD.replace("Authorization: test-token", "Authorization: x\r\nAuthorization: test-token"), 400),
        (GOOD.replace("/v1/", "http://evil.example/v1/"), 400),
        (GOOD.replace("/v1/", "*/v1/"), 400),
        (GOOD.replace("HTTP/1.1", "HTTP/1.0"), 200),
        (GOOD.replace("HTTP/1.1", "HTTP/2.0"), 505),
        (GOOD.replace("HTTP/1.1", ""), 400),
        (GOOD.replace("Host: ", "Host : "), 400),
        (GOOD.replace("Host: 127.0.0.1:9911", "Host:\r\n 127.0.0.1:9911"), 400),
        (GOOD.replace("GET ", "GET  "), 400),
        ("\r\n\r\n", 400),
    ],
)
def test_request_rules(head: str, status: int) -> None:
    assert status_of(head) == status


def test_the_answer_is_the_container_contract() -> None:
    response = answer(parse_head(GOOD.encode()), TOKEN, lookup)
    assert json.loads(response.body) == {
        "AccessKeyId": "ASIAIOSFODNN7EXAMPLE",
        "SecretAccessKey": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "Token": "FwoGZXEXAMPLE",
        "Expiration": "2096-10-02T07:06:40Z",
    }


def test_a_head_is_complete_at_its_blank_line() -> None:
    assert head_length(b"GET / HTTP/1.1\r\nHost: x\r\n") is None
    assert head_length(b"GET / HTTP/1.1\r\nHost: x\r\n\r\nextra") == len(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")


def test_the_connection_cap_leaves_most_descriptors_to_the_daemon() -> None:
    assert connection_cap(1024) == 256
    assert connection_cap(20000) == 256
    assert connection_cap(256) == 64
    assert connection_cap(16) == 8


# -- an in-process server ------------------------------------------------------------------


@pytest.fixture
def gate() -> threading.Event:
    return threading.Event()


@pytest.fixture
def waiting() -> threading.Semaphore:
    """Released once per request that reached the lookup."""
    return threading.Semaphore(0)


@pytest.fixture
def server(gate: threading.Event, waiting: threading.Semaphore) -> Iterator[CredentialServer]:
    def waiting_lookup(name: str) -> Credentials:
        waiting.release()
        gate.wait(30)  # a refresh in flight
        return lookup(name)

    running = CredentialServer("127.0.0.1", 0, waiting_lookup, TOKEN, max_connections=4)
    running.start()
    yield running
    gate.set()
    running.stop()


def connect(server: CredentialServer) -> socket.socket:
    host, port = server.url.removeprefix("http://").rsplit(":", 1)
    return socket.create_connection((host, int(port)), timeout=10)


def send_request(server: CredentialServer) -> socket.socket:
    sock = connect(server)
    sock.sendall(GOOD.encode())
    return sock


def read_all(sock: socket.socket) -> bytes:
    received = b""
    try:
        while chunk := sock.recv(4096):
            received += chunk
    except ConnectionResetError:
        pass
    sock.close()
    return received


def test_an_idle_connection_makes_room_for_a_request(server: CredentialServer, gate: threading.Event) -> None:
    gate.set()
    idle = [connect(server) for _ in range(4)]
    assert read_all(send_request(server)).startswith(b"HTTP/1.1 200 OK")
    assert read_all(idle[0]) == b""  # the oldest idle one was closed to make room
    for sock in idle[1:]:
        sock.close()


def test_when_every_connection_is_busy_a_new_one_is_closed_at_once(
    server: CredentialServer, gate: threading.Event, waiting: threading.Semaphore
) -> None:
    busy = [send_request(server) for _ in range(4)]
    for _ in busy:
        assert waiting.acquire(timeout=10)
    assert read_all(send_request(server)) == b""
    gate.set()
    assert [read_all(sock).split(b"\r\n")[0] for sock in busy] == [b"HTTP/1.1 200 OK"] * 4


def test_stop_is_safe_before_start_and_twice() -> None:
    never_started = CredentialServer("127.0.0.1", 0, lookup)
    never_started.stop()
    never_started.stop()
    started = CredentialServer("127.0.0.1", 0, lookup)
    assert len(started.token) >= 32
    started.start()
    started.stop()
    started.stop()
    with pytest.raises(OSError):
        connect(started)
