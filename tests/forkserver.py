"""credhelper commands forked from an interpreter that has already imported credhelper.

The suite starts credhelper well over a thousand times, and a start costs up to half a second of
CPU before the command does anything: the interpreter's own start, then importing click, botocore
and keyring. The fork server is one interpreter per test process with those modules imported and
nothing else done: no configuration read, no session, no thread. Each command is a fork of it, a
process of its own: its own pid and session, the argv, environment, directory, stdin, stdout and
stderr the test gives it, the signals the calling thread blocks and the test process ignores (as
execve keeps them), exit status and signals as for any process, and `python -m credhelper`'s own
entry (`credhelper.main`, imported anew in each command, as its first lines must run first).

What a fork does not go through is the interpreter's start. A command whose environment would
start the interpreter differently (a `PYTHON*`, `LC_*` or `LANG` variable other than the server's)
is started as a new interpreter, and so is every test about the start itself: the entry point,
a launcher that execs credhelper, the fast path's imports (they start `sys.executable`).
`CREDHELPER_TEST_FORK=0` starts every command as a new interpreter.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib
import json
import locale
import os
import pkgutil
import runpy
import selectors
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, BinaryIO

REPO = Path(__file__).resolve().parent.parent

# What a command may load: imported once, here, by the server. Imports only: nothing here reads a
# file, an environment variable or a clock when imported.
PRELOADED = (
    "click",
    "dotenv",
    "botocore.session",
    "botocore.client",
    "botocore.credentials",
    "botocore.config",
    "botocore.exceptions",
    "keyring",
    "keyring.backends.SecretService",
    "keyring.backends.chainer",
    "keyring.backends.fail",
    "watchdog.observers",
)
# credhelper.main runs its first lines at import, for the argv it is started with.
NOT_PRELOADED = ("credhelper.main", "credhelper.__main__")
STARTUP_VARIABLES = ("PYTHON", "LC_", "LANG")


def _starts_alike(env: Mapping[str, str], server_env: Mapping[str, str]) -> bool:
    """Whether a new interpreter with `env` would start as the server did."""
    names = {name for name in (*env, *server_env) if name.startswith(STARTUP_VARIABLES)}
    return all(env.get(name) == server_env.get(name) for name in names)


class ForkedProcess:
    """A forked command, as much of `subprocess.Popen` as the tests use."""

    def __init__(self, args: Sequence[str], pid: int, connection: socket.socket) -> None:
        self.args = list(args)
        self.pid = pid
        self.returncode: int | None = None
        self._connection = connection
        self._lock = threading.Lock()

    def _take_status(self, timeout: float | None) -> int | None:
        with self._lock:
            if self.returncode is not None:
                return self.returncode
            self._connection.settimeout(timeout)
            try:
                message = self._connection.recv(64)
            except (TimeoutError, BlockingIOError):
                return None
            finally:
                self._connection.settimeout(None)
            if not message:
                raise RuntimeError("the fork server went away before the command ended")
            self.returncode = os.waitstatus_to_exitcode(json.loads(message)["status"])
            self._connection.close()
            return self.returncode

    def poll(self) -> int | None:
        return self._take_status(0)

    def wait(self, timeout: float | None = None) -> int:
        code = self._take_status(timeout)
        if code is None:
            raise subprocess.TimeoutExpired(self.args, timeout or 0)
        return code

    def send_signal(self, signum: int) -> None:
        if self.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signum)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


class ForkServer:
    def __init__(self, env: Mapping[str, str]) -> None:
        self._directory = tempfile.mkdtemp(prefix="credhelper-forkserver-")
        self.env = {**env, "HOME": self._directory}
        self.address = os.path.join(self._directory, "socket")
        # Pipes for stdin, stdout and stderr, as each command has: Python sets its standard
        # streams up at start for what they are, and the commands keep the server's.
        self._process = subprocess.Popen(
            [sys.executable, "-c", "import sys, tests.forkserver as f; f.serve(sys.argv[1])", self.address],
            env=self.env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=self._directory,
        )
        deadline = time.monotonic() + 60
        while not os.path.exists(self.address):
            if self._process.poll() is not None or time.monotonic() > deadline:
                self._process.kill()
                _, errors = self._process.communicate()
                raise RuntimeError(f"the fork server did not start: {errors.decode()}")
            time.sleep(0.01)

    def start(
        self,
        args: Sequence[str],
        *,
        env: Mapping[str, str],
        cwd: str | os.PathLike[str],
        stdin: int,
        stdout: int,
        stderr: int,
    ) -> ForkedProcess:
        """`python -m credhelper ARGS` (`args` without the interpreter) in a new session with the
        three descriptors as its stdin, stdout and stderr."""
        connection = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        connection.connect(self.address)
        request = json.dumps(
            {
                "args": list(args),
                "env": dict(env),
                "cwd": os.fspath(cwd),
                "signals": _signal_state_given(),
            }
        ).encode()
        socket.send_fds(connection, [request], [stdin, stdout, stderr])
        reply = connection.recv(64)
        if not reply:
            connection.close()
            raise RuntimeError("the fork server did not start the command")
        return ForkedProcess(["credhelper", *args], json.loads(reply)["pid"], connection)

    def close(self) -> None:
        for stream in (self._process.stdin, self._process.stdout, self._process.stderr):
            if stream is not None:
                stream.close()  # the server ends at the end of its stdin
        try:
            self._process.wait(10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        with contextlib.suppress(OSError):
            os.unlink(self.address)
        with contextlib.suppress(OSError):
            os.rmdir(self._directory)


_server: ForkServer | None = None
_server_lock = threading.Lock()


def fork_server(env: Mapping[str, str]) -> ForkServer | None:
    """This test process's fork server, started on first use; None when `env` would start the
    interpreter differently from it (or forking is turned off)."""
    global _server
    if os.environ.get("CREDHELPER_TEST_FORK") == "0":
        return None
    with _server_lock:
        if _server is None:
            _server = ForkServer(env)
            atexit.register(_server.close)
    return _server if _starts_alike(env, _server.env) else None


def _new_interpreter(
    args: Sequence[str], env: Mapping[str, str], cwd: str | os.PathLike[str]
) -> dict[str, Any]:
    """How a test started credhelper before the fork server, and still does when it cannot fork."""
    return {
        "args": [sys.executable, "-m", "credhelper", *args],
        "env": dict(env),
        "cwd": cwd,
        "start_new_session": True,
    }


def popen(
    args: Sequence[str],
    *,
    env: Mapping[str, str],
    cwd: str | os.PathLike[str],
    stdin: int,
    stdout: int,
    stderr: int,
) -> ForkedProcess | subprocess.Popen[bytes]:
    """`subprocess.Popen([sys.executable, "-m", "credhelper", *args], start_new_session=True,
    ...)` with stdin, stdout and stderr open descriptors, forked when the fork server can start
    it."""
    server = fork_server(env)
    if server is None:
        return subprocess.Popen(
            **_new_interpreter(args, env, cwd), stdin=stdin, stdout=stdout, stderr=stderr
        )
    return server.start(args, env=env, cwd=cwd, stdin=stdin, stdout=stdout, stderr=stderr)


def run(
    args: Sequence[str],
    *,
    env: Mapping[str, str],
    cwd: str | os.PathLike[str],
    input: str | None,
    timeout: float,
) -> subprocess.CompletedProcess[str]:
    """`subprocess.run([sys.executable, "-m", "credhelper", *args], capture_output=True,
    text=True, start_new_session=True, ...)`, forked when the fork server can start it."""
    server = fork_server(env)
    if server is None:
        return subprocess.run(
            **_new_interpreter(args, env, cwd),
            capture_output=True,
            text=True,
            timeout=timeout,
            input=input,
        )
    stdin_read, stdin_write = os.pipe()
    stdout_read, stdout_write = os.pipe()
    stderr_read, stderr_write = os.pipe()
    with (
        open(stdin_write, "wb", buffering=0) as stdin,
        open(stdout_read, "rb", buffering=0) as stdout_file,
        open(stderr_read, "rb", buffering=0) as stderr_file,
    ):
        try:
            process = server.start(
                args, env=env, cwd=cwd, stdin=stdin_read, stdout=stdout_write, stderr=stderr_write
            )
        finally:
            for fd in (stdin_read, stdout_write, stderr_write):
                os.close(fd)
        stdout, stderr = _communicate(
            process, (input or "").encode(), stdin, stdout_file, stderr_file, timeout
        )
    return subprocess.CompletedProcess(process.args, process.returncode or 0, stdout, stderr)


def _communicate(
    process: ForkedProcess,
    data: bytes,
    stdin: BinaryIO,
    stdout: BinaryIO,
    stderr: BinaryIO,
    timeout: float,
) -> tuple[str, str]:
    """What `Popen.communicate` does: `data` to stdin, then stdin closed; stdout and stderr read
    to their end; the exit status. Past `timeout`, the command is killed and TimeoutExpired
    raised, as `subprocess.run` does."""
    deadline = time.monotonic() + timeout
    chunks: dict[BinaryIO, list[bytes]] = {stdout: [], stderr: []}
    with selectors.DefaultSelector() as selector:
        if data:
            os.set_blocking(stdin.fileno(), False)
            selector.register(stdin, selectors.EVENT_WRITE)
        else:
            stdin.close()
        selector.register(stdout, selectors.EVENT_READ)
        selector.register(stderr, selectors.EVENT_READ)
        while selector.get_map():
            left = deadline - time.monotonic()
            if left <= 0:
                break
            for key, _ in selector.select(left):
                if key.fileobj is stdin:
                    try:
                        data = data[stdin.write(data[:65536]) or 0 :]
                    except BrokenPipeError:
                        data = b""
                    if not data:
                        selector.unregister(stdin)
                        stdin.close()
                    continue
                stream: BinaryIO = key.fileobj  # type: ignore[assignment]
                chunk = stream.read(65536)
                if chunk:
                    chunks[stream].append(chunk)
                else:
                    selector.unregister(stream)
    out, err = (_text(b"".join(chunks[stream])) for stream in (stdout, stderr))
    left = deadline - time.monotonic()
    if left > 0 and process.poll() is None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(left)
    if process.returncode is None:
        process.kill()
        process.wait()
        raise subprocess.TimeoutExpired(process.args, timeout, out, err)
    return out, err


def _text(output: bytes) -> str:
    """As `subprocess.run(text=True)` reads a command's output."""
    text = output.decode(locale.getpreferredencoding(False))
    return text.replace("\r\n", "\n").replace("\r", "\n")


