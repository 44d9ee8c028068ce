"""A reader that follows Node's dotenv 16 `parse` exactly (lib/main.js), for the guard: a key
credhelper would not see the way the app's reader sees it is a key it could destroy or leave
mixed. Pure.

JavaScript regular expressions differ from Python's in what `\\s`, `\\w`, `.`, `^` and `$`
(multiline) match, so those are spelled out as JavaScript defines them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# JavaScript's WhiteSpace and LineTerminator: what `\s` matches and `String.prototype.trim` removes.
_JS_SPACE_CHARS = (
    "\t\n\v\f\r \u00a0\u1680"
    + "".join(map(chr, range(0x2000, 0x200B)))
    + ("\u2028\u2029\u202f\u205f\u3000\ufeff")
)
_TERMINATORS = "\n\r\u2028\u2029"
_S = f"[{re.escape(_JS_SPACE_CHARS)}]"
_LINE_START = f"(?:(?<=[{_TERMINATORS}])|\\A)"
_LINE_END = f"(?=[{_TERMINATORS}]|\\Z)"
_DOT = f"[^{_TERMINATORS}]"

# /(?:^|^)\s*(?:export\s+)?([\w.-]+)(?:\s*=\s*?|:\s+?)(\s*'(?:\\'|[^'])*'|\s*"(?:\\"|[^"])*"|
#   \s*`(?:\\`|[^`])*`|[^#\r\n]+)?\s*(?:#.*)?(?:$|$)/mg
_LINE = re.compile(
    f"{_LINE_START}{_S}*(?:export{_S}+)?([A-Za-z0-9_.-]+)(?:{_S}*={_S}*?|:{_S}+?)"
    f"({_S}*'(?:\\\\'|[^'])*'|{_S}*\"(?:\\\\\"|[^\"])*\"|{_S}*`(?:\\\\`|[^`])*`|[^#\\r\\n]+)?"
    f"{_S}*(?:#{_DOT}*)?{_LINE_END}"
)
# /^(['"`])([\s\S]*)\1$/mg
_SURROUNDING_QUOTES = re.compile(f"{_LINE_START}(['\"`])([\\s\\S]*)\\1{_LINE_END}")


@dataclass(frozen=True)
class NodeBinding:
    key: str
    value: str
    line: int  # 1-based, of the key, in the text as given


def _value(raw: str) -> str:
    value = raw.strip(_JS_SPACE_CHARS)
    double_quoted = value[:1] == '"'
    value = _SURROUNDING_QUOTES.sub(r"\2", value)
    if double_quoted:
        value = value.replace("\\n", "\n").replace("\\r", "\r")
    return value


def node_bindings(text: str) -> list[NodeBinding]:
    """Every binding Node's dotenv 16 reads, in order (a later one of a key wins)."""
    normalized = re.sub(r"\r\n?", "\n", text)
    found: list[NodeBinding] = []
    line, counted = 1, 0  # the line at `counted`: each line break is counted once, in one pass
    for match in _LINE.finditer(normalized):
        key_at = match.start(1)
        line += normalized.count("\n", counted, key_at)
        counted = key_at
        found.append(NodeBinding(match.group(1), _value(match.group(2) or ""), line))
    return found


def node_parse(text: str) -> dict[str, str]:
    """What `require('dotenv').parse(text)` returns."""
    return {binding.key: binding.value for binding in node_bindings(text)}
