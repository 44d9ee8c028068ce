"""One target, one keeper: two daemons with different cache directories (the systemd unit and a
`credhelper run` with another XDG_CACHE_HOME, root and the user) never take turns rewriting the
same `.env`."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from credhelper.profile import Profile
from credhelper.targets.keeper import TargetClaims
from tests.conftest import UserHome
from tests.daemonproc import DaemonProcess, wait_for


def key_ids_seen(daemon: DaemonProcess, seconds: float) -> set[str | None]:
    seen: set[str | None] = set()
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        seen.add(daemon.env_key_id())
        time.sleep(0.02)
    return seen


@pytest.mark.slow(seconds=5)
def test_a_second_daemon_with_another_cache_leaves_the_first_ones_target_alone(home: UserHome) -> None:
    first = DaemonProcess(home)
    other_env = dict(home.env, CREDHELPER_CACHE_DIR=str(home.root / "other-cache"))
    second: DaemonProcess | None = None
    try:
        kept = first.wait_written()
        second = DaemonProcess(home, env=other_env)
        second.wait_running()

        assert key_ids_seen(first, 4.0) == {kept}, "the .env must stay with one keeper"
        wait_for(lambda: "kept by another credhelper daemon" in second.log, 30)
        assert f"pid {first.process.pid}" in second.log, "the second daemon must name the first"

        first.stop()
        taken_over = wait_for(lambda: (k := second.env_key_id()) != kept and k, 60)
        assert taken_over.startswith("ASIA"), "once the first daemon stops, the second keeps the target"
    finally:
        first.stop()
        if second is not None:
            assert second.stop() == 0
    assert "Traceback" not in first.log + (second.log if second else "")


def test_a_claim_is_released_when_its_target_leaves_the_configuration(tmp_path: Path) -> None:
    target = tmp_path / "app" / ".env"
    target.parent.mkdir()
    profile = Profile(
        "bedrock", "arn:aws:iam::123456789012:role/R", "credhelper-test", env_files=(str(target),)
    )
    mine, other = TargetClaims(), TargetClaims()
    try:
        assert mine.kept(profile) == (profile, None)
        kept, elsewhere = other.kept(profile)
        assert kept.env_files == () and kept.on_refresh == ()
        assert elsewhere is not None and f"pid {os.getpid()}" in str(elsewhere)

        mine.keep_only([])

        assert other.kept(profile) == (profile, None)
    finally:
        mine.release_all()
        other.release_all()


def test_two_daemons_may_keep_two_files_of_one_directory(home: UserHome) -> None:
    other_config = home.root / "other.toml"
    other_config.write_text(
        home.config_file.read_text().replace('env_files = ["~/app/.env"]', 'env_files = ["~/app/.env.b"]')
    )
    other_env = dict(
        home.env, CREDHELPER_CACHE_DIR=str(home.root / "other-cache"), CREDHELPER_CONFIG=str(other_config)
    )
    first = DaemonProcess(home)
    second = DaemonProcess(home, env=other_env)
    try:
        first.wait_written()
        written = wait_for(lambda: (k := second.env_key_id(home.app_env.parent / ".env.b")) and k, 30)
        assert written.startswith("ASIA"), "the second daemon must keep the file beside the first one's"
        assert "kept by another" not in second.log
    finally:
        first.stop()
        second.stop()


def test_claims_are_per_file_and_per_section(tmp_path: Path) -> None:
    mine, other = TargetClaims(), TargetClaims()
    try:
        assert mine.claim((str(tmp_path / ".env"), "")) is None
        assert other.claim((str(tmp_path / ".env.b"), "")) is None
        assert mine.claim((str(tmp_path / "credentials"), "a")) is None
        assert other.claim((str(tmp_path / "credentials"), "b")) is None
        assert other.claim((str(tmp_path / ".env"), "")) == os.getpid()
    finally:
        mine.release_all()
        other.release_all()
