"""The container credentials endpoint (DESIGN §5): what AWS SDKs call through
AWS_CONTAINER_CREDENTIALS_FULL_URI, served from the daemon's cache on loopback only."""

from __future__ import annotations

import hmac
import json
import logging
import os
import re
import secrets
import socket
import threading
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from .credentials import Credentials
from .errors import CredhelperError
from .fileio import PRIVATE_FILE, atomic_write, ensure_private_dir, read_bytes_or_none, remove_quietly
from .logsetup import redact

log = logging.getLogger("credhelper.server")
PATH = re.compile(r"^/v1/credentials/([A-Za-z0-9_.-]{1,64})$")
LOOPBACK_HOST = re.compile(r"^(127(\.\d{1,3}){3}|localhost|\[::1\])(:\d{1,5})?$", re.IGNORECASE)


class UnknownProfile(Exception):
    pass


# Looks a profile's credentials up for a request: returns them, raises UnknownProfile, or raises
# CredhelperError when none can be had.
Lookup = Callable[[str], Credentials]


def runtime_dir(environ: Mapping[str, str], cache_dir: str) -> str:
    base = environ.get("XDG_RUNTIME_DIR")
    return os.path.join(base, "credhelper") if base else cache_dir


def token_path(environ: Mapping[str, str], cache_dir: str) -> str:
    return os.path.join(runtime_dir(environ, cache_dir), "token")


def endpoint_path(environ: Mapping[str, str], cache_dir: str) -> str:
    return os.path.join(runtime_dir(environ, cache_dir), "endpoint.json")


def read_endpoint(environ: Mapping[str, str], cache_dir: str) -> dict[str, str] | None:
    data = read_bytes_or_none(endpoint_path(environ, cache_dir))
    try:
        info = json.loads(data) if data else None
    except ValueError:
        return None
    return info if isinstance(info, dict) else None


def publish_endpoint(server: CredentialServer, environ: Mapping[str, str], cache_dir: str) -> None:
    """The token file and endpoint.json that `credhelper env` reads (the daemon's endpoint only)."""
    directory = runtime_dir(environ, cache_dir)
    ensure_private_dir(directory)
    atomic_write(token_path(environ, cache_dir), server.token.encode(), PRIVATE_FILE)
    info = {"url": server.url, "token_file": token_path(environ, cache_dir), "pid": str(os.getpid())}
    atomic_write(endpoint_path(environ, cache_dir), json.dumps(info).encode(), PRIVATE_FILE)


def unpublish_endpoint(environ: Mapping[str, str], cache_dir: str) -> None:
    remove_quietly(endpoint_path(environ, cache_dir))
    remove_quietly(token_path(environ, cache_dir))


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # The default backlog of 5 drops connection attempts when 20 SDK clients arrive at once, and a
    # dropped SYN is retried after 1 s: the JS SDK's whole timeout.
    request_queue_size = 128


class CredentialServer:
    """The endpoint itself: binds on construction (a random token when none is given); `start`
    serves in the background. Publishing it for other processes is `publish_endpoint`'s job."""

    def __init__(self, host: str, port: int, lookup: Lookup, token: str | None = None) -> None:
        self.lookup = lookup
        self.token = token or secrets.token_urlsafe(32)
        server_class = (
            type("_Server6", (_Server,), {"address_family": socket.AF_INET6}) if ":" in host else _Server
        )
        self.httpd = server_class((host, port), self._handler())
        bound_host, bound_port = self.httpd.server_address[:2]
        shown = f"[{bound_host}]" if ":" in str(bound_host) else str(bound_host)
        self.url = f"http://{shown}:{bound_port}"
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, name="credhelper-endpoint", daemon=True
        )
        self._stopped = False

    def start(self) -> None:
        self.thread.start()
        log.info("credentials endpoint listening on %s/v1/credentials/PROFILE", self.url)

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        if self.thread.is_alive():
            self.httpd.shutdown()
        self.httpd.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            server_version = "credhelper"
            sys_version = ""

            def log_message(self, format: str, *args: object) -> None:
                log.debug("%s %s", self.address_string(), format % args)

            def _answer(self, status: int, body: dict[str, str] | str) -> None:
                payload = (body if isinstance(body, str) else json.dumps(body)).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(payload)

            def do_GET(self) -> None:
                if not LOOPBACK_HOST.match(self.headers.get("Host", "")):
                    # A browser page on another name resolving to 127.0.0.1 (DNS rebinding).
                    self._answer(421, {"error": "Host must be a loopback address"})
                    return
                given = self.headers.get("Authorization")
                if given is None:
                    self._answer(401, {"error": "missing Authorization header"})
                    return
                if not hmac.compare_digest(given.encode(), server.token.encode()):
                    self._answer(403, {"error": "wrong authorization token"})
                    return
                match = PATH.match(self.path)
                if match is None:
                    self._answer(404, {"error": "use /v1/credentials/PROFILE"})
                    return
                try:
                    credentials = server.lookup(match.group(1))
                except UnknownProfile:
                    self._answer(404, {"error": f"no profile {match.group(1)!r}"})
                    return
                except CredhelperError as error:
                    self._answer(503, {"error": redact(str(error))})
                    return
                self._answer(200, credentials.container_json())

            def do_POST(self) -> None:
                self._answer(405, {"error": "use GET"})

        return Handler
