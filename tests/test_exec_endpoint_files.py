"""`exec --endpoint`: the command's SDK reaches exec's endpoint, whatever the user's shared AWS
files give the default profile (real botocore in the command, real STS behind exec)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from tests.conftest import UserHome
from tests.helpers import assert_no_secret, cached_record

LONG_TERM = "AKIAIOSFODNN7EXAMPLE"  # AWS's documented example key id
# The command: which credentials botocore's default chain found, and one of the config's settings.
WHICH_CREDENTIALS = (
    "import json, botocore.session; s = botocore.session.get_session(); c = s.get_credentials(); "
    "print(json.dumps({'method': c.method, 'key': c.access_key, "
    "'max_attempts': s.get_config_variable('max_attempts'), "
    "'other': s.full_config['profiles'].get('other', {}).get('region')}))"
)


def _add(path: Path, text: str) -> None:
    path.write_text((path.read_text() if path.exists() else "") + text)


def test_a_default_profile_in_the_shared_files_does_not_win_over_the_endpoint(home: UserHome) -> None:
    aws = home.root / ".aws"
    _add(aws / "credentials", f"\n[default]\naws_access_key_id = {LONG_TERM}\naws_secret_access_key = x1\n")
    _add(
        aws / "config",
        f"[default]\nmax_attempts = 7\naws_access_key_id = {LONG_TERM}\naws_secret_access_key = x2\n"
        "credential_process = /bin/false\n[profile other]\nregion = us-west-2\n",
    )
    config_before = (aws / "config").read_bytes()
    result = home.run("exec", "bedrock", "--endpoint", "--", sys.executable, "-c", WHICH_CREDENTIALS)
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    assert seen["key"] != LONG_TERM, "the user's long-term [default] key won over exec's endpoint"
    assert seen == {
        "method": "container-role",
        "key": cached_record(home)["AccessKeyId"],
        "max_attempts": 7,
        "other": "us-west-2",
    }, "botocore must take exec's endpoint and keep the rest of the user's config"
    assert (aws / "config").read_bytes() == config_before, "the user's config must not change"
    assert not list(home.cache_dir.glob("exec-aws-config-*")), "the config copy must go with exec"
    assert_no_secret(home, result.stdout, result.stderr)
