"""`credential-process` on a cache hit, at the cost of an interpreter start.

SDKs run the helper every time they refresh, in every process that uses the profile. Whoever serves
a cache hit the long way (configuration parsed, cached entry validated) leaves a ready answer beside
the cache entry, with what it depends on: the profile's name as the caller spelled it, the
configuration file's identity, the cache entry's identity, the user the default session name comes
from, what validating the configuration read from the environment, and the deadline for handing it
out. The next
call checks those with a few `stat` calls and answers with one `read` and one `write`, importing
nothing beyond `os`, `sys` and `time` (which the interpreter has loaded already). Any mismatch, doubt
or damage: the long way, which writes the answer again; anything unusual there (other options, bad
configuration, a cold or stale cache): the full CLI.
"""

import os
import time

from .paths import cache_dir_path, config_path, profile_file, untrusted_reason

# Neither typing nor __future__: each would cost the hot path an import.
TYPE_CHECKING = False

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from .cache import Cache

# /2: the profile's name in the header (two spellings of a name can share one file: a case-insensitive
# file system). An answer of an older format is damaged to this one: the long way, which rewrites it.
ANSWER_FORMAT = "credhelper-answer/2"
HEADER_LINES = 8
ANSWER_MAX_BYTES = 65536
# A configuration modified this recently may change again within its file system's timestamp
# resolution, unseen by its identity: no answer is recorded against it until it has settled.
CONFIG_SETTLE_SECONDS = 2.0


def parse_leading_options(argv: "Sequence[str]") -> tuple[str | None, list[str]] | None:
    """(config path, the arguments after them) for `[--config P] [--log-level L] ...`; None for any
    other option, or for debug logging (which only the full CLI does)."""
    config: str | None = None
    rest = list(argv)
    while rest and rest[0].startswith("--"):
        option = rest.pop(0)
        name, has_value, value = option.partition("=")
        if name not in ("--config", "--log-level"):
            return None
        if not has_value:
            if not rest:
                return None
            value = rest.pop(0)
        if name == "--config":
            config = value
        elif value.lower() == "debug":
            return None
    return config, rest


def parse_fast_argv(argv: "Sequence[str]") -> tuple[str | None, str] | None:
    """(config path, profile) for `[--config P] [--log-level L] credential-process PROFILE`, with
    `--format process|sts` before or after PROFILE (answer_format tells which)."""
    parsed = _parse_credential_process(argv)
    return None if parsed is None else (parsed[0], parsed[1])


def answer_format(argv: "Sequence[str]") -> str:
    """The shape `credential-process` was asked for (`--format`, process by default)."""
    parsed = _parse_credential_process(argv)
    return "process" if parsed is None else parsed[2]


ANSWER_FORMATS = ("process", "sts")


def _parse_credential_process(argv: "Sequence[str]") -> tuple[str | None, str, str] | None:
    """(config path, profile, answer format); None for anything else, the full CLI's to answer."""
    parsed = parse_leading_options(argv)
    if parsed is None:
        return None
    config, rest = parsed
    if not rest or rest[0] != "credential-process":
        return None
    names: list[str] = []
    shapes: list[str] = []
    words = iter(rest[1:])
    for word in words:
        if word.startswith("--format="):
            shapes.append(word.partition("=")[2])
        elif word == "--format":
            shapes.append(next(words, ""))
        elif word.startswith("-"):
            return None
        else:
            names.append(word)
    if len(names) != 1 or not is_plain_name(names[0]) or len(shapes) > 1:
        return None
    shape = shapes[0] if shapes else "process"
    return (config, names[0], shape) if shape in ANSWER_FORMATS else None


STS_SHAPE_FROM = b'{"Version": 1, '


def shaped(answer: bytes, shape: str) -> bytes | None:
    """The answer (credential_process JSON, as Credentials.process_json writes it) in `shape`:
    `sts` is STS's own `{"Credentials": {...}}` (Credentials.sts_json), made here without parsing
    it, so the hot path imports nothing; None for an answer not in the expected form."""
    if shape == "process":
        return answer
    if not answer.startswith(STS_SHAPE_FROM) or not answer.endswith(b"}\n"):
        return None
    return b'{"Credentials": {' + answer[len(STS_SHAPE_FROM) : -2] + b"}}\n"


