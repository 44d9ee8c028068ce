"""STS endpoint URLs: how one is shown, and botocore's switch that ignores configured ones.

A leaf: the profile's validation, STS errors, `doctor`, `env` and the daemon's records all show
an endpoint through `shown_url`, so a user name and password in a URL
(`http://user:password@host/`) reach no message, log line or state file."""

from __future__ import annotations

import re
from collections.abc import Mapping

ENDPOINT_URL = re.compile(r"^https?://[^\s/]+")
IGNORE_VARIABLE = "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"
HIDDEN = "***"


def _parts(url: str) -> tuple[str, str, str, str]:
    """(scheme and `://`, userinfo, host and port, the rest). A value without `scheme://` (refused
    as no URL) is all authority up to its first `/`, `?` or `#`."""
    scheme, separator, rest = url.partition("://")
    if not separator:
        scheme, rest = "", url
    end = min((i for i in (rest.find(mark) for mark in "/?#") if i >= 0), default=len(rest))
    userinfo, _, host = rest[:end].rpartition("@")
    return scheme + separator, userinfo, host, rest[end:]


def shown_url(url: str) -> str:
    """`url` as a message, a log line or a state file may show it: its userinfo (a user name and
    password, whatever precedes the last `@` of the authority), query and fragment (where a token
    may ride) replaced by ***."""
    scheme, userinfo, host, tail = _parts(url)
    cut = min((i for i in (tail.find(mark) for mark in "?#") if i >= 0), default=len(tail))
    path, extra = tail[:cut], tail[cut:]
    shown = f"{scheme}{HIDDEN}@{host}" if userinfo else f"{scheme}{host}"
    return f"{shown}{path}{extra[:1]}{HIDDEN}" if extra else f"{shown}{path}"


def userinfo_of(url: str) -> str:
    """The userinfo `shown_url` hides ('' for none): for the log filter, which hides it in
    lines others write (botocore's debug log)."""
    return _parts(url)[1]


def configured_urls_ignored(environ: Mapping[str, str]) -> bool:
    """botocore's AWS_IGNORE_CONFIGURED_ENDPOINT_URLS (configprovider, `utils.ensure_boolean`): set
    to `true` in any case, the AWS_ENDPOINT_URL* variables (and endpoint_url in ~/.aws/config) are
    ignored; any other value, empty included, means false."""
    return environ.get(IGNORE_VARIABLE, "").lower() == "true"
