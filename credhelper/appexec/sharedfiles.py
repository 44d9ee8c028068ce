"""The shared AWS files as the command of `exec --endpoint` sees them.

An SDK's default credential chain reads the shared files before it asks a container endpoint
(botocore's `create_credential_resolver`: environment, then the profile's role_arn,
web_identity_token_file, sso_*, the credentials file, login_session, credential_process and keys
in the config file, and only then the container provider; the JS SDK v3 reads the files first
too). With AWS_PROFILE removed, the profile is `default`: a long-term pair in
`~/.aws/credentials`' [default] would silently win over exec's endpoint. So the command gets
AWS_SHARED_CREDENTIALS_FILE pointed at an empty file (`environment.served_command_values`) and,
when the config file's default profile has any way to credentials of its own, a copy of the config
file without those settings: its region, retries, endpoints and every other profile are kept.
The copy is private (0600, in credhelper's private cache directory) and removed when exec ends.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path

from ..formats.awsconfig import without_default_credentials
from ..paths import aws_config_path


@contextlib.contextmanager
def served_config(environ: Mapping[str, str], directory: str | Path) -> Iterator[str | None]:
    """The config file for the command of `exec --endpoint`: a private copy of the user's without
    the default profile's credentials, removed at the end; None when the user's file needs none
    (or cannot be read: the SDK will not read it either)."""
    try:
        text = aws_config_path(environ).read_text(encoding="utf-8", errors="surrogateescape")
    except (OSError, ValueError):
        text = ""
    copy = without_default_credentials(text)
    if copy is None:
        yield None
        return
    fd, path = tempfile.mkstemp(prefix="exec-aws-config-", dir=directory)  # 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8", errors="surrogateescape") as out:
            out.write(copy)
        yield path
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)
