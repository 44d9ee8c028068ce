"""A loopback proxy in front of the local STS: counts calls per action and answers scripted faults."""

from __future__ import annotations

import email.utils
import http.client
import re
import socket
import sys
import threading
import time
import urllib.parse
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Fault:
    kind: str  # "throttle", "error500", "drop", "delay", "code", "expires"
    action: str | None = None  # None: every action
    remaining: int | None = None  # None: until cleared
    until: float | None = None  # monotonic deadline
    seconds: float = 0.0  # for "delay"; for "expires", the life the forwarded answer's Expiration gives
    code: str = "AccessDenied"  # for "code"
    status: int = 403
    date_offset: float = 0.0  # for "code": the Date header this far from now


def _error_xml(code: str, message: str) -> bytes:
    return (
        '<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type>'
        f"<Code>{code}</Code><Message>{message}</Message></Error>"
        "<RequestId>00000000-0000-0000-0000-000000000000</RequestId></ErrorResponse>"
    ).encode()


def _with_expiration(payload: bytes, epoch: float) -> bytes:
    """The answer with every Expiration set to `epoch`: a session as a skewed clock sees it."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch)).encode()
    return re.sub(rb"<Expiration>[^<]*</Expiration>", b"<Expiration>" + stamp + b"</Expiration>", payload)


class StsProxy:
    def __init__(self, upstream: str) -> None:
        parsed = urllib.parse.urlparse(upstream)
        self.upstream_host = parsed.hostname or "127.0.0.1"
        self.upstream_port = parsed.port or 80
        self.calls: Counter[str] = Counter()
        self.requests: list[dict[str, list[str]]] = []  # every request's form parameters
        self.faults: list[Fault] = []
        self.in_flight = 0  # requests received and not yet answered
        self.most_in_flight = 0
        self.lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                params = urllib.parse.parse_qs(body.decode(errors="replace"))
                action = params.get("Action", ["?"])[0]
                fault = proxy._take_fault(action)
                with proxy.lock:
                    proxy.calls[action] += 1
                    proxy.requests.append(params)
                    proxy.in_flight += 1
                    proxy.most_in_flight = max(proxy.most_in_flight, proxy.in_flight)
                try:
                    self._answer(body, fault)
                finally:
                    with proxy.lock:
                        proxy.in_flight -= 1

            def _answer(self, body: bytes, fault: Fault | None) -> None:
                if fault is not None and fault.kind == "delay":
                    time.sleep(fault.seconds)
                elif fault is not None and fault.kind != "expires":
                    self._answer_fault(fault)
                    return
                expires = fault is not None and fault.kind == "expires"
                self._forward(body, expires_in=fault.seconds if fault is not None and expires else None)

            def _answer_fault(self, fault: Fault) -> None:
                if fault.kind == "drop":
                    self.connection.shutdown(socket.SHUT_RDWR)
                    self.close_connection = True
                    return
                if fault.kind == "throttle":
                    status, payload = 400, _error_xml("Throttling", "Rate exceeded")
                elif fault.kind == "error500":
                    status, payload = 500, _error_xml("InternalFailure", "scripted failure")
                else:
                    status, payload = fault.status, _error_xml(fault.code, "scripted refusal")
                self.send_response_only(status)
                self.send_header("Date", email.utils.formatdate(time.time() + fault.date_offset, usegmt=True))
                self.send_header("Content-Type", "text/xml")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def _forward(self, body: bytes, expires_in: float | None = None) -> None:
                upstream = http.client.HTTPConnection(proxy.upstream_host, proxy.upstream_port, timeout=30)
                headers = {k: v for k, v in self.headers.items() if k.lower() != "connection"}
                upstream.request("POST", self.path, body=body, headers=headers)
                response = upstream.getresponse()
                payload = response.read()
                if expires_in is not None:
                    payload = _with_expiration(payload, time.time() + expires_in)
                self.send_response(response.status)
                for key, value in response.getheaders():
                    if key.lower() not in (
                        "connection",
                        "transfer-encoding",
                        "content-length",
                        "server",
                        "date",
                    ):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
                upstream.close()

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            request_queue_size = 128

            def handle_error(self, request: object, client_address: object) -> None:
                # A client that hung up before its answer (a command killed or timed out on
                # purpose) is not the proxy's error; anything else is still printed.
                if not isinstance(sys.exc_info()[1], ConnectionError):
                    super().handle_error(request, client_address)  # type: ignore[arg-type]

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        # shutdown() waits for serve_forever's next poll: the default 0.5 s, paid by every test that
        # takes `home`, added up to a third of the suite's time. A short poll ends it at once.
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()

    def _take_fault(self, action: str) -> Fault | None:
        with self.lock:
            now = time.monotonic()
            self.faults = [f for f in self.faults if f.until is None or f.until > now]
            for fault in self.faults:
                if fault.action not in (None, action):
                    continue
                if fault.remaining is not None:
                    if fault.remaining <= 0:
                        continue
                    fault.remaining -= 1
                return fault
        return None

    def add_fault(self, fault: Fault) -> None:
        with self.lock:
            self.faults.append(fault)

    def clear_faults(self) -> None:
        with self.lock:
            self.faults.clear()

    def count(self, action: str) -> int:
        with self.lock:
            return self.calls[action]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
