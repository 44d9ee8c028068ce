"""One writer for every file that holds a secret (DESIGN section 11): whichever command writes
it (`init`, `adopt-keys`, a refresh of a credentials_files target, and the undo of a failed
init), a file holding a long-term secret ends 0600, and a symlinked file stays a symlink."""

from __future__ import annotations

import json
import os
import stat
import textwrap
from pathlib import Path

import pytest

from tests.conftest import AGENT0_ENV_DEFAULT, UserHome
from tests.helpers import assert_one_line_failure
from tests.stsproxy import Fault
from tests.test_init import guide_end_state, init

OTHER_PAIR = textwrap.dedent("""\
    [work]
    aws_access_key_id = AKIAIOSFODNN7EXAMPLE
    aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY
    """)


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_init_leaves_the_credentials_file_it_moves_the_pair_into_0600(home: UserHome) -> None:
    guide_end_state(home)
    credentials = home.root / ".aws" / "credentials"
    credentials.write_text(OTHER_PAIR)
    credentials.chmod(0o644)

    result = init(home, "--no-systemd")

    assert result.returncode == 0, result.stderr
    assert "[bedrock-developer]" in credentials.read_text()
    assert mode_of(credentials) == 0o600, "init left a long-term key readable by other users"
    assert "0600" in result.stderr, "the tightening must be told"


def test_adopt_keys_leaves_the_credentials_file_0600(home: UserHome) -> None:
    guide_end_state(home)
    credentials = home.root / ".aws" / "credentials"
    credentials.write_text(OTHER_PAIR)
    credentials.chmod(0o640)

    result = home.run("adopt-keys", "--env-file", str(home.app_env), "--profile", "bedrock-developer")

    assert result.returncode == 0, result.stderr
    assert mode_of(credentials) == 0o600


@pytest.mark.parametrize(
    ("beside", "mode_after"),
    [(OTHER_PAIR, 0o600), ("# for the SDK in the container\n", 0o640)],
    ids=["beside-a-long-term-key", "alone-keeps-its-mode"],
)
def test_a_credentials_section_target_ends_0600_beside_a_long_term_key(
    home: UserHome, beside: str, mode_after: int
) -> None:
    target = home.root / "sdk-credentials"
    target.write_text(beside)
    target.chmod(0o640)
    home.write_config(extra='credentials_files = [{path = "~/sdk-credentials", profile = "bedrock"}]\n')

    result = home.run("refresh", "bedrock")

    assert result.returncode == 0, result.stderr
    assert "aws_session_token" in target.read_text()
    assert mode_of(target) == mode_after


def test_doctor_fails_a_credentials_file_with_a_long_term_key_others_can_read(home: UserHome) -> None:
    credentials = home.root / ".aws" / "credentials"
    credentials.chmod(0o644)

    result = home.run("doctor", "--json", timeout=120)

    findings = [f for f in json.loads(result.stdout) if f["check"] == "credentials file"]
    assert [f["status"] for f in findings] == ["fail"], findings
    assert f"chmod 600 {credentials}" in findings[0]["detail"]
    assert result.returncode == 1


def test_doctor_passes_a_private_credentials_file(home: UserHome) -> None:
    result = home.run("doctor", "--json", timeout=120)

    findings = [f for f in json.loads(result.stdout) if f["check"] == "credentials file"]
    assert [f["status"] for f in findings] == ["ok"], findings


# -- symlinks stay symlinks -------------------------------------------------------------------------


def dotfiles(home: UserHome) -> dict[Path, Path]:
    """config.toml, ~/.aws/config and ~/.aws/credentials as symlinks into a dotfiles folder."""
    folder = home.root / "dotfiles"
    folder.mkdir()
    links = {
        home.config_file: folder / "credhelper.toml",
        home.root / ".aws" / "config": folder / "aws-config",
        home.root / ".aws" / "credentials": folder / "aws-credentials",
    }
    contents = {
        home.config_file: "# my credhelper settings\n",
        home.root / ".aws" / "config": "[default]\nregion = eu-west-1\n",
        home.root / ".aws" / "credentials": OTHER_PAIR,
    }
    for link, real in links.items():
        real.write_text(contents[link])
        real.chmod(0o600)
        link.parent.mkdir(parents=True, exist_ok=True)
        link.unlink(missing_ok=True)
        link.symlink_to(real)
    return links


def test_init_writes_through_symlinked_files_and_keeps_the_links(home: UserHome) -> None:
    guide_end_state(home)
    links = dotfiles(home)

    result = init(home, "--no-systemd")

    assert result.returncode == 0, result.stderr
    for link, real in links.items():
        assert link.is_symlink(), f"{link} was replaced by a regular file"
        assert os.path.realpath(link) == str(real)
    assert "[profiles.bedrock]" in links[home.config_file].read_text()
    assert "[profile bedrock]" in links[home.root / ".aws" / "config"].read_text()
    assert "[bedrock-developer]" in links[home.root / ".aws" / "credentials"].read_text()
    assert home.app_env.read_text() != AGENT0_ENV_DEFAULT


def test_a_failed_init_puts_symlinked_files_back_through_their_links(home: UserHome) -> None:
    guide_end_state(home)
    links = dotfiles(home)
    before = {link: real.read_bytes() for link, real in links.items()}
    home.proxy.add_fault(Fault("code", action="AssumeRole", code="AccessDenied"))

    result = init(home, "--no-systemd")

    assert_one_line_failure(result, 77, "every file was put back as it was")
    for link, real in links.items():
        assert link.is_symlink(), f"{link} was replaced by a regular file on rollback"
        assert real.read_bytes() == before[link], f"{real} was not put back"
