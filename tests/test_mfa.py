"""MFA: one code for a long GetSessionToken session, role sessions renewed from it without asking."""

from __future__ import annotations

import json
import sys

from tests.conftest import UserHome
from tests.helpers import assert_one_line_failure

MFA_SERIAL = '"arn:aws:iam::123456789012:mfa/bedrock-developer"'


def test_mfa_command_gives_one_code_for_many_role_sessions(home: UserHome) -> None:
    counter = home.root / "codes-asked"
    command = f"[\"{sys.executable}\", \"-c\", \"open('{counter}', 'a').write('x'); print('123456')\"]"
    home.write_config(mfa_serial=MFA_SERIAL, mfa_command=command)
    # moto answers GetSessionToken with one fixed key pair that no IAM user owns, so AssumeRole
    # from that session passes only with authentication off. Every other test runs with it on.
    home.sts.set_auth(enforced=False)
    try:
        first = home.run("refresh")
        assert first.returncode == 0, first.stderr
        second = home.run("refresh")
        assert second.returncode == 0, second.stderr
    finally:
        home.sts.set_auth(enforced=True)
    assert counter.read_text() == "x"  # one code, two role sessions
    assert home.proxy.count("GetSessionToken") == 1
    assert home.proxy.count("AssumeRole") == 2
    state = json.loads((home.cache_dir / "bedrock.state.json").read_text())
    assert state["mfa_needed"] is False


def test_no_code_to_be_had_is_refused_and_status_says_a_code_is_needed(home: UserHome) -> None:
    home.write_config(mfa_serial=MFA_SERIAL)
    # subprocess without a controlling terminal: /dev/tty cannot be opened
    result = home.run("credential-process", "bedrock")
    assert_one_line_failure(result, 77, "MFA code", "mfa_command")
    status = home.run("status", "--json")
    assert json.loads(status.stdout)[0]["mfa_code_needed"] is True
    assert home.proxy.count("GetSessionToken") == 0


def test_a_failing_mfa_command_is_refused(home: UserHome) -> None:
    home.write_config(mfa_serial=MFA_SERIAL, mfa_command='["false"]')
    assert_one_line_failure(home.run("refresh"), 77, "mfa_command exited 1")
