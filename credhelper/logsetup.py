"""Logging to stderr through a filter that keeps secrets out of every line, botocore's included."""

from __future__ import annotations

import logging
import re
import sys
import threading

_KEY_ID = re.compile(r"\b(AKIA|ASIA)([A-Z0-9]{8,})\b")
# Fields that hold a secret, by name, in every form botocore's wire logging and our own messages
# take: XML elements, JSON and Python reprs, query strings, headers, env and INI lines. TokenCode is
# the MFA code GetSessionToken sends.
_SECRET_FIELD = (
    r"SecretAccessKey|SessionToken|Token|X-Amz-Security-Token|aws_secret_access_key|aws_session_token"
    r"|aws_security_token|AWS_SECRET_ACCESS_KEY|AWS_SESSION_TOKEN|AWS_CONTAINER_AUTHORIZATION_TOKEN"
    r"|AWS_BEARER_TOKEN_BEDROCK|TokenCode"
)
# A short-term Bedrock API key: recognisable by its prefix wherever it stands.
_BEDROCK_KEY = re.compile(r"bedrock-api-key-[A-Za-z0-9+/=_-]+")
_SECRET_ELEMENT = re.compile(rf"<((?:{_SECRET_FIELD}))>[^<]*</\1>", re.IGNORECASE)
_SECRET_ASSIGNMENT = re.compile(
    rf"""(?P<lead>(?:(?<![\w-])|(?<=\\[nrt]))\\?["']?(?:{_SECRET_FIELD})\\?["']?\s*[:=]\s*)"""
    r"""(?:(?P<prefix>b?)(?P<quote>\\?["'])(?:\\.|(?!(?P=quote)).)*(?P=quote)|[^\s&,;'"<>}\])]+)""",
    re.IGNORECASE,
)
# A secret in no known field: secret keys are 40 base64 characters, session tokens hundreds. A long
# mixed-case run is hidden unless it is part of a path or an ARN (it starts with or follows `/`, `:`,
# `-`, `.`, `_` or `~`), which stay readable.
_LONG_BASE64 = re.compile(
    r"(?<![\w/:.~+-])(?!/)(?=[A-Za-z0-9/+]*[a-z])(?=[A-Za-z0-9/+]*[A-Z])(?=[A-Za-z0-9/+]*[0-9/+])"
    r"[A-Za-z0-9/+]{40,}={0,2}(?![\w/.-])"
)
# The secrets this process has held, newest last; a daemon running for months keeps the recent ones.
_known_secrets: dict[str, None] = {}
_KNOWN_LIMIT = 512
_known_lock = threading.Lock()


def register_secret(*values: str) -> None:
    """Make sure these exact strings never reach a log line, whatever their shape."""
    with _known_lock:
        for value in values:
            if value and len(value) >= 8:
                _known_secrets.pop(value, None)
                _known_secrets[value] = None
        while len(_known_secrets) > _KNOWN_LIMIT:
            del _known_secrets[next(iter(_known_secrets))]


def _redacted_assignment(match: re.Match[str]) -> str:
    quote = match.group("quote") or ""
    return f"{match.group('lead')}{match.group('prefix') or ''}{quote}[redacted]{quote}"


def redact(text: str) -> str:
    with _known_lock:
        secrets = list(_known_secrets)
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, "[redacted]")
    text = _SECRET_ELEMENT.sub(lambda m: f"<{m.group(1)}>[redacted]</{m.group(1)}>", text)
    text = _SECRET_ASSIGNMENT.sub(_redacted_assignment, text)
    text = _BEDROCK_KEY.sub("bedrock-api-key-[redacted]", text)
    text = _LONG_BASE64.sub("[redacted]", text)
    return _KEY_ID.sub(lambda m: f"{m.group(1)}…{m.group(2)[-4:]}", text)


class RedactingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def setup_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(RedactingFormatter("credhelper: %(levelname)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    if level.upper() != "DEBUG":
        for noisy in ("botocore", "urllib3", "watchdog"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