# What a process started from the calling thread would begin with: its blocked mask, and the
# signals ignored here (kept across execve), but for the two subprocess puts back to their defaults
# (restore_signals) and Python ignores again at its start.
PYTHON_IGNORED = (signal.SIGPIPE, signal.SIGXFSZ)


def _signal_state_given() -> dict[str, list[int]]:
    ignored = [
        int(signum)
        for signum in signal.valid_signals()
        if signum not in PYTHON_IGNORED and signal.getsignal(signum) == signal.SIG_IGN
    ]
    blocked = [int(signum) for signum in signal.pthread_sigmask(signal.SIG_BLOCK, ())]
    return {"ignored": ignored, "blocked": blocked}


def _take_signal_state(state: dict[str, list[int]]) -> None:
    for signum in state["ignored"]:
        signal.signal(signum, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_SETMASK, state["blocked"])


def _fresh_signal_state() -> None:
    """The server's own: as a Python started with nothing ignored or blocked, whatever the test
    process's state when it started the server."""
    for signum in signal.valid_signals():
        if signum not in PYTHON_IGNORED and signal.getsignal(signum) == signal.SIG_IGN:
            signal.signal(signum, signal.default_int_handler if signum == signal.SIGINT else signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, ())


# The server's side.


def serve(address: str) -> None:
    """Imports what a command may load, then forks a command for each request until its stdin
    ends."""
    _fresh_signal_state()
    _preload()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    listener.bind(address + ".new")
    listener.listen(64)
    os.rename(address + ".new", address)  # there once it accepts
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ, None)
    selector.register(0, selectors.EVENT_READ, None)
    while True:
        for key, _ in selector.select():
            if key.fileobj == 0:
                if not os.read(0, 4096):
                    return
            elif key.fileobj is listener:
                connection, _ = listener.accept()
                _start_one(connection, listener, selector)
            else:
                pid, connection = key.data
                selector.unregister(key.fileobj)
                os.close(key.fd)
                _, status = os.waitpid(pid, 0)
                with contextlib.suppress(OSError):
                    connection.send(json.dumps({"status": status}).encode())
                connection.close()


