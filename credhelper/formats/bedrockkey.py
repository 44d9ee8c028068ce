"""Short-term Amazon Bedrock API keys made from a role session. Pure: no I/O, no clock of its own.

A short-term key is what AWS's `aws-bedrock-token-generator` makes: a SigV4 query-presigned
`POST https://bedrock.amazonaws.com/?Action=CallWithBearerToken`, signed for the service `bedrock`
in one region with the session's credentials (its session token included), then without its
`https://`, with `&Version=1` appended, base64-encoded and prefixed with `bedrock-api-key-`.
Bedrock checks it as it checks any presigned request, so it works while both its `X-Amz-Expires`
and the session behind it last. Making one is a few HMACs: no network call.

Made here with hashlib and hmac rather than through that library, which signs with botocore: the
daemon's write path and `env --static` would pay botocore's import for it, and its signer reads the
wall clock itself, where credhelper signs at a chosen time (see `bedrock_api_key`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from urllib.parse import parse_qsl, quote

from ..credentials import Credentials

TOKEN_VARIABLE = "AWS_BEARER_TOKEN_BEDROCK"
TOKEN_PREFIX = "bedrock-api-key-"
HOST = "bedrock.amazonaws.com"
SERVICE = "bedrock"
MAX_LIFETIME_SECONDS = 43200  # Bedrock refuses short-term keys that claim more than 12 hours
_EMPTY_BODY_SHA256 = hashlib.sha256(b"").hexdigest()


def _quote(text: str) -> str:
    return quote(text, safe="-_.~")


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def presigned_request(
    access_key_id: str,
    secret_access_key: str,
    session_token: str,
    region: str,
    signed_at: int,
    expires: int,
) -> str:
    """`host/?query` of the SigV4 query-presigned CallWithBearerToken request, signature last,
    with the parameters in the order botocore's `SigV4QueryAuth` writes them."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(signed_at))
    scope = f"{stamp[:8]}/{region}/{SERVICE}/aws4_request"
    params = [
        ("Action", "CallWithBearerToken"),
        ("X-Amz-Algorithm", "AWS4-HMAC-SHA256"),
        ("X-Amz-Credential", f"{access_key_id}/{scope}"),
        ("X-Amz-Date", stamp),
        ("X-Amz-Expires", str(expires)),
        ("X-Amz-SignedHeaders", "host"),
        ("X-Amz-Security-Token", session_token),
    ]
    encoded = [f"{_quote(name)}={_quote(value)}" for name, value in params]
    canonical_request = "\n".join(
        ["POST", "/", "&".join(sorted(encoded)), f"host:{HOST}\n", "host", _EMPTY_BODY_SHA256]
    )
    string_to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", stamp, scope, hashlib.sha256(canonical_request.encode()).hexdigest()]
    )
    key = f"AWS4{secret_access_key}".encode()
    for part in (stamp[:8], region, SERVICE, "aws4_request"):
        key = _hmac(key, part)
    signature = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
    return f"{HOST}/?{'&'.join(encoded)}&X-Amz-Signature={signature}"


def bedrock_api_key(credentials: Credentials, region: str, now: float) -> str:
    """The short-term Bedrock API key for this session, expiring with it (12 hours at most).

    Signed at the time the session was issued, so one session always gives the same key: a
    target rewritten for the same session (restored after an edit, refreshed twice) keeps its
    bytes, and its watchers see no change. `now` stands in only when the issue time is unknown."""
    issued = credentials.issued_at
    signed_at = int(issued if 0 < issued < credentials.expiration else now)
    expires = min(MAX_LIFETIME_SECONDS, int(credentials.expiration - signed_at))
    if credentials.is_expired(now) or expires < 1:
        raise ValueError("the session has expired; a Bedrock API key needs a live one")
    request = presigned_request(
        credentials.access_key_id,
        credentials.secret_access_key,
        credentials.session_token,
        region,
        signed_at,
        expires,
    )
    return TOKEN_PREFIX + base64.b64encode(f"{request}&Version=1".encode()).decode()


def bedrock_env(region: str | None, credentials: Credentials, now: float) -> dict[str, str]:
    """`AWS_BEARER_TOKEN_BEDROCK` for `credentials` in `region` (nothing without a region), its
    value registered as a secret so that no log line shows it."""
    from ..logsetup import register_secret  # logging: not for callers that only need the key

    if not region:
        return {}
    token = bedrock_api_key(credentials, region, now)
    register_secret(token)
    return {TOKEN_VARIABLE: token}


def is_long_term_bedrock_key(value: str) -> bool:
    """A Bedrock API key that is not a presigned short-term one: made in the IAM console, it never
    expires on its own. An empty value is nobody's key."""
    return bool(value) and not value.startswith(TOKEN_PREFIX)


def decode_bedrock_api_key(token: str) -> dict[str, str] | None:
    """The presigned request's query parameters, plus `host`; None for anything else."""
    if not token.startswith(TOKEN_PREFIX):
        return None
    try:
        request = base64.b64decode(token[len(TOKEN_PREFIX) :], validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    host, separator, query = request.partition("/?")
    if not separator:
        return None
    fields = dict(parse_qsl(query, keep_blank_values=True))
    fields["host"] = host
    return fields


def bedrock_key_id(token: str) -> str | None:
    """The access key id a short-term Bedrock API key was signed with."""
    fields = decode_bedrock_api_key(token)
    if fields is None or "X-Amz-Credential" not in fields:
        return None
    return fields["X-Amz-Credential"].split("/", 1)[0]
