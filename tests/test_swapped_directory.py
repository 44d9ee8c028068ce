"""Root keeping another user's file, while that user swaps a directory on the way for a symlink
to root's files: the write goes into the directory credhelper checked, or is refused, never
through the symlink."""

from __future__ import annotations

import ctypes
import os
import shutil
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from credhelper.credentials import Credentials
from credhelper.errors import CredhelperError, TargetError
from credhelper.formats.dotenv import managed_values
from credhelper.paths import target_lock_path
from credhelper.targets import files
from credhelper.targets.envfile import EnvFileTarget
from credhelper.targets.files import write_target
from tests.helpers import roots_own_directory

ATTACKER = 4242  # no account needed: the files are chowned to the uid
CREDENTIALS = Credentials("ASIAIOSFODNN7EXAMPLE", "secret/EXAMPLE+1", "token/EXAMPLE=", 2_000_000_000.0)

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0, reason="the attack is on root writing another user's file: needs root to set up"
)


def never_adopted(key_id: str, secret: str | None) -> bool:
    return False


@dataclass
class Scene:
    users: Path  # the attacker's directory: they may rename what it holds
    app: Path  # the directory of the attacker's .env, which root keeps
    roots: Path  # root's own directory, where the credentials must never land
    locks: Path

    @property
    def env(self) -> Path:
        return self.app / ".env"

    def swap_app_for_a_link_to_roots(self) -> Path:
        """What the attacker does: move their directory away, put a symlink to root's in its place."""
        moved = self.users / "app.moved"
        self.app.rename(moved)
        self.app.symlink_to(self.roots)
        os.lchown(self.app, ATTACKER, ATTACKER)
        return moved

    def write(
        self, credentials: Credentials = CREDENTIALS, before_rename: Callable[[], None] | None = None
    ) -> bool:
        return write_target(EnvFileTarget(self.env), credentials, self.locks, never_adopted, before_rename)


@pytest.fixture
def scene() -> Iterator[Scene]:
    base = roots_own_directory("credhelper-swap-")
    users, roots, locks = base / "users", base / "roots", base / "locks"
    app = users / "app"
    for directory in (users, app, roots, locks):
        directory.mkdir(mode=0o755)
    env = app / ".env"
    env.write_text("APP=1\n")
    os.chmod(env, 0o600)
    for path in (users, app, env):
        os.chown(path, ATTACKER, ATTACKER)
    yield Scene(users, app, roots, locks)
    shutil.rmtree(base)


def assert_roots_untouched(scene: Scene) -> None:
    assert sorted(os.listdir(scene.roots)) == [], "root's directory got a file through the user's symlink"


def assert_written_in(directory: Path) -> None:
    assert managed_values((directory / ".env").read_text())["AWS_ACCESS_KEY_ID"] == [
        CREDENTIALS.access_key_id
    ]
    assert (directory / ".env").stat().st_uid == ATTACKER
    assert not [name for name in os.listdir(directory) if name.endswith(".tmp")]


def test_a_directory_swapped_before_the_rename_gets_the_write_not_roots(scene: Scene) -> None:
    """The swap after the temp file is written: the old write renamed by path, through the link."""
    moved: list[Path] = []

    def swap_once() -> None:
        if not moved:
            moved.append(scene.swap_app_for_a_link_to_roots())

    assert scene.write(before_rename=swap_once)

    assert_roots_untouched(scene)
    assert_written_in(moved[0])


def test_a_directory_swapped_right_after_the_check_is_refused(
    scene: Scene, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The swap between the check of the path and its first use (the lock file's name is taken
    from the checked path just before)."""

    def swap_then_lock_path(cache_dir: str, digest: str) -> str:
        scene.swap_app_for_a_link_to_roots()
        return target_lock_path(cache_dir, digest)

    monkeypatch.setattr(files, "target_lock_path", swap_then_lock_path)

    with pytest.raises(TargetError, match="replaced while credhelper opened it"):
        scene.write()

    assert_roots_untouched(scene)
    assert (scene.users / "app.moved" / ".env").read_text() == "APP=1\n"


RENAME_EXCHANGE = 2
AT_FDCWD = -100


def exchange(libc: ctypes.CDLL, first: Path, second: Path) -> None:
    """renameat2(RENAME_EXCHANGE): both names swapped at once, neither ever missing."""
    if libc.renameat2(AT_FDCWD, os.fsencode(first), AT_FDCWD, os.fsencode(second), RENAME_EXCHANGE) != 0:
        error = ctypes.get_errno()
        raise OSError(error, os.strerror(error))


def test_a_directory_swapped_back_and_forth_never_sends_the_write_to_roots(scene: Scene) -> None:
    """No hook: another thread swaps the directory and a symlink to root's, as fast as it can,
    while root writes the file again and again."""
    libc = ctypes.CDLL(None, use_errno=True)
    if not hasattr(libc, "renameat2"):
        pytest.skip("the C library has no renameat2")
    decoy = scene.users / "decoy"
    decoy.symlink_to(scene.roots)
    os.lchown(decoy, ATTACKER, ATTACKER)
    stop = threading.Event()
    swaps = [0]

    def attacker() -> None:
        while not stop.is_set():
            exchange(libc, scene.app, decoy)
            swaps[0] += 1

    thread = threading.Thread(target=attacker)
    thread.start()
    written = refused = 0
    try:
        for number in range(300):
            credentials = Credentials(f"ASIA{number:016d}", "secret/EXAMPLE+1", "token/EXAMPLE=", 2e9)
            try:
                scene.write(credentials)
                written += 1
            except CredhelperError:  # refused: the directory was not the one checked
                refused += 1
            if os.listdir(scene.roots):
                break
    finally:
        stop.set()
        thread.join()

    assert_roots_untouched(scene)
    if scene.app.is_symlink():
        exchange(libc, scene.app, decoy)
    assert not [name for name in os.listdir(scene.app) if name.endswith(".tmp")]
    assert swaps[0] > 0 and written + refused > 0
