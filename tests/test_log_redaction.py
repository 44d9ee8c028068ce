"""What `--log-level debug` shows of a real run: botocore's wire logging with every secret hidden,
and the paths and ARNs a person needs to read left as they are."""

from __future__ import annotations

from tests.conftest import UserHome
from tests.helpers import assert_no_secret, assert_one_line_failure


def test_debug_run_shows_wire_logging_without_secrets(home: UserHome) -> None:
    result = home.run("--log-level", "debug", "refresh")
    assert result.returncode == 0, result.stderr
    assert_no_secret(home, result.stdout, result.stderr)
    assert "<SecretAccessKey>[redacted]</SecretAccessKey>" in result.stderr  # the response body was logged
    assert home.sts.role_arn in result.stderr


def test_a_long_path_in_an_error_stays_readable(home: UserHome) -> None:
    target = home.root / "Projects2026" / "AgentZeroBedrock" / "Config" / "Secrets" / "app.env"
    target.parent.mkdir(parents=True)
    target.write_text("AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE\nAWS_SECRET_ACCESS_KEY=\n")
    home.write_config(env_files=f'["{target}"]')
    result = home.run("refresh")
    assert_one_line_failure(result, 78, str(target), "AKIA…MPLE")