def _preload() -> None:
    import credhelper

    for name in PRELOADED:
        importlib.import_module(name)
    for module in pkgutil.walk_packages(credhelper.__path__, "credhelper."):
        if module.name not in NOT_PRELOADED:
            importlib.import_module(module.name)


def _start_one(
    connection: socket.socket, listener: socket.socket, selector: selectors.BaseSelector
) -> None:
    message, fds, _, _ = socket.recv_fds(connection, 1 << 20, 3)
    if not message or len(fds) != 3:
        for fd in fds:
            os.close(fd)
        connection.close()
        return
    request = json.loads(message)
    pid = os.fork()
    if pid == 0:
        try:
            for key in list(selector.get_map().values()):
                if isinstance(key.data, tuple):
                    os.close(key.fd)
                    key.data[1].close()
            selector.close()
            listener.close()
            connection.close()
        finally:
            _run_command(request, fds)
    for fd in fds:
        os.close(fd)
    connection.send(json.dumps({"pid": pid}).encode())
    selector.register(os.pidfd_open(pid), selectors.EVENT_READ, (pid, connection))


def _run_command(request: dict[str, object], fds: list[int]) -> None:
    """In the forked process: becomes `python -m credhelper ARGS` and never returns."""
    code = 1
    try:
        os.setsid()
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
        for fd in fds:
            if fd > 2:
                os.close(fd)
        os.chdir(str(request["cwd"]))
        os.environ.clear()
        os.environ.update(request["env"])  # type: ignore[arg-type]
        sys.argv = ["-m", *request["args"]]  # type: ignore[misc]
        sys.path[0] = os.getcwd()  # as `python -m` sets it
        _take_signal_state(request["signals"])  # type: ignore[arg-type]
        code = _main()
    finally:
        os._exit(code)


def _main() -> int:
    """`runpy`'s run of credhelper as `__main__`, then the interpreter's own end: other threads
    waited for, atexit handlers run, the standard streams flushed."""
    code = 0
    try:
        runpy.run_module("credhelper", run_name="__main__", alter_sys=True)
    except SystemExit as exit:
        code = _exit_code(exit.code)
    except KeyboardInterrupt:
        sys.excepthook(*sys.exc_info())  # type: ignore[arg-type]
        _end(0)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)  # as Python ends on an uncaught Ctrl-C
    except BaseException:
        sys.excepthook(*sys.exc_info())  # type: ignore[arg-type]
        code = 1
    return _end(code)


def _exit_code(code: object) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    print(code, file=sys.stderr)
    return 1


def _end(code: int) -> int:
    threading._shutdown()  # type: ignore[attr-defined]
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            code = code or 120  # as Python exits when it cannot flush stdout at the end
    return code
