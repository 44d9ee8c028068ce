"""Logging to stderr through a filter that keeps secrets out of every line, botocore's included."""

from __future__ import annotations

import logging
import re
import sys
import threading

_KEY_ID = re.compile(r"\b(AKIA|ASIA)([A-Z0-9]{8,})\b")
# Secret access keys are 40 base64 characters; session tokens are hundreds. A run that long,
# with a digit in it, is hidden even when it was never registered. (ARN paths such as
# role/BedrockAccessRole/name rarely have digits, and stay readable.)
_LONG_BASE64 = re.compile(r"(?=[A-Za-z/+]*[0-9])[A-Za-z0-9/+]{40,}={0,2}")
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


def redact(text: str) -> str:
    with _known_lock:
        secrets = list(_known_secrets)
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, "[redacted]")
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
