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
The file is read with configparser exactly as botocore reads it (`formats.awsconfig`), so an
indented key under `[default]` and the keys of `[DEFAULT]`, which every section inherits, are
dropped too; the copy is written by configparser (comments and layout are not kept).

A config file botocore cannot read (a duplicate section, a line before the first section, not
UTF-8) gives botocore no setting at all, and a laxer reader (the JS SDK's) might still find a
long-term key in it: the command then gets an empty config file, so every SDK reaches the
endpoint, and exec warns once, naming the file and the line (the region still comes from the
profile when it sets one).
The copy is private (0600, in credhelper's private cache directory) and removed when exec ends.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path

from ..fileio import FileTooLarge, read_regular_file
from ..formats.awsconfig import UnreadableConfig, without_default_credentials
from ..paths import aws_config_path

CONFIG_MAX_BYTES = 1 << 20
log = logging.getLogger("credhelper.exec")


@contextlib.contextmanager
def served_config(environ: Mapping[str, str], directory: str | Path) -> Iterator[str | None]:
    """The config file for the command of `exec --endpoint`: a private copy of the user's without
    the default profile's credentials, removed at the end; None when the user's file needs none
    (or cannot be opened: the SDK cannot open it either; botocore takes anything but a regular file,
    a FIFO say, as no file, and reading one would block); an empty file when botocore could read
    it but credhelper cannot be sure what it holds (unparseable, or over 1 MiB)."""
    user_file = aws_config_path(environ)
    try:
        found = read_regular_file(user_file, limit=CONFIG_MAX_BYTES, follow_symlinks=True)
        text = found[0].decode("utf-8", "surrogateescape") if found is not None else ""
        copy = without_default_credentials(text)
    except FileTooLarge:
        log.warning(
            "%s is over 1 MiB, more than credhelper reads: the command gets an empty AWS config "
            "file instead, so its SDK still reaches the endpoint",
            user_file,
        )
        copy = ""
    except OSError:  # not a regular file, or unreadable: the SDK reads nothing from it either
        copy = None
    except UnreadableConfig as error:
        log.warning(
            "%s cannot be read as botocore reads it (%s): the command gets an empty AWS config "
            "file instead, so its SDK still reaches the endpoint; fix that line",
            user_file,
            error,
        )
        copy = ""
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