def is_plain_name(name: str) -> bool:
    """A profile name as the configuration allows them (letters, digits, '.', '_', '-')."""
    plain = name.replace("-", "a").replace("_", "a").replace(".", "a")
    return 0 < len(name) <= 64 and name.isascii() and plain.isalnum()


def file_identity(status: os.stat_result) -> str:
    """Changes whenever the file is replaced or written to."""
    return f"{status.st_dev} {status.st_ino} {status.st_size} {status.st_mtime_ns} {status.st_ctime_ns}"


# The user the default session name is made of, and the variables that choose the STS endpoint
# (profile.resolve_sts_endpoint): credentials are cached for where they came from.
FACT_VARIABLES = (
    "LOGNAME",
    "USER",
    "AWS_ENDPOINT_URL_STS",
    "AWS_ENDPOINT_URL",
    "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
)


def environment_facts(environ: "Mapping[str, str]") -> str | None:
    """What the answer depends on besides the configuration: FACT_VARIABLES (set or not) and the
    host name, in encode_inputs' encoding (an endpoint URL may hold a tab). None when a value
    cannot be recorded on one line."""
    facts: dict[str, str | None] = {name: environ.get(name) for name in FACT_VARIABLES}
    facts["uname -n"] = os.uname().nodename  # a name no variable has
    return encode_inputs(facts, {})


def is_private(status: os.stat_result, path: str) -> bool:
    """Trusted (paths.untrusted_reason) and readable by nobody else: the answer holds a secret."""
    return untrusted_reason(status, path=path) is None and not status.st_mode & 0o077


def answer_header(
    deadline: int, profile: str, config: str, config_id: str, cache_id: str, facts: str, inputs: str
) -> str:
    """HEADER_LINES lines: the answer is for exactly this profile name (the file it is in may be
    another name's too), this configuration, this cache entry and this environment, until then."""
    return f"{ANSWER_FORMAT}\n{deadline}\n{profile}\n{config}\n{config_id}\n{cache_id}\n{facts}\n{inputs}\n"


ITEM, VALUE = "\x1f", "\x1e"


def encode_inputs(variables: "Mapping[str, str | None]", resolved: "Mapping[str, str]") -> str | None:
    """What validating the configuration read besides the file (config.validation_inputs), on
    one line; None when a value cannot be recorded there."""
    items = [
        f"E{name}{VALUE}{value}" if value is not None else f"U{name}" for name, value in variables.items()
    ]
    items += [f"R{path}{VALUE}{real}" for path, real in resolved.items()]
    values = [*variables, *(v for v in variables.values() if v is not None), *resolved, *resolved.values()]
    if any(mark in value for value in values for mark in ("\n", "\r", ITEM, VALUE)):
        return None
    return ITEM.join(items)


def inputs_hold(line: str, environ: "Mapping[str, str]") -> bool:
    """Whether every variable and resolved path the validation read is as it was."""
    for item in line.split(ITEM) if line else ():
        kind, name, _, value = item[:1], *item[1:].partition(VALUE)
        if kind == "U":
            held = name not in environ
        elif kind == "E":
            held = environ.get(name) == value
        else:
            held = kind == "R" and os.path.realpath(name) == value
        if not held:
            return False
    return True


