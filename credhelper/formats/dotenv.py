"""The `.env` merge (README: "How a .env is rewritten"): text in, text out. Pure.

python-dotenv's parser splits a file into bindings whose original text, joined, is the file byte
for byte. Only the value part of a managed key's binding is replaced; everything else, the binding's
leading blank lines, `export ` prefix, spacing, inline comment and line ending included, is kept.

Every question below takes the text or an `EnvReading` of it: a write asks many questions of one
text (the guard, the merge), and a reading parses it once for all of them (DESIGN §11: the write
path is linear in the size of the file).
"""

from __future__ import annotations

import io
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from functools import cached_property

from dotenv.parser import Binding, parse_stream

from .nodedotenv import NodeBinding, node_bindings

MANAGED_KEYS = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_CREDENTIAL_EXPIRATION",
    "AWS_REGION",
)
# Values made only of these characters read back identically in python-dotenv and Node's dotenv
# when written bare. STS key ids, secrets and tokens (base64), RFC 3339 times and regions all fit.
SAFE_VALUE = re.compile(r"^[A-Za-z0-9_./+=:@-]*$")
_HEAD = re.compile(r"(?P<lead>\s*(?:export[^\S\r\n]+)?)(?P<key>[^=#\s]+)(?P<mid>[^\S\r\n]*=?)")
_EOL = re.compile(r"(\r\n|\n|\r)?\Z")
_QUOTED = {"'": re.compile(r"'(?:\\'|[^'])*'"), '"': re.compile(r'"(?:\\"|[^"])*"')}
BOM = "\ufeff"  # python-dotenv reads past it, Node's dotenv takes it as white space
_UNQUOTED_COMMENT = re.compile(r"[^\S\r\n]+#[^\r\n]*\Z")


def _rewrite_binding(original: str, value: str) -> str:
    head = _HEAD.match(original)
    assert head is not None  # the parser found a key here
    rest = original[head.end() :]
    eol_match = _EOL.search(rest)
    assert eol_match is not None
    eol = eol_match.group(0)
    body = rest[: len(rest) - len(eol)]
    core = body.lstrip(" \t\f\v")
    space = body[: len(body) - len(core)]
    quoted = _QUOTED.get(core[:1])
    trailer = ""
    if core.startswith("#"):  # an empty value followed by a comment
        trailer, space = (space or " ") + core, ""
    elif quoted is not None and (closing := quoted.match(core)):
        trailer = core[closing.end() :]
    elif comment := _UNQUOTED_COMMENT.search(core):
        trailer = comment.group(0)
    mid = head.group("mid") if "=" in head.group("mid") else "="
    return f"{head.group('lead')}{head.group('key')}{mid}{space}{value}{trailer}{eol}"


def _line_ending(text: str) -> str:
    first = re.search(r"\r\n|\n|\r", text)
    return first.group(0) if first else "\n"


def check_value(key: str, value: str) -> str:
    if not SAFE_VALUE.match(value):
        raise ValueError(f"{key} holds characters that cannot be written to a .env unquoted")
    return value


class EnvReading:
    """A `.env` text as python-dotenv and Node's dotenv read it, each parse made once, when first
    asked for."""

    def __init__(self, text: str) -> None:
        self.text = text

    @cached_property
    def python(self) -> tuple[Binding, ...]:
        """python-dotenv's bindings, errors included: their original texts, joined, are the text."""
        return tuple(parse_stream(io.StringIO(self.text)))

    @cached_property
    def node(self) -> tuple[NodeBinding, ...]:
        return tuple(node_bindings(self.text))

    def bindings_of(self, keys: Collection[str]) -> list[Binding]:
        """python-dotenv's bindings of `keys`, in file order (a binding it could not read is none)."""
        return [b for b in self.python if b.key is not None and b.key in keys and not b.error]


def reading_of(env: str | EnvReading) -> EnvReading:
    """A reading of `env`: the one given, or a new one of the text (parsed when first asked)."""
    return env if isinstance(env, EnvReading) else EnvReading(env)


@dataclass(frozen=True)
class _Part:
    """One python-dotenv binding (or the appended lines): its text before and after the merge."""

    line: int  # where `before` starts in the original text, 1-based
    before: str
    after: str


