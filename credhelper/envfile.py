"""The `.env` merge (README: "How a .env is rewritten"): text in, text out. Pure.

python-dotenv's parser splits a file into bindings whose original text, joined, is the file byte
for byte. Only the value part of a managed key's binding is replaced; everything else, the binding's
leading blank lines, `export ` prefix, spacing, inline comment and line ending included, is kept.
"""

from __future__ import annotations

import io
import re
from collections.abc import Collection, Mapping

from dotenv.parser import parse_stream

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


def merge_env(text: str, values: Mapping[str, str]) -> str:
    """Set each key of `values` wherever it is bound in `text`; append the ones never bound."""
    for name, value in values.items():
        check_value(name, value)
    parts: list[str] = []
    seen: set[str] = set()
    for binding in parse_stream(io.StringIO(text)):
        original = binding.original.string
        key = binding.key
        if key is not None and key in values and not binding.error:
            parts.append(_rewrite_binding(original, values[key]))
            seen.add(key)
        else:
            parts.append(original)
    missing = [f"{name}={value}" for name, value in values.items() if name not in seen]
    merged = "".join(parts)
    if missing:
        eol = _line_ending(text)
        if merged and not merged.endswith(("\n", "\r")):
            merged += eol + eol.join(missing)  # the file had no final newline: keep it that way
        else:
            merged += "".join(line + eol for line in missing)
    return merged


def managed_values(text: str, keys: Collection[str] = MANAGED_KEYS) -> dict[str, list[str]]:
    """Every value bound to one of `keys` (the managed keys), in file order (duplicates included).
    AWS_BEARER_TOKEN_BEDROCK is managed only for profiles with bedrock_api_key: they ask for it."""
    found: dict[str, list[str]] = {}
    for binding in parse_stream(io.StringIO(text)):
        if binding.key is not None and binding.key in keys and not binding.error:
            found.setdefault(binding.key, []).append(binding.value or "")
    return found


def long_term_key_ids(text: str) -> list[str]:
    """Access key ids of long-term (AKIA…) keys bound to AWS_ACCESS_KEY_ID."""
    return [v for v in managed_values(text).get("AWS_ACCESS_KEY_ID", []) if v.startswith("AKIA")]


def secret_for_key(text: str) -> str | None:
    secrets = managed_values(text).get("AWS_SECRET_ACCESS_KEY", [])
    return secrets[-1] if secrets else None
