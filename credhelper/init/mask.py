"""The secrets of a file hidden from the diff `init --dry-run` shows: the adopted secret, and every
secret-bearing setting's value on every line it takes, as configparser and both dotenv readers read
the file. Pure: text in, text out."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

SECRET_SHOWN_AS = "<secret from the .env>"

# A secret-bearing setting of an AWS config or credentials file (any case, `=` or `:`), or of a `.env`
# (`export`, a quoted key): what leads to its value, the `=` or `:`, then the value's first line.
_SECRET_SETTING = re.compile(
    r"([^\S\r\n]*(?:export[^\S\r\n]+)?[\"']?"
    r"(?:aws_secret_access_key|aws_session_token|aws_security_token|aws_bearer_token_bedrock)"
    r"[\"']?[^\S\r\n]*([=:])[^\S\r\n]*)([^\r\n]*)",
    re.I,
)
# Lines as configparser (botocore's reader) and the dotenv readers split them: at \n, \r\n or \r only.
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)?")
_SECTION = re.compile(r"\[.+\]")  # configparser's section header, after the indentation
_QUOTES = "\"'`"  # what opens a quoted `.env` value: python-dotenv takes the first two, Node's dotenv all
SECRET_SHOWN = "<secret>"


def mask_secrets(text: str, secret: str | None) -> str:
    """The adopted secret, and every other secret the file holds, on every line its value takes: a
    diff's context lines can show any line near a change."""
    if secret:
        text = text.replace(secret, SECRET_SHOWN_AS)
    lines = _SecretLines()
    return "".join(lines.shown(line) for line in _LINE.findall(text))


@dataclass
class _SecretLines:
    """Which lines of a file hold part of a secret value, read line by line as configparser (botocore's
    reader of `~/.aws/config` and `~/.aws/credentials`) and both dotenv readers read them. Where they
    differ, a line any of them takes as part of a secret is one: too much costs a line of the diff,
    too little a secret."""

    # configparser: a value goes on over the lines indented deeper than its key, blank and comment
    # lines between included.
    level: int | None = None  # the last key line's indentation (configparser's indent_level)
    in_secret: bool = False  # lines indented deeper than `level` go on a secret value
    # dotenv: a quoted value goes on to its closing quote; Node's dotenv reads a quoted value that
    # starts on a line below an empty `KEY=`, and after `KEY:` the whole next line.
    quotes: set[str] = field(default_factory=set)  # quotes a secret value opened and did not close
    empty_after: str = ""  # the `=` or `:` of a secret setting with nothing after it on its line

    def shown(self, line: str) -> str:
        """The line as a diff may show it."""
        body = line.rstrip("\r\n")
        end = line[len(body) :]
        content = body.lstrip()
        indent = body[: len(body) - len(content)]
        hidden = bool(self.quotes)
        self.quotes = {quote for quote in self.quotes if not _closing_quote(quote).search(body)}
        if not content:
            self.empty_after = self.empty_after and "="  # past a blank line, only a quoted value
            return line
        if self.empty_after:
            below = content[0] in _QUOTES or (self.empty_after == ":" and content[0] != "#")
            hidden = hidden or below
            self.quotes |= _opened_quote(content)
            self.empty_after = ""
        if self.level is not None and len(indent) > self.level:  # a continuation line
            hidden = hidden or self.in_secret
        elif content[0] in "#;":
            pass  # a comment line does not end a value
        elif _SECTION.match(content):
            self.level, self.in_secret = None, False  # the next line starts a key, however indented
        else:
            self.level, self.in_secret = len(indent), False  # a key line
        setting = _SECRET_SETTING.match(body)
        if setting:
            self.in_secret = True
            lead, sign, value = setting.groups()
            if not value:
                self.empty_after = sign
            elif not value.startswith("<secret"):
                body = lead + SECRET_SHOWN
                self.quotes |= _opened_quote(value)
        return (indent + SECRET_SHOWN if hidden else body) + end


def _opened_quote(value: str) -> set[str]:
    """The quote `value` starts with, when it does not close on the same line."""
    if value[0] in _QUOTES and not _closing_quote(value[0]).search(value, 1):
        return {value[0]}
    return set()


def _closing_quote(quote: str) -> re.Pattern[str]:
    """A quote that ends a quoted `.env` value: one not escaped by a backslash."""
    return re.compile(rf"(?<!\\){re.escape(quote)}")
