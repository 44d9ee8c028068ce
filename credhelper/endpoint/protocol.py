"""The endpoint's protocol, without I/O: a request head parsed strictly, the rules a request must
pass (the listener's Host: loopback, or the containers' address; the token, GET, the path), and the
bytes of every answer."""

from __future__ import annotations

import hmac
import http
import json
import re
from dataclasses import dataclass

from ..errors import CredhelperError
from ..interfaces import Lookup, UnknownProfile
from ..logsetup import redact

CREDENTIALS_PATH = "/v1/credentials/"  # then the profile's name
PATH = re.compile(rf"^{re.escape(CREDENTIALS_PATH)}([A-Za-z0-9_.-]{{1,64}})$")
LOOPBACK_HOST = re.compile(r"^(127(\.\d{1,3}){3}|localhost|\[::1\])(:\d{1,5})?$", re.IGNORECASE)
# The ECS/EKS link-local address SDKs accept plain http from: the containers' listener (DESIGN 14).
CONTAINER_ADDRESS = "169.254.170.2"
CONTAINER_HOST = re.compile(rf"^{re.escape(CONTAINER_ADDRESS)}(:\d{{1,5}})?$")
REQUEST_LINE = re.compile(r"^([A-Z]{1,16}) (\S{1,2048}) HTTP/(\d)\.(\d)$")
HEADER_LINE = re.compile(r"^([!#$%&'*+.^_`|~0-9A-Za-z-]+):[ \t]*(.*?)[ \t]*$")
HEAD_END = re.compile(rb"\r?\n\r?\n")

MAX_HEAD_BYTES = 8192
MAX_HEADERS = 64


def credentials_url(base_url: str, profile_name: str) -> str:
    """Where an SDK asks an endpoint at `base_url` for a profile's credentials."""
    return f"{base_url}{CREDENTIALS_PATH}{profile_name}"


@dataclass(frozen=True)
class Request:
    method: str
    target: str
    headers: tuple[tuple[str, str], ...]  # names lower-cased, in arrival order

    def values(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key == name]


@dataclass(frozen=True)
class Response:
    status: int
    body: str  # JSON


def refusal(status: int, message: str) -> Response:
    return Response(status, json.dumps({"error": message}))


class BadRequest(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.response = refusal(status, message)


def head_length(buffer: bytes) -> int | None:
    """The length of the request head (through the blank line) once it has all arrived."""
    end = HEAD_END.search(buffer)
    return end.end() if end else None


def parse_head(head: bytes) -> Request:
    """A request head, strictly: anything an SDK would not send is refused rather than guessed at."""
    lines = re.split(r"\r?\n", head.decode("iso-8859-1"))
    while lines and not lines[-1]:
        lines.pop()
    if not lines:
        raise BadRequest(400, "empty request")
    request_line = REQUEST_LINE.match(lines[0])
    if request_line is None:
        raise BadRequest(400, "malformed request line")
    method, target, major, minor = request_line.groups()
    if (major, minor) not in (("1", "0"), ("1", "1")):
        raise BadRequest(505, "use HTTP/1.1")
    if not target.startswith("/"):
        raise BadRequest(400, "use an origin-form target: /v1/credentials/PROFILE")
    if len(lines) - 1 > MAX_HEADERS:
        raise BadRequest(431, "too many header fields")
    headers = []
    for line in lines[1:]:
        field = HEADER_LINE.match(line)
        if field is None:  # also a folded line, or a space before the colon
            raise BadRequest(400, "malformed header field")
        headers.append((field.group(1).lower(), field.group(2)))
    return Request(method, target, tuple(headers))


def answer(
    request: Request, token: str, lookup: Lookup, allowed_host: re.Pattern[str] = LOOPBACK_HOST
) -> Response:
    """What the endpoint says to one request; `lookup` may wait for a refresh. `allowed_host`: the
    Host the listener accepts (loopback, or CONTAINER_HOST on the containers' address)."""
    hosts = request.values("host")
    if not hosts:
        return refusal(400, "missing Host header")
    if len(hosts) > 1:
        return refusal(400, "more than one Host header")
    if not allowed_host.match(hosts[0]):
        # A browser page on another name resolving to 127.0.0.1 (DNS rebinding).
        wanted = "a loopback address" if allowed_host is LOOPBACK_HOST else CONTAINER_ADDRESS
        return refusal(421, f"Host must be {wanted}")
    given = request.values("authorization")
    if len(given) > 1:
        return refusal(400, "more than one Authorization header")
    if request.method != "GET":
        return refusal(405, "use GET")
    if not given:
        return refusal(401, "missing Authorization header")
    if not hmac.compare_digest(given[0].encode(), token.encode()):
        return refusal(403, "wrong authorization token")
    match = PATH.match(request.target)
    if match is None:
        return refusal(404, "use /v1/credentials/PROFILE")
    try:
        credentials = lookup(match.group(1))
    except UnknownProfile:
        return refusal(404, f"no profile {match.group(1)!r}")
    except CredhelperError as error:
        return refusal(503, redact(str(error)))
    return Response(200, credentials.container_json())


def render(response: Response) -> bytes:
    payload = response.body.encode()
    head = (
        f"HTTP/1.1 {response.status} {http.HTTPStatus(response.status).phrase}\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(payload)}\r\n"
        "Cache-Control: no-store\r\n"
        "Connection: close\r\n\r\n"
    )
    return head.encode() + payload