def _merge_parts(reading: EnvReading, values: Mapping[str, str]) -> list[_Part]:
    for name, value in values.items():
        check_value(name, value)
    text = reading.text
    parts: list[_Part] = []
    seen: set[str] = set()
    for binding in reading.python:
        original = binding.original.string
        key = binding.key
        after = original
        if key is not None and key in values and not binding.error:
            after = _rewrite_binding(original, values[key])
            seen.add(key)
        parts.append(_Part(binding.original.line, original, after))
    missing = [f"{name}={value}" for name, value in values.items() if name not in seen]
    if missing:
        merged = "".join(part.after for part in parts)
        eol = _line_ending(text)
        if merged and not merged.endswith(("\n", "\r")):
            tail = eol + eol.join(missing)  # the file had no final newline: keep it that way
        else:
            tail = "".join(line + eol for line in missing)
        parts.append(_Part(_count_lines(text) + 1, "", tail))
    lost = text[: len(text) - len("".join(part.before for part in parts))]
    if lost:  # python-dotenv parses the text after a leading byte-order mark; the file keeps it
        first = parts[0] if parts else _Part(1, "", "")
        parts[:1] = [_Part(first.line, lost + first.before, lost + first.after)]
    return parts


def _count_lines(text: str) -> int:
    return len(re.findall(r"\r\n|\r|\n", text))


def merge_env(text: str | EnvReading, values: Mapping[str, str]) -> str:
    """Set each key of `values` wherever it is bound in `text`; append the ones never bound."""
    return "".join(part.after for part in _merge_parts(reading_of(text), values))


def managed_values(text: str | EnvReading, keys: Collection[str] = MANAGED_KEYS) -> dict[str, list[str]]:
    """Every value bound to one of `keys` (the managed keys), in file order (duplicates included).
    AWS_BEARER_TOKEN_BEDROCK is managed only for profiles with bedrock_api_key: they ask for it."""
    found: dict[str, list[str]] = {}
    for binding in reading_of(text).python:
        if binding.key is not None and binding.key in keys and not binding.error:
            found.setdefault(binding.key, []).append(binding.value or "")
    return found


LONG_TERM_KEY_ID = re.compile(r"AKIA[0-9A-Z]{16}")
TEMPORARY_KEY_ID = re.compile(r"ASIA[A-Z0-9]{16,124}")  # what STS hands out, nothing looser
SECRET_KEY = "AWS_SECRET_ACCESS_KEY"
KEY_ID = "AWS_ACCESS_KEY_ID"
SECRET_SHAPE = re.compile(r"[A-Za-z0-9/+]{40}")  # a long-term secret access key


def replaced_lines(text: str | EnvReading, keys: Collection[str] = MANAGED_KEYS) -> list[tuple[int, str]]:
    """(line, raw text) of every binding credhelper rewrites when it sets `keys`."""
    return [
        (binding.original.line, binding.original.string) for binding in reading_of(text).bindings_of(keys)
    ]


def values_read(text: str | EnvReading, keys: Collection[str] = MANAGED_KEYS) -> dict[str, list[str]]:
    """Every value bound to one of `keys` as python-dotenv or Node's dotenv reads the file."""
    reading = reading_of(text)
    found = managed_values(reading, keys)
    for binding in reading.node:
        if binding.key in keys:
            found.setdefault(binding.key, []).append(binding.value)
    return found


def long_term_key_ids(text: str | EnvReading, keys: Collection[str] = MANAGED_KEYS) -> list[str]:
    """Access key ids of long-term keys (AKIA…) wherever credhelper would write: in a managed key's
    value as either reader sees it, or anywhere in a line credhelper would replace. Only the id
    itself, never the text around it (that may be a secret)."""
    reading = reading_of(text)
    places = [value for values in values_read(reading, keys).values() for value in values]
    places += [raw for _, raw in replaced_lines(reading, keys)]
    found = [match.group(0) for place in places for match in LONG_TERM_KEY_ID.finditer(place)]
    return list(dict.fromkeys(found))


def secret_for_key(text: str | EnvReading) -> str | None:
    """The secret access key beside the key id: as python-dotenv reads it, unless only Node's
    dotenv reads it in the shape of one (a value in backticks)."""
    reading = reading_of(text)
    python = managed_values(reading).get(SECRET_KEY, [])
    node = [b.value for b in reading.node if b.key == SECRET_KEY]
    readings = [values[-1] for values in (python, node) if values]
    shaped = [value for value in readings if SECRET_SHAPE.fullmatch(value)]
    chosen = shaped or readings
    return chosen[0] if chosen else None


