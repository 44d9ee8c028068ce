"""Targets other users could reach: a symlink or file of theirs on the way to the credentials,
and a check before STS that proves the write would be accepted."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from credhelper.credentials import Credentials
from credhelper.errors import TargetError
from credhelper.targets.envfile import EnvFileTarget
from credhelper.targets.files import write_target
from tests.conftest import UserHome
from tests.helpers import assert_one_line_failure, roots_own_directory

ATTACKER = 4242
CREDENTIALS = Credentials("ASIAIOSFODNN7EXAMPLE", "secret/EXAMPLE+1", "token/EXAMPLE=", 2_000_000_000.0)
VICTIM = 4343

needs_root = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("setpriv") is None, reason="needs root and setpriv"
)


def as_user(
    uid: int, *command: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    setpriv = ["setpriv", "--reuid", str(uid), "--regid", str(uid), "--clear-groups", "--"]
    return subprocess.run(
        [*setpriv, *command], env=env, cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )


@pytest.fixture
def roots_dir() -> Iterator[Path]:
    """A directory of root's that no one else may write: the way to the files root keeps for a
    user must be one no third user controls."""
    path = roots_own_directory("credhelper-roots-")
    yield path
    shutil.rmtree(path)


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A sticky world-writable directory, like /tmp, that both users reach."""
    path = Path(tempfile.mkdtemp(prefix="credhelper-shared-", dir="/tmp"))
    os.chmod(path, 0o1777)
    yield path
    shutil.rmtree(path)


def attackers_link_as_the_target(home: UserHome, link: Path, to: Path) -> None:
    """A symlink of the attacker's at `link`, to `to`, and the profile's .env named by it."""
    link.symlink_to(to)
    os.lchown(link, ATTACKER, ATTACKER)
    home.write_config(env_files=f'["{link}"]')


def assert_root_refuses_untouched(home: UserHome, target: Path, untouched: Path, *needles: str) -> None:
    """`refresh` of a profile whose .env is `target` refuses (78, one line with `needles`), and
    `untouched` keeps its text."""
    before = untouched.read_text()
    home.write_config(env_files=f'["{target}"]')
    result = home.run("refresh", "bedrock")
    assert_one_line_failure(result, 78, *needles)
    assert untouched.read_text() == before


def victim_home(home: UserHome, shared: Path, target: Path) -> tuple[Path, dict[str, str]]:
    """The test user's HOME, copied to where the victim uid can reach it, its .env at `target`."""
    home.write_config(env_files=f'["{target}"]')
    root = shared / "victim"
    shutil.copytree(home.root, root)
    for path in [root, *root.rglob("*")]:
        os.chown(path, VICTIM, VICTIM, follow_symlinks=False)
    os.chmod(root, 0o700)
    return root, dict(home.env, HOME=str(root))


def victim_refresh(home: UserHome, shared: Path, target: Path) -> subprocess.CompletedProcess[str]:
    root, env = victim_home(home, shared, target)
    return as_user(VICTIM, sys.executable, "-m", "credhelper", "refresh", env=env, cwd=root)


@needs_root
def test_credentials_never_go_through_another_users_symlink(home: UserHome, shared_dir: Path) -> None:
    attacker_dir = shared_dir / "attacker"
    script = (
        f"import os; os.mkdir('{attacker_dir}', 0o777); os.chmod('{attacker_dir}', 0o777); "
        f"fd = os.open('{attacker_dir}/loot', os.O_CREAT | os.O_WRONLY, 0o666); os.fchmod(fd, 0o666); "
        f"os.symlink('{attacker_dir}/loot', '{shared_dir}/app.env')"
    )
    made = as_user(ATTACKER, sys.executable, "-c", script)
    assert made.returncode == 0, made.stderr
    result = victim_refresh(home, shared_dir, shared_dir / "app.env")
    assert_one_line_failure(result, 78, f"{shared_dir}/app.env", "symlink owned by another user")
    assert (attacker_dir / "loot").read_bytes() == b""
    assert [p.name for p in attacker_dir.iterdir()] == ["loot"]
    assert home.proxy.count("AssumeRole") == 0


@needs_root
def test_credentials_never_go_into_another_users_file(home: UserHome, shared_dir: Path) -> None:
    target = shared_dir / "app.env"
    made = as_user(ATTACKER, sys.executable, "-c", f"open('{target}', 'w').write('A=1\\n')")
    assert made.returncode == 0, made.stderr
    os.chmod(target, 0o644)
    result = victim_refresh(home, shared_dir, target)
    assert_one_line_failure(result, 78, str(target), "owned by another user")
    assert target.read_text() == "A=1\n"
    assert home.proxy.count("AssumeRole") == 0


def test_credentials_never_go_into_a_file_anyone_can_write(home: UserHome) -> None:
    os.chmod(home.app_env, 0o666)
    before = home.app_env.read_text()
    result = home.run("refresh")
    assert_one_line_failure(result, 78, str(home.app_env), "any user can write", "chmod 600")
    assert home.app_env.read_text() == before
    assert home.proxy.count("AssumeRole") == 0