def ready_answer(argv: "Sequence[str]", environ: "Mapping[str, str]", now: float) -> bytes | None:
    """The recorded answer, if every fact it depends on still holds; else None."""
    parsed = parse_fast_argv(argv)
    facts = environment_facts(environ)
    if parsed is None or facts is None:
        return None
    explicit_config, profile = parsed
    cache_dir = cache_dir_path(environ)
    if not cache_dir.startswith("/"):
        return None  # refused by the long way
    try:
        if untrusted_reason(os.stat(cache_dir), path=cache_dir) is not None:
            return None
        answer_path = profile_file(cache_dir, profile, "answer")
        fd = os.open(answer_path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        try:
            status = os.fstat(fd)
            is_regular = status.st_mode & 0o170000 == 0o100000
            data = os.read(fd, ANSWER_MAX_BYTES) if is_regular else b""
        finally:
            os.close(fd)
        if not is_regular or not is_private(status, answer_path) or len(data) >= ANSWER_MAX_BYTES:
            return None
        lines = data.split(b"\n", HEADER_LINES)
        if len(lines) != HEADER_LINES + 1 or lines[0] != ANSWER_FORMAT.encode() or not now < int(lines[1]):
            return None
        if lines[2] != profile.encode():
            return None  # another spelling's answer, in a file both names map to
        config = config_path(explicit_config, environ)
        config_status = os.stat(config)
        if untrusted_reason(config_status, allow_root=True, path=config) is not None:
            return None
        inputs = lines[HEADER_LINES - 1].decode()
        expected = answer_header(
            int(lines[1]),
            profile,
            config,
            file_identity(config_status),
            file_identity(os.stat(profile_file(cache_dir, profile, "json"))),
            facts,
            inputs,
        )
        if not inputs_hold(inputs, environ):
            return None
    except (OSError, ValueError):
        return None
    answer = lines[HEADER_LINES]
    if b"\n".join(lines[:HEADER_LINES]) + b"\n" != expected.encode() or not answer.endswith(b"}\n"):
        return None
    return answer


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def main_fast(argv: "Sequence[str]") -> bool:
    """Answer `credential-process` from the cache if it can; False leaves it to the full CLI."""
    answer = ready_answer(argv, os.environ, time.time())
    if answer is None:
        answer = answer_from_cache(argv, os.environ)
    if answer is not None:
        answer = shaped(answer, answer_format(argv))
    if answer is None:
        return False
    write_all(1, answer)
    return True


def answer_from_cache(argv: "Sequence[str]", environ: "Mapping[str, str]") -> bytes | None:
    """The long way: load the configuration as every command does, validate the cached entry,
    record the ready answer."""
    from .cache import Cache
    from .config import load_config, validation_inputs

    parsed = parse_fast_argv(argv)
    facts = environment_facts(environ)
    if parsed is None or facts is None:
        return None
    explicit_config, name = parsed
    now = time.time()
    path = config_path(explicit_config, environ)
    cache = Cache(cache_dir_path(environ))
    try:
        config_before = os.stat(path)
        config = load_config(explicit_config, environ)
        profile = config.select([name])[0]
        inputs = encode_inputs(*validation_inputs(config, environ))
        config_after = os.stat(path)
        credentials = cache.read_credentials(profile.name, profile.fingerprint)
        cache_before = os.stat(cache.path(name, "json"))
    except Exception:
        return None  # the full CLI says what is wrong
    if credentials is None or credentials.seconds_left(now) < profile.handout_seconds:
        return None
    answer = (credentials.process_json() + "\n").encode()
    config_id = file_identity(config_before)
    settled = now - config_after.st_mtime >= CONFIG_SETTLE_SECONDS
    if settled and inputs is not None and config_id == file_identity(config_after):
        deadline = int(credentials.expiration - profile.handout_seconds)
        header = answer_header(deadline, name, path, config_id, file_identity(cache_before), facts, inputs)
        record_answer(cache, name, header.encode() + answer, cache_before)
    return answer


def record_answer(cache: "Cache", profile: str, content: bytes, cache_entry: os.stat_result) -> None:
    """Leave the ready answer for the next call, if the cache entry read is still the one there."""
    from .fileio import atomic_write

    answer = cache.path(profile, "answer")
    try:
        atomic_write(answer, content)
        if file_identity(os.stat(cache.path(profile, "json"))) != file_identity(cache_entry):
            os.unlink(answer)  # a refresh landed meanwhile
    except OSError:
        return