def secrets_read(text: str | EnvReading) -> set[str]:
    """The secret access key each reader ends with (the last binding wins), when not empty."""
    reading = reading_of(text)
    python = managed_values(reading, (SECRET_KEY,)).get(SECRET_KEY, [])
    node = [b.value for b in reading.node if b.key == SECRET_KEY]
    return {values[-1] for values in (python, node) if values and values[-1]}


def is_temporary_key_id(value: str) -> bool:
    """A key id STS issues with a session: `ASIA` and 16 to 124 capitals or digits, nothing else
    (an `ASIA_typed` placeholder is not one, so a secret beside it may be long-term)."""
    return TEMPORARY_KEY_ID.fullmatch(value) is not None


def lone_secret_line(text: str | EnvReading) -> int | None:
    """The line of a non-empty AWS_SECRET_ACCESS_KEY in a file where a reader sees no temporary
    (ASIA…) key id: half of a long-term pair, whatever the key id line says."""
    pair = (KEY_ID, SECRET_KEY)
    reading = reading_of(text)
    readers: list[list[tuple[str | None, str, int]]] = [
        [(b.key, (b.value or "").strip(), _key_line(b)) for b in reading.bindings_of(pair)],
        [(b.key, b.value.strip(), b.line) for b in reading.node if b.key in pair],
    ]
    for bindings in readers:
        # Any temporary id: a person blanking one of credhelper's lines leaves its secret temporary.
        temporary = any(key == KEY_ID and is_temporary_key_id(value) for key, value, _ in bindings)
        for key, value, line in bindings:
            if key == SECRET_KEY and value and not temporary:
                return line
    return None


def _key_line(binding: Binding) -> int:
    """The line of a python-dotenv binding's key (its original text starts with blank lines)."""
    original = binding.original.string
    return binding.original.line + _count_lines(original[: len(original) - len(original.lstrip())])


@dataclass(frozen=True)
class ReadBackProblem:
    key: str
    line: int  # in the text before the merge
    reader: str


def merge_env_verified(text: str | EnvReading, values: Mapping[str, str]) -> str:
    """merge_env, then proof that python-dotenv and Node's dotenv both read each key of `values`
    back as exactly its value; ReadBackError naming the first key that does not."""
    parts = _merge_parts(reading_of(text), values)
    merged = "".join(part.after for part in parts)
    problem = read_back_problem(merged, values)
    if problem is not None:
        key, line, reader = problem
        raise ReadBackError(ReadBackProblem(key, _original_line(parts, line), reader))
    return merged


class ReadBackError(ValueError):
    def __init__(self, problem: ReadBackProblem) -> None:
        super().__init__(f"{problem.key} on line {problem.line} does not read back in {problem.reader}")
        self.problem = problem


def read_back_problem(merged: str | EnvReading, values: Mapping[str, str]) -> tuple[str, int, str] | None:
    """(key, line in `merged`, reader) of the first key of `values` that a reader does not
    read back as exactly its value."""
    reading = reading_of(merged)
    python = reading.bindings_of(values)
    node = [b for b in reading.node if b.key in values]
    for key, value in values.items():
        python_lines = [_key_line(b) for b in python if b.key == key]
        for binding in python:
            if binding.key == key and binding.value != value:
                return key, _key_line(binding), "python-dotenv"
        last = [b for b in node if b.key == key][-1:]
        if not last:
            return key, python_lines[-1] if python_lines else 1, "Node's dotenv"
        if last[0].value != value:
            return key, last[0].line, "Node's dotenv"
        if not python_lines:
            return key, last[0].line, "python-dotenv"
    return None


def _original_line(parts: list[_Part], merged_line: int) -> int:
    """The line of the original text that a line of the merged text came from."""
    start = 1
    for part in parts:
        span = _count_lines(part.after)
        if merged_line < start + max(span, 1) or part is parts[-1]:
            offset = merged_line - start
            same = part.before == part.after or not part.before
            return part.line + (offset if same else min(offset, _count_lines(part.before)))
        start += span
    return merged_line


def emptied_pair(text: str | EnvReading) -> str:
    """The text with AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY emptied wherever they are bound,
    every other byte kept: a long-term pair taken out once it is stored elsewhere."""
    return merge_env_verified(text, {"AWS_ACCESS_KEY_ID": "", SECRET_KEY: ""})