def test_a_credentials_file_the_write_would_refuse_is_refused_before_sts(home: UserHome) -> None:
    shared = home.root / ".aws" / "apps"
    text = "[other]\nx = 1\n  [bedrock]\naws_access_key_id = ASIAOLDOLDOLDEXAMPLE\n"
    shared.write_text(text)
    os.chmod(shared, 0o600)
    home.write_config(credentials_files='[{path = "~/.aws/apps", profile = "bedrock"}]')
    result = home.run("refresh")
    assert_one_line_failure(result, 78, str(shared))
    assert shared.read_text() == text
    assert home.proxy.count("AssumeRole") == 0


@pytest.mark.skipif(os.geteuid() != 0, reason="root's own rule")
@pytest.mark.parametrize("leads_to", ["a-file-of-root", "a-new-file-in-roots-directory"])
def test_root_never_follows_another_users_symlink_into_a_file_not_theirs(
    home: UserHome, roots_dir: Path, leads_to: str
) -> None:
    """As root, a user's link is followed only to that user's own file: else whoever owns the link
    could have root append credentials to, or create, any file."""
    roots = roots_dir / "roots"
    roots.mkdir(mode=0o755)
    aimed_at = roots / "environment"
    if leads_to == "a-file-of-root":
        aimed_at.write_text("PATH=/usr/bin\n")
    users = roots_dir / "app"
    users.mkdir()
    os.chown(users, ATTACKER, ATTACKER)
    link = users / ".env"
    attackers_link_as_the_target(home, link, aimed_at)

    result = home.run("refresh", "bedrock")

    assert_one_line_failure(result, 78, str(link), "symlink owned by another user")
    assert not aimed_at.exists() or aimed_at.read_text() == "PATH=/usr/bin\n"


@pytest.mark.skipif(os.geteuid() != 0, reason="root's own rule")
def test_root_follows_a_users_symlink_to_that_users_own_file(home: UserHome, roots_dir: Path) -> None:
    """The neighbour: root keeping another user's .env, which that user keeps as a link."""
    users = roots_dir / "app"
    users.mkdir()
    real = users / "real.env"
    real.write_text("APP=1\n")
    link = users / ".env"
    link.symlink_to(real)
    for path in (users, real):
        os.chown(path, ATTACKER, ATTACKER)
    os.lchown(link, ATTACKER, ATTACKER)
    home.write_config(env_files=f'["{link}"]')

    result = home.run("refresh", "bedrock")

    assert result.returncode == 0, result.stderr
    assert "AWS_SESSION_TOKEN=" in real.read_text()
    assert real.stat().st_uid == ATTACKER and link.is_symlink()


@pytest.mark.skipif(os.geteuid() != 0, reason="root's own rule")
@pytest.mark.parametrize(
    ("directory_mode", "directory_owner", "kept"),
    [
        (0o1777, 0, False),  # /tmp: anyone could have put the file there
        (0o775, 0, False),  # a directory of root's that a group may write to
        (0o755, VICTIM, False),  # a third user's directory
        (0o755, 0, True),  # a directory only root may write: root put the user's file there
        (0o700, ATTACKER, True),  # the user's own directory
    ],
    ids=["shared-sticky", "group-writable-roots", "a-third-users", "only-roots", "the-users-own"],
)
def test_root_keeps_another_users_file_only_where_no_one_else_could_have_put_it(
    home: UserHome, roots_dir: Path, directory_mode: int, directory_owner: int, kept: bool
) -> None:
    """Root keeping another user's file keeps its owner; but a file planted in a shared directory
    by whoever wants to read root's credentials is not another user's to keep."""
    directory = roots_dir / "app"
    directory.mkdir()
    planted = directory / ".env"
    planted.write_text("APP=1\n")
    os.chmod(planted, 0o644)
    os.chown(planted, ATTACKER, ATTACKER)
    os.chown(directory, directory_owner, directory_owner)
    os.chmod(directory, directory_mode)
    home.write_config(env_files=f'["{planted}"]')

    result = home.run("refresh", "bedrock")

    if kept:
        assert result.returncode == 0, result.stderr
        assert "AWS_SESSION_TOKEN=" in planted.read_text() and planted.stat().st_uid == ATTACKER
    else:
        assert_one_line_failure(result, 78, str(planted), "whoever can write there could have put it")
        assert planted.read_text() == "APP=1\n"


