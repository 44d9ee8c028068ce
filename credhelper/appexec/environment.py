"""An app's environment, built in one place for `exec` (plain and supervised) and `env`: the
credentials' variables or the endpoint's, the region, and for a command exec starts, what is
removed from the parent's environment. Plain exec imports this before becoming the command:
standard library and a few light credhelper modules only; the rest is imported where it is used."""

from __future__ import annotations

import os
from collections.abc import Mapping

from ..credentials import Credentials
from ..profile import Profile

# Variables that would win over the ones exec sets, or point an SDK somewhere else.
REMOVED_VARIABLES = frozenset(
    {
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_ROLE_ARN",
        "AWS_ROLE_SESSION_NAME",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_SECURITY_TOKEN",
        "AWS_CREDENTIAL_EXPIRATION",
        "AWS_BEARER_TOKEN_BEDROCK",
        "AWS_CREDENTIAL_FILE",  # botocore's legacy credentials file, read before a container endpoint
    }
)
REMOVED_PREFIXES = ("AWS_CONTAINER_",)

# Under exec --endpoint, what an app's own dotenv would otherwise load over the endpoint from the
# .env the same profile writes (dotenv readers do not override a variable that is set): set, empty.
# SDKs take an empty key id, secret, token or expiration as unset.
HIDDEN_FROM_DOTENV = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_CREDENTIAL_EXPIRATION",
)


def child_environment(parent: Mapping[str, str], values: Mapping[str, str]) -> dict[str, str]:
    """The parent's environment without what would win over `values` or confuse an SDK, plus `values`."""
    kept = {
        key: value
        for key, value in parent.items()
        if key not in REMOVED_VARIABLES and not key.startswith(REMOVED_PREFIXES)
    }
    kept.update(values)
    return kept


def region_values(region: str | None) -> dict[str, str]:
    """The region, under both names: botocore reads only AWS_DEFAULT_REGION."""
    return {"AWS_REGION": region, "AWS_DEFAULT_REGION": region} if region else {}


def credential_values(
    credentials: Credentials, profile: Profile, now: float, *, logged: bool = True
) -> dict[str, str]:
    """The credentials themselves, a Bedrock API key of the same session when the profile makes
    one, and the region. The key is made here, so it is registered as a secret here, unless the
    process logs nothing (`logged=False`: plain exec, which must not pay for logging's import)."""
    values = credentials.env_values(profile.region)
    if profile.bedrock_api_key and profile.region:
        from ..formats.bedrockkey import (  # only profiles that use it pay its import
            TOKEN_VARIABLE,
            bedrock_api_key,
        )

        values[TOKEN_VARIABLE] = key = bedrock_api_key(credentials, profile.region, now)
        if logged:
            from ..logsetup import register_secret

            register_secret(key)
    values.update(region_values(profile.region))
    return values


def endpoint_values(
    profile: Profile, url: str, *, token: str | None = None, token_file: str | None = None
) -> dict[str, str]:
    """The variables that send an SDK to the endpoint at `url` for `profile`'s credentials, with
    the token itself (a command exec serves) or the file holding it (the daemon's), and the region."""
    from ..endpoint.protocol import credentials_url

    values = {"AWS_CONTAINER_CREDENTIALS_FULL_URI": credentials_url(url, profile.name)}
    if token is not None:
        values["AWS_CONTAINER_AUTHORIZATION_TOKEN"] = token
    if token_file is not None:
        values["AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"] = token_file
    values.update(region_values(profile.region))
    return values


def served_command_values(
    profile: Profile, url: str, token: str, config_file: str | None = None
) -> dict[str, str]:
    """What the command of exec --endpoint gets: the endpoint's variables, and empty values for
    what its dotenv could otherwise load from the profile's .env. An SDK's default chain reads the
    shared files before the endpoint (`sharedfiles`): the credentials file is an empty one, and the
    config file `config_file` when given (the user's without its default profile's credentials).
    The Bedrock key is hidden only
    for a profile that writes one (`bedrock_api_key`): botocore and the JS SDK take an
    AWS_BEARER_TOKEN_BEDROCK that is set, even empty, as a key to use instead of the credentials,
    so for every other profile it stays unset and Bedrock calls are signed with the endpoint's
    credentials."""
    values = dict.fromkeys(HIDDEN_FROM_DOTENV, "")
    values["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
    if config_file is not None:
        values["AWS_CONFIG_FILE"] = config_file
    if profile.bedrock_api_key:
        from ..formats.bedrockkey import TOKEN_VARIABLE

        values[TOKEN_VARIABLE] = ""
    return values | endpoint_values(profile, url, token=token)


def format_variables(values: dict[str, str], output: str) -> str:
    """`values` as `env` prints them: sh (export lines), dotenv or json."""
    import json
    import shlex

    from ..formats.dotenv import SAFE_VALUE

    if output == "json":
        return json.dumps(values, indent=2)
    if output == "dotenv":
        return "\n".join(
            f"{key}={json.dumps(value) if not SAFE_VALUE.match(value) else value}"
            for key, value in values.items()
        )
    return "\n".join(f"export {key}={shlex.quote(value)}" for key, value in values.items())
