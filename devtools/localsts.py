"""An STS-compatible server on 127.0.0.1 (moto), with authentication enforced, for the demo,
the tests and the benchmarks. A developer tool of the clone, not part of the installed package;
needs moto: pip install -e '.[local-sts]' (or '.[test]')."""

from __future__ import annotations

import json
import logging
import os
import tempfile
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ACCOUNT = "123456789012"
USER_NAME = "bedrock-developer"
ROLE_NAME = "BedrockAccessRole"
# moto accepts any key pair until authentication is switched on; these are AWS's documented examples.
BOOTSTRAP_KEY_ID = "AKIAIOSFODNN7EXAMPLE"
BOOTSTRAP_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


@dataclass(frozen=True)
class LocalSts:
    url: str
    access_key_id: str
    secret_access_key: str = ""
    role_arn: str = ""
    server: Any = None

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()

    def set_auth(self, enforced: bool) -> None:
        body = b"0" if enforced else b"inf"
        request = urllib.request.Request(
            self.url + "/moto-api/reset-auth",
            data=body,
            method="POST",
            headers={"Content-Type": "text/plain"},
        )
        urllib.request.urlopen(request, timeout=10).read()

    def iam(self, key_id: str = BOOTSTRAP_KEY_ID, secret: str = BOOTSTRAP_SECRET) -> Any:
        import boto3

        return boto3.client(
            "iam",
            endpoint_url=self.url,
            region_name="us-east-1",
            aws_access_key_id=key_id,
            aws_secret_access_key=secret,
        )


def provision_user(
    iam: Any, user: str, role_name: str, more: Sequence[dict[str, Any]] = ()
) -> tuple[dict[str, Any], str]:
    """The setup the guide asks an administrator for: `user` with one access key, and role
    `role_name` it may assume; `more` adds statements to the user's policy. Returns the key (the
    AccessKey of CreateAccessKey) and the role's ARN."""
    iam.create_user(UserName=user)
    key: dict[str, Any] = iam.create_access_key(UserName=user)["AccessKey"]
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:user/{user}"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    role = iam.create_role(
        RoleName=role_name, AssumeRolePolicyDocument=json.dumps(trust), MaxSessionDuration=43200
    )["Role"]
    allow = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["sts:AssumeRole", "sts:GetSessionToken", "sts:GetCallerIdentity"],
                "Resource": "*",
            },
            *more,
        ],
    }
    iam.put_user_policy(UserName=user, PolicyName="assume-bedrock", PolicyDocument=json.dumps(allow))
    return key, str(role["Arn"])


def _provision(url: str) -> tuple[str, str, str]:
    sts = LocalSts(url, BOOTSTRAP_KEY_ID, BOOTSTRAP_SECRET)
    key, role_arn = provision_user(sts.iam(), USER_NAME, ROLE_NAME)
    return key["AccessKeyId"], key["SecretAccessKey"], role_arn


def start_local_sts(port: int = 0) -> LocalSts:
    from moto.moto_server.threaded_moto_server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    host, bound = server.get_host_and_port()
    url = f"http://{host}:{bound}"
    key_id, secret, role_arn = _provision(url)
    sts = LocalSts(url, key_id, secret, role_arn, server)
    sts.set_auth(enforced=True)
    return sts


def profile_toml(sts: LocalSts, name: str = "bedrock", extra: str = "") -> str:
    """A `[profiles.NAME]` table that assumes the local role as the local user."""
    return (
        f'[profiles.{name}]\nrole_arn = "{sts.role_arn}"\nsource_profile = "{USER_NAME}"\n'
        f'region = "us-east-1"\nsts_endpoint_url = "{sts.url}"\n{extra}\n'
    )


def scratch_home(sts: LocalSts, prefix: str, config_toml: str) -> tuple[Path, dict[str, str]]:
    """A new HOME holding the local user's key as a source profile and a credhelper
    configuration, and an environment for it with no inherited AWS or credhelper settings."""
    home = Path(tempfile.mkdtemp(prefix=prefix))
    (home / ".aws").mkdir(mode=0o700)
    credentials = home / ".aws" / "credentials"
    credentials.write_text(
        f"[{USER_NAME}]\naws_access_key_id = {sts.access_key_id}\n"
        f"aws_secret_access_key = {sts.secret_access_key}\n"
    )
    credentials.chmod(0o600)
    config = home / ".config" / "credhelper" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text(config_toml)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "CREDHELPER_", "XDG_"))}
    env.update(HOME=str(home), PYTHONPATH=str(Path(__file__).resolve().parent.parent))
    return home, env