@pytest.mark.skipif(os.geteuid() != 0, reason="root's own rule")
@pytest.mark.parametrize("directory_mode", [0o1777, 0o2775], ids=["shared-sticky", "group-writable-roots"])
def test_root_never_follows_a_link_planted_in_a_shared_directory_to_its_owners_file(
    home: UserHome, roots_dir: Path, directory_mode: int
) -> None:
    """The neighbour of a planted file: a user's link, in a directory others may write to, to a
    file of that user's own. Following it would write root's credentials where that user reads."""
    shared = roots_dir / "apps"
    shared.mkdir()
    os.chmod(shared, directory_mode)
    own = roots_dir / "attackers"
    own.mkdir()
    loot = own / "loot.env"
    loot.write_text("")
    for path in (own, loot):
        os.chown(path, ATTACKER, ATTACKER)
    os.chmod(loot, 0o600)
    link = shared / "app.env"
    attackers_link_as_the_target(home, link, loot)

    result = home.run("refresh", "bedrock")

    assert_one_line_failure(result, 78, str(link), "whoever can write there could have put it")
    assert loot.read_text() == ""


@pytest.mark.skipif(os.geteuid() != 0, reason="root's own rule")
@pytest.mark.parametrize("depth", ["the-file's-directory", "a-link-further-down"])
def test_root_never_writes_a_users_file_on_a_way_a_third_user_could_have_changed(
    home: UserHome, roots_dir: Path, depth: str
) -> None:
    """A directory higher up that a group may write to: any member could have moved the app's
    directory aside and put one of their own there (or a link of theirs to their own file)."""
    team = roots_dir / "team"
    team.mkdir()
    os.chown(team, 0, 4444)  # a group with members of its own, not the user's private one
    os.chmod(team, 0o2775)
    if depth == "the-file's-directory":
        swapped = team / "app"
        swapped.mkdir()
        os.chown(swapped, ATTACKER, ATTACKER)
        target = loot = swapped / ".env"
    else:
        swapped = team / "deep"
        swapped.mkdir()
        own = roots_dir / "attackers"
        own.mkdir()
        os.chown(own, ATTACKER, ATTACKER)
        (swapped / "sub").symlink_to(own)
        os.lchown(swapped / "sub", ATTACKER, ATTACKER)
        os.chown(swapped, ATTACKER, ATTACKER)
        target, loot = swapped / "sub" / ".env", own / ".env"
    loot.write_text("")
    os.chown(loot, ATTACKER, ATTACKER)
    os.chmod(loot, 0o600)
    assert_root_refuses_untouched(home, target, loot, str(team), "others may write to")


@pytest.mark.skipif(os.geteuid() != 0, reason="root's own rule")
def test_a_root_file_in_a_users_directory_is_checked_as_that_users(home: UserHome, shared_dir: Path) -> None:
    """The owner of a directory can put a file of theirs in place of root's at any moment: a root
    file in a user's directory under /tmp is on a way others control, as that user's would be."""
    app = shared_dir / "app"
    app.mkdir()
    os.chown(app, ATTACKER, ATTACKER)
    target = app / ".env"
    target.write_text("APP=1\n")
    os.chmod(target, 0o600)
    assert_root_refuses_untouched(home, target, target, str(target), "others may write to")


@pytest.mark.skipif(os.geteuid() != 0, reason="root's own rule")
def test_a_file_that_changes_hands_while_root_writes_it_is_checked_again(roots_dir: Path) -> None:
    """Checked when the path was resolved, the file may be another user's by the time it is read
    through the directory opened: every read checks its owner's way again."""
    team = roots_dir / "team"
    team.mkdir()
    os.chown(team, 0, 4444)  # a group with members of its own
    os.chmod(team, 0o2775)
    app = team / "app"  # root's, as is the file: checked, nothing in the way is anyone else's
    app.mkdir(mode=0o755)
    target = app / ".env"
    target.write_text("APP=1\n")
    os.chmod(target, 0o600)
    theirs = app / ".env.theirs"

    def hand_it_over() -> None:
        theirs.write_text("APP=2\n")
        os.chmod(theirs, 0o600)
        os.chown(theirs, ATTACKER, ATTACKER)
        os.rename(theirs, target)

    with pytest.raises(TargetError, match="others may write to"):
        write_target(EnvFileTarget(target), CREDENTIALS, roots_dir, lambda *_: False, hand_it_over)
    assert target.read_text() == "APP=2\n" and target.stat().st_uid == ATTACKER


@pytest.mark.skipif(os.geteuid() != 0, reason="root's own rule")
def test_a_dot_dot_after_a_missing_directory_fails_as_the_kernel_fails_it(
    home: UserHome, roots_dir: Path
) -> None:
    """`gone/..` does not exist for the kernel: the walk must not skip the link after it."""
    roots = roots_dir / "roots"
    roots.mkdir(mode=0o700)
    (roots / "base.env").write_text("ROOT=1\n")
    users = roots_dir / "users"
    users.mkdir()
    os.chown(users, ATTACKER, ATTACKER)
    (users / "lnk").symlink_to(roots)
    os.lchown(users / "lnk", ATTACKER, ATTACKER)
    home.write_config(env_files=f'["{users}/gone/../lnk/base.env"]')

    result = home.run("refresh", "bedrock")
    status = home.run("status")

    assert_one_line_failure(result, 78, "does not exist")
    assert "ROOT" not in status.stdout + status.stderr and "stale" not in status.stdout
    assert (roots / "base.env").read_text() == "ROOT=1\n"
