"""The endpoint's server (docs/architecture.md): what AWS SDKs call through
AWS_CONTAINER_CREDENTIALS_FULL_URI, served on loopback, by the daemon from its cache and by a
supervised exec for its command; the daemon's second listener for containers (`containers`) is one
more instance on 169.254.170.2.

Any local user can connect, so a connection costs little and never long: one selector thread accepts
connections and reads request heads, with a cap on open connections and a deadline per connection;
an idle or slow client holds a file descriptor for a few seconds and never a thread. A complete
request goes to a small fixed pool of workers, which may wait for the refresh in flight. Every
answer closes its connection.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import queue
import re
import resource
import secrets
import selectors
import socket
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

from ..interfaces import Lookup
from .protocol import (
    LOOPBACK_HOST,
    MAX_HEAD_BYTES,
    BadRequest,
    Response,
    answer,
    credentials_url,
    head_length,
    parse_head,
    refusal,
    render,
)

log = logging.getLogger("credhelper.server")

MAX_CONNECTIONS = 256
CONNECTION_SECONDS = 5.0  # from accept to a complete request head; SDKs send theirs at once
WRITE_SECONDS = 5.0
WORKERS = 8
ACCEPT_PAUSE_SECONDS = 0.1
STOP_SECONDS = 2.0  # how long stop() waits for the selector thread


def connection_cap(open_file_limit: int) -> int:
    """At most a quarter of the descriptors the process may open: the rest stay the daemon's."""
    return max(8, min(MAX_CONNECTIONS, open_file_limit // 4))


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
        allowed_host: re.Pattern[str] = LOOPBACK_HOST,
    ) -> None:
        self.lookup = lookup
        self.allowed_host = allowed_host
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
        self.port: int = bound_port
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
            "credentials endpoint listening on %s (at most %d connections)",
            credentials_url(self.url, "PROFILE"),
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
            self._thread.join(timeout=STOP_SECONDS)
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
            response = answer(request, self.token, self.lookup, self.allowed_host)
        except Exception:  # a bug must not take the worker with it
            log.exception("credentials endpoint: unexpected error")
            response = refusal(500, "internal error; see the daemon's log")
        log.debug("%s %s %d", request.method, request.target, response.status)
        return response
