"""The container credentials endpoint (docs/architecture.md): what AWS SDKs call through
AWS_CONTAINER_CREDENTIALS_FULL_URI, served from the daemon's cache on loopback only.

Any local user can connect, so a connection costs little and never long: one selector thread accepts
connections and reads request heads, with a cap on open connections and a deadline per connection;
an idle or slow client holds a file descriptor for a few seconds and never a thread. A complete
request goes to a small fixed pool of workers, which may wait for the refresh in flight. Every
answer closes its connection.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hmac
import http
import json
import logging
import os
import queue
import re
import resource
import secrets
import selectors
import socket
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from .credentials import Credentials
from .errors import CredhelperError
from .fileio import PRIVATE_FILE, atomic_write, read_regular_file, remove_quietly, trusted_private_dir
from .logsetup import redact
from .paths import (
    CACHE_DIR_FIX,
    daemon_lock_path,
    daemon_pid_path,
    endpoint_path,
    is_trusted,
    runtime_dir,
    token_path,
    untrusted_reason,
)

log = logging.getLogger("credhelper.server")
PATH = re.compile(r"^/v1/credentials/([A-Za-z0-9_.-]{1,64})$")
LOOPBACK_HOST = re.compile(r"^(127(\.\d{1,3}){3}|localhost|\[::1\])(:\d{1,5})?$", re.IGNORECASE)
REQUEST_LINE = re.compile(r"^([A-Z]{1,16}) (\S{1,2048}) HTTP/(\d)\.(\d)$")
HEADER_LINE = re.compile(r"^([!#$%&'*+.^_`|~0-9A-Za-z-]+):[ \t]*(.*?)[ \t]*$")
HEAD_END = re.compile(rb"\r?\n\r?\n")

MAX_CONNECTIONS = 256
CONNECTION_SECONDS = 5.0  # from accept to a complete request head; SDKs send theirs at once
WRITE_SECONDS = 5.0
MAX_HEAD_BYTES = 8192
MAX_HEADERS = 64
WORKERS = 8
ACCEPT_PAUSE_SECONDS = 0.1


class UnknownProfile(Exception):
    pass


# Looks a profile's credentials up for a request: returns them, raises UnknownProfile, or raises
# CredhelperError when none can be had.
Lookup = Callable[[str], Credentials]


# -- the protocol, without I/O --------------------------------------------------------------


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


def answer(request: Request, token: str, lookup: Lookup) -> Response:
    """What the endpoint says to one request; `lookup` may wait for a refresh."""
    hosts = request.values("host")
    if not hosts:
        return refusal(400, "missing Host header")
    if len(hosts) > 1:
        return refusal(400, "more than one Host header")
    if not LOOPBACK_HOST.match(hosts[0]):
        # A browser page on another name resolving to 127.0.0.1 (DNS rebinding).
        return refusal(421, "Host must be a loopback address")
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


def connection_cap(open_file_limit: int) -> int:
    """At most a quarter of the descriptors the process may open: the rest stay the daemon's."""
    return max(8, min(MAX_CONNECTIONS, open_file_limit // 4))


# -- the server ----------------------------------------------------------------------------


@dataclass
class _Pending:
    sock: socket.socket
    deadline: float
    received: bytes = b""


class CredentialServer:
    def __init__(
        self,
        host: str,
        port: int,
        lookup: Lookup,
        token: str | None = None,
        *,
        max_connections: int | None = None,
        connection_seconds: float = CONNECTION_SECONDS,
    ) -> None:
        self.lookup = lookup
        self.token = token if token is not None else secrets.token_urlsafe(32)
        self.max_connections = max_connections or connection_cap(
            resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        )
        self.connection_seconds = connection_seconds
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        # Listening from here on: connections wait in the backlog until start().
        self.listener = socket.create_server((host, port), family=family, backlog=128)
        self.listener.setblocking(False)
        bound_host, bound_port = self.listener.getsockname()[:2]
        shown = f"[{bound_host}]" if ":" in str(bound_host) else str(bound_host)
        self.url = f"http://{shown}:{bound_port}"
        self._selector = selectors.DefaultSelector()
        self._wake_reader, self._wake_writer = socket.socketpair()
        self._wake_reader.setblocking(False)
        self._wake_writer.setblocking(False)
        self._pending: OrderedDict[socket.socket, _Pending] = OrderedDict()  # oldest first
        self._busy = 0  # connections handed to a worker, guarded by _lock
        self._lock = threading.Lock()
        self._work: queue.SimpleQueue[tuple[socket.socket, bytes] | None] = queue.SimpleQueue()
        self._accept_paused_until = 0.0
        self._started = False
        self._stopped = False
        self._thread: threading.Thread | None = None
        self._workers: list[threading.Thread] = []

    def start(self) -> None:
        with self._lock:
            if self._started or self._stopped:
                return
            self._started = True
        self._selector.register(self.listener, selectors.EVENT_READ)
        self._selector.register(self._wake_reader, selectors.EVENT_READ)
        for number in range(WORKERS):
            worker = threading.Thread(
                target=self._answer_requests, name=f"credhelper-endpoint-{number}", daemon=True
            )
            worker.start()
            self._workers.append(worker)
        self._thread = threading.Thread(target=self._serve, name="credhelper-endpoint", daemon=True)
        self._thread.start()
        log.info(
            "credentials endpoint listening on %s/v1/credentials/PROFILE (at most %d connections)",
            self.url,
            self.max_connections,
        )

    def stop(self) -> None:
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
        if self._thread is not None:
            with contextlib.suppress(OSError):
                self._wake_writer.send(b"x")
            self._thread.join(timeout=2.0)
        for _ in self._workers:
            self._work.put(None)  # a worker waiting for a refresh finishes its answer, then goes
        for pending in list(self._pending.values()):
            pending.sock.close()
        self._pending.clear()
        self._selector.close()
        self.listener.close()
        self._wake_reader.close()
        self._wake_writer.close()

    # -- selector thread --

    def _serve(self) -> None:
        while not self._stopped:
            try:
                events = self._selector.select(self._select_timeout())
            except OSError as error:
                log.error("credentials endpoint: %s", error)
                return
            if self._stopped:
                return
            for key, _ in events:
                if key.fileobj is self.listener:
                    self._accept()
                elif key.fileobj is self._wake_reader:
                    self._drain_wake()
                else:
                    self._receive(key.data)
            self._expire(time.monotonic())
            self._resume_accepting()

    def _select_timeout(self) -> float | None:
        now = time.monotonic()
        deadlines = [next(iter(self._pending.values())).deadline] if self._pending else []
        if self._accept_paused_until:
            deadlines.append(self._accept_paused_until)
        return max(0.0, min(deadlines) - now) if deadlines else None

    def _drain_wake(self) -> None:
        with contextlib.suppress(OSError):
            self._wake_reader.recv(64)

    def _accept(self) -> None:
        for _ in range(64):  # then let the connections already open be read
            try:
                sock, _ = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as error:
                if error.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    log.warning("credentials endpoint: %s; dropping the oldest idle connection", error)
                    if not self._evict_oldest():
                        self._pause_accepting()
                    return
                raise
            with self._lock:
                open_now = len(self._pending) + self._busy
            if open_now >= self.max_connections and not self._evict_oldest():
                sock.close()  # every connection is busy with a request: no room for one more
                continue
            sock.setblocking(False)
            pending = _Pending(sock, time.monotonic() + self.connection_seconds)
            self._pending[sock] = pending
            self._selector.register(sock, selectors.EVENT_READ, pending)

    def _evict_oldest(self) -> bool:
        """Make room by closing the connection that has waited longest without a complete request:
        a client that sends its request at once never is that one."""
        if not self._pending:
            return False
        oldest = next(iter(self._pending.values()))
        self._close_pending(oldest)
        return True

    def _pause_accepting(self) -> None:
        self._selector.unregister(self.listener)
        self._accept_paused_until = time.monotonic() + ACCEPT_PAUSE_SECONDS

    def _resume_accepting(self) -> None:
        if self._accept_paused_until and time.monotonic() >= self._accept_paused_until:
            self._accept_paused_until = 0.0
            self._selector.register(self.listener, selectors.EVENT_READ)

    def _receive(self, pending: _Pending) -> None:
        try:
            chunk = pending.sock.recv(4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            chunk = b""
        if not chunk:
            self._close_pending(pending)
            return
        pending.received += chunk
        length = head_length(pending.received)
        if length is None and len(pending.received) > MAX_HEAD_BYTES:
            self._refuse(pending, refusal(431, "request head too large"))
        elif length is not None:
            self._selector.unregister(pending.sock)
            del self._pending[pending.sock]
            with self._lock:
                self._busy += 1
            self._work.put((pending.sock, pending.received[:length]))

    def _expire(self, now: float) -> None:
        while self._pending:
            oldest = next(iter(self._pending.values()))
            if oldest.deadline > now:
                return
            self._close_pending(oldest)

    def _refuse(self, pending: _Pending, response: Response) -> None:
        with contextlib.suppress(OSError):
            pending.sock.send(render(response))
        self._close_pending(pending)

    def _close_pending(self, pending: _Pending) -> None:
        self._selector.unregister(pending.sock)
        del self._pending[pending.sock]
        pending.sock.close()

    # -- workers --

    def _answer_requests(self) -> None:
        while True:
            item = self._work.get()
            if item is None:
                return
            sock, head = item
            try:
                response = self._respond(head)
                sock.settimeout(WRITE_SECONDS)
                sock.sendall(render(response))
            except OSError:
                pass  # the client went away
            finally:
                sock.close()
                with self._lock:
                    self._busy -= 1

    def _respond(self, head: bytes) -> Response:
        try:
            request = parse_head(head)
        except BadRequest as refused:
            return refused.response
        try:
            response = answer(request, self.token, self.lookup)
        except Exception:  # a bug must not take the worker with it
            log.exception("credentials endpoint: unexpected error")
            response = refusal(500, "internal error; see the daemon's log")
        log.debug("%s %s %d", request.method, request.target, response.status)
        return response


# -- where an app finds the endpoint ----------------------------------------------------------


SMALL_FILE_MAX_BYTES = 64 * 1024  # endpoint.json, the pid file: read without following a symlink
RUNTIME_DIR_FIX = "remove it, or set XDG_RUNTIME_DIR to a directory of your own"


def publish_endpoint(server: CredentialServer, environ: Mapping[str, str], cache_dir: str) -> None:
    """Write the token file (0600) and endpoint.json, which `credhelper env` reads."""
    directory = runtime_dir(environ, cache_dir)
    info = {"url": server.url, "token_file": token_path(environ, cache_dir), "pid": str(os.getpid())}
    try:
        trusted_private_dir(directory, "runtime directory", RUNTIME_DIR_FIX)
        atomic_write(token_path(environ, cache_dir), server.token.encode(), PRIVATE_FILE)
        atomic_write(endpoint_path(environ, cache_dir), json.dumps(info).encode(), PRIVATE_FILE)
    except OSError as error:
        unpublish_endpoint(environ, cache_dir)
        where = error.filename or directory
        raise CredhelperError(
            f"cannot write the endpoint's token in {where}: {error.strerror}; make {directory} "
            "writable, or set XDG_RUNTIME_DIR to a writable directory of your own"
        ) from None


def unpublish_endpoint(environ: Mapping[str, str], cache_dir: str) -> None:
    """Remove the token file and endpoint.json, unless the directory is not this user's."""
    if not is_trusted(runtime_dir(environ, cache_dir)):
        return
    for path in (endpoint_path(environ, cache_dir), token_path(environ, cache_dir)):
        # In an unwritable directory they stay; `credhelper env` checks the daemon's lock anyway.
        with contextlib.suppress(OSError):
            remove_quietly(path)


def read_endpoint(environ: Mapping[str, str], cache_dir: str) -> dict[str, str] | None:
    """The endpoint record, read only from a runtime directory and a file that are this user's
    own and private (paths.untrusted_reason): else someone could send apps to their endpoint."""
    if not trusted_private_dir(runtime_dir(environ, cache_dir), "runtime directory", RUNTIME_DIR_FIX, False):
        return None
    try:
        found = read_regular_file(endpoint_path(environ, cache_dir), SMALL_FILE_MAX_BYTES)
        if found is None or untrusted_reason(found[1], path=endpoint_path(environ, cache_dir)) is not None:
            return None
        info = json.loads(found[0])
    except (OSError, ValueError):
        return None
    if not isinstance(info, dict) or not all(isinstance(info.get(k), str) for k in ("url", "token_file")):
        return None
    return info


def daemon_lock_held(cache_dir: str) -> bool:
    """Whether a daemon holds its lock now: if this process can take it, none runs."""
    try:
        fd = os.open(daemon_lock_path(cache_dir), os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        os.close(fd)  # releases the lock if it was taken
    return False


def _alive(pid_text: str) -> bool:
    if not pid_text.isdigit():
        return False
    try:
        os.kill(int(pid_text), 0)
    except OSError:  # gone, or another user's process: not our daemon either way
        return False
    return True


def live_endpoint(environ: Mapping[str, str], cache_dir: str) -> dict[str, str] | None:
    """The endpoint of the daemon running now, or None: never one a dead daemon left behind."""
    trusted_private_dir(cache_dir, "cache directory", CACHE_DIR_FIX, create=False)  # the daemon's lock
    info = read_endpoint(environ, cache_dir)
    if info is None or not daemon_lock_held(cache_dir) or not _alive(str(info.get("pid", ""))):
        return None
    try:
        pid_file = read_regular_file(daemon_pid_path(cache_dir), SMALL_FILE_MAX_BYTES)
    except OSError:
        return None
    if pid_file is not None and pid_file[0].decode(errors="replace").strip() != info["pid"]:
        return None
    return info
