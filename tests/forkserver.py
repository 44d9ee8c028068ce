"""credhelper commands forked from an interpreter that has already imported what they need.

The suite starts credhelper well over a thousand times, and a start costs up to half a second of
CPU before the command does anything: the interpreter's own start, then importing click, botocore
and keyring. The fork server is one interpreter per test process with those imported and nothing
else done (`PRELOADED`): no configuration read, no session, no thread. Each command is a fork of
it, a process of its own: its own pid and session; the argv, environment, directory, stdin,
stdout and stderr the test gives it; the umask, blocked signals and ignored signals of the test's
thread and process (what execve keeps); `python -m credhelper`'s own entry (`credhelper.main`,
whose first lines must run first, imported anew); exit status and signals as for any process.

What a fork does not go through is the interpreter's start, and it is told apart from a new
interpreter in these ways only:
- A command whose environment would start the interpreter differently (a `PYTHON*`, `LC_*`,
  `LANG` or `TZ` variable other than the server's), whose HOME holds what botocore locates at its
  import (`~/.aws/models`, `~/.aws/sso`, `~/.aws/boto`), whose directory holds a module named like
  one the server has imported, or whose command line and environment are very large, is started
  as a new interpreter. So is every test about the start itself (the entry point, a
  launcher that execs credhelper, the fast path's imports): they start `sys.executable`.
- /proc/PID/environ and /proc/PID/cmdline show the server's, whose HOME is a directory that
  cannot exist; its parent is the server.
- Every fork of one server has the same hash seed: sets and dicts of strings iterate in the same
  order in each command of a test process.
- `run` without input gives the command an empty pipe as stdin (`subprocess.run` would pass on
  the test process's own).
`CREDHELPER_TEST_FORK=0` starts every command as a new interpreter.
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import importlib
import json
import locale
import os
import runpy
import select
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import weakref
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, BinaryIO, NoReturn, TextIO

REPO = Path(__file__).resolve().parent.parent

# What credhelper imports of other projects, by name, and `credhelper.cli` with what it imports at
# its top (every command but the two fast paths loads it first, in a new interpreter too): imported
# once, by the server, and nothing else. The rest of credhelper, imported by the commands that use
# it, each command imports itself, so that one missing an import fails here as it would for users.
PRELOADED = (
    "credhelper.cli",
    "click",
    "dotenv.parser",
    "botocore.session",
    "botocore.config",
    "botocore.exceptions",
    "keyring",
    "keyring.backend",
    "keyring.core",
    "keyring.backends.SecretService",
    "keyring.backends.fail",
    "secretstorage",
    "watchdog.events",
    "watchdog.observers",
    "watchdog.observers.api",
)
# Variables a new interpreter reads at its start (TZ: the time module, at import): a command with
# other values than the server's is started as a new interpreter.
STARTUP_VARIABLES = ("PYTHON", "LC_", "LANG", "TZ")
# Where botocore looks under HOME, with the HOME of its import (~/.aws/models: service models;
# ~/.aws/sso: SSO tokens; ~/.aws/boto: its file cache). The server's HOME is one where nothing can
# be made; a command whose HOME has any of these is started as a new interpreter.
SERVER_HOME = "/proc/credhelper-fork-server-has-no-home"
READ_UNDER_HOME_AT_IMPORT = (".aws/models", ".aws/sso", ".aws/boto")
LARGEST_REQUEST = 60_000  # one datagram; a larger command line and environment get a new interpreter

# The session of every command forked by this process (tests/test_exec.py ends what a test's
# commands left running; a fork shows the server's environment in /proc/PID/environ).
FORKED: set[int] = set()


def _forks_alike(
    args: Sequence[str], env: Mapping[str, str], cwd: str | os.PathLike[str], server: ForkServer
) -> bool:
    """Whether a new interpreter started with `env` in `cwd` would begin as a fork of the server."""
    names = {name for name in (*env, *server.env) if name.startswith(STARTUP_VARIABLES)}
    if any(env.get(name) != server.env.get(name) for name in names):
        return False
    if not os.path.isabs(env.get("HOME", "")):
        return False
    if any(os.path.lexists(os.path.join(env["HOME"], path)) for path in READ_UNDER_HOME_AT_IMPORT):
        return False
    if not os.path.isdir(cwd):  # subprocess raises for it
        return False
    # `python -m` puts its directory first on sys.path: a module there named like one the server
    # has imported would be imported instead of it by a new interpreter
    if any(_module_name(entry) in server.modules for entry in os.listdir(cwd)):
        return False
    return len(json.dumps({"args": list(args), "env": dict(env)})) < LARGEST_REQUEST


def _module_name(entry: str) -> str:
    return entry[: -len(".py")] if entry.endswith(".py") else entry


class ForkedProcess:
    """A forked command, as much of `subprocess.Popen` as the tests use. Its exit status comes
    from the server, which reaps it; signals go through a pidfd, which never reaches a process
    that has taken the pid since."""

    def __init__(self, args: Sequence[str], pid: int, pidfd: int, connection: socket.socket) -> None:
        self.args = list(args)
        self.pid = pid
        self.returncode: int | None = None
        self._pidfd = pidfd
        self._ended = threading.Event()
        self.server_lost = False
        weakref.finalize(self, os.close, pidfd)
        threading.Thread(
            target=self._await_status, args=(connection,), name=f"forked-{pid}", daemon=True
        ).start()

    def _await_status(self, connection: socket.socket) -> None:
        with connection:
            try:
                message = connection.recv(64)
            except OSError:
                message = b""
        if message:
            self.returncode = os.waitstatus_to_exitcode(json.loads(message)["status"])
        else:
            # The server ended first, and no one would report this command's end: it is ended
            # here, so that nothing outlives its test unseen.
            self.server_lost = True
            self.kill()
            select.select([self._pidfd], [], [])  # readable once the process has ended
            self.returncode = -signal.SIGKILL
        self._ended.set()

    def poll(self) -> int | None:
        return self.returncode if self._ended.is_set() else None

    def wait(self, timeout: float | None = None) -> int:
        if not self._ended.wait(timeout) or self.returncode is None:
            raise subprocess.TimeoutExpired(self.args, timeout or 0)
        return self.returncode

    def send_signal(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):  # it has ended and been reaped
            signal.pidfd_send_signal(self._pidfd, signum)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


class ForkServer:
    def __init__(self) -> None:
        from tests.conftest import clean_environment

        self._directory = tempfile.mkdtemp(prefix="credhelper-forkserver-")
        self.env = clean_environment(Path(SERVER_HOME))
        self.address = os.path.join(self._directory, "socket")
        self.log = os.path.join(self._directory, "log")
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
        with open(os.path.join(self._directory, "modules")) as modules:
            self.modules = frozenset(modules.read().split())

    @property
    def pid(self) -> int:
        return self._process.pid

    def running(self) -> bool:
        return self._process.poll() is None

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
        request = json.dumps(
            {
                "args": list(args),
                "env": dict(env),
                "cwd": os.path.abspath(cwd),
                "signals": _signal_state_given(),
                "umask": _umask(),
            }
        ).encode()
        with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as connection:
            connection.settimeout(30)  # a server that does not answer fails the test, never hangs it
            try:
                connection.connect(self.address)
                socket.send_fds(connection, [request], [stdin, stdout, stderr])
                reply, fds, _, _ = socket.recv_fds(connection, 64, 1)
            except OSError as error:
                raise RuntimeError(f"the fork server did not start the command: {error}") from error
            if not reply or len(fds) != 1:
                raise RuntimeError(f"the fork server did not start the command: {self.log_text()}")
            os.set_inheritable(fds[0], False)  # as subprocess makes its descriptors
            connection.settimeout(None)
            process = ForkedProcess(["credhelper", *args], json.loads(reply)["pid"], fds[0], connection.dup())
        FORKED.add(process.pid)
        return process

    def log_text(self) -> str:
        try:
            with open(self.log) as log:
                return log.read()[-4000:]
        except OSError:
            return ""

    def close(self) -> None:
        for stream in (self._process.stdin, self._process.stdout, self._process.stderr):
            if stream is not None:
                stream.close()  # the server ends at the end of its stdin
        try:
            self._process.wait(10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        shutil.rmtree(self._directory, ignore_errors=True)


_server: ForkServer | None = None
_server_lock = threading.Lock()


def fork_server(
    env: Mapping[str, str], cwd: str | os.PathLike[str], args: Sequence[str] = ()
) -> ForkServer | None:
    """This test process's fork server, started on first use and again if it ended; None when
    a command with `env` in `cwd` is to be started as a new interpreter (or forking is off)."""
    global _server
    if os.environ.get("CREDHELPER_TEST_FORK") == "0":
        return None
    with _server_lock:
        if _server is None or not _server.running():
            if _server is not None:
                _server.close()
            _server = ForkServer()
            atexit.register(_server.close)
    return _server if _forks_alike(args, env, cwd, _server) else None


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
    server = fork_server(env, cwd, args)
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
    server = fork_server(env, cwd, args)
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
            process,
            (input or "").encode(locale.getpreferredencoding(False)),
            stdin,
            stdout_file,
            stderr_file,
            timeout,
        )
    return subprocess.CompletedProcess(process.args, process.wait(), stdout, stderr)


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


def _umask() -> int:
    """This process's umask, read without changing it (os.umask would, for a moment, in every thread)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    raise RuntimeError("no Umask line in /proc/self/status")


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
    ends. A request that fails is written to the log beside the socket; the server goes on."""
    directory = os.path.dirname(address)
    try:
        _fresh_signal_state()
        _preload()
        with open(os.path.join(directory, "modules"), "w") as modules:
            modules.write("\n".join(sorted({name.partition(".")[0] for name in sys.modules})))
        # What was imported is shared with every fork until written to; the garbage collector's
        # passes over it would write to (and so copy) all of it in each command.
        gc.freeze()
        with open(os.path.join(directory, "log"), "a", buffering=1) as log:
            _serve(address, log)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _serve(address: str, log: TextIO) -> None:
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    listener.bind(address + ".new")
    listener.listen(64)
    os.rename(address + ".new", address)  # there once it accepts
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ, None)
    selector.register(0, selectors.EVENT_READ, None)
    errors = 0
    while errors < 20:  # in a row: something is wrong for good, and a new server is started
        for key, _ in selector.select():
            try:
                if key.fileobj == 0:
                    if not os.read(0, 4096):
                        return
                elif key.fileobj is listener:
                    connection, _ = listener.accept()
                    _start_one(connection, listener, selector, log)
                else:
                    _report_end(key, selector)
                errors = 0
            except Exception:
                traceback.print_exc(file=log)
                errors += 1
                time.sleep(0.05)


def _report_end(key: selectors.SelectorKey, selector: selectors.BaseSelector) -> None:
    pid, connection = key.data
    selector.unregister(key.fileobj)
    os.close(key.fd)
    _, status = os.waitpid(pid, 0)
    with connection, contextlib.suppress(OSError):  # the test may have stopped waiting
        connection.send(json.dumps({"status": status}).encode())


def _preload() -> None:
    for name in PRELOADED:
        importlib.import_module(name)


def _start_one(
    connection: socket.socket,
    listener: socket.socket,
    selector: selectors.BaseSelector,
    log: TextIO,
) -> None:
    fds: list[int] = []
    handed_over = False  # to the selector: _report_end closes the connection once the command ends
    try:
        connection.settimeout(10)  # a client that connects and says nothing holds no one up
        message, fds, flags, _ = socket.recv_fds(connection, LARGEST_REQUEST * 2, 3)
        if not message or len(fds) != 3 or flags & socket.MSG_TRUNC:
            raise ValueError(f"a request of {len(message)} bytes with {len(fds)} descriptors")
        request = json.loads(message)
        pid = os.fork()
        if pid == 0:
            _forked(request, fds, connection, listener, selector, log)
        pidfd = os.pidfd_open(pid)
        selector.register(pidfd, selectors.EVENT_READ, (pid, connection))
        handed_over = True
        try:
            socket.send_fds(connection, [json.dumps({"pid": pid}).encode()], [pidfd])
        except OSError:
            os.kill(pid, signal.SIGKILL)  # no one to tell of it: it is still reaped
            raise
    except Exception:
        traceback.print_exc(file=log)  # before the client, told by the connection's end, reads it
        if not handed_over:
            connection.close()
    finally:
        for fd in fds:
            os.close(fd)


def _forked(
    request: dict[str, object],
    fds: list[int],
    connection: socket.socket,
    listener: socket.socket,
    selector: selectors.BaseSelector,
    log: TextIO,
) -> NoReturn:
    try:
        log.close()
        for key in list(selector.get_map().values()):
            if isinstance(key.data, tuple):
                os.close(key.fd)
                key.data[1].close()
        selector.close()
        listener.close()
        connection.close()
    finally:
        _run_command(request, fds)


def _run_command(request: dict[str, object], fds: list[int]) -> NoReturn:
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
        os.umask(request["umask"])  # type: ignore[arg-type]
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
        return 128 + signal.SIGINT  # as it does when SIGINT is blocked
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
