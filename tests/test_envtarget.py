"""The `.env` writer's file handling: lost updates, locking, atomicity."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from credhelper.envfile import managed_values
from credhelper.envtarget import EnvTarget, LongTermKeyError, write_env_target

VALUES = {"AWS_ACCESS_KEY_ID": "ASIAIOSFODNN7EXAMPLE", "AWS_SECRET_ACCESS_KEY": "secret/EXAMPLE+1"}


def never_adopted(key_id: str, secret: str | None) -> bool:
    return False


def test_an_edit_made_while_credhelper_writes_is_merged_not_lost(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text("A=1\n")
    edits = ["B=2\n", "C=3\n"]

    def person_saves() -> None:
        if edits:
            with env.open("a") as handle:
                handle.write(edits.pop(0))

    assert write_env_target(EnvTarget(env), VALUES, tmp_path, never_adopted, before_rename=person_saves)
    text = env.read_text()
    assert text.startswith("A=1\nB=2\nC=3\n")
    assert managed_values(text)["AWS_ACCESS_KEY_ID"] == [VALUES["AWS_ACCESS_KEY_ID"]]
    assert not list(tmp_path.glob(".*.tmp"))


def test_a_file_deleted_while_credhelper_writes_is_recreated(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text("A=1\n")
    write_env_target(
        EnvTarget(env), VALUES, tmp_path, never_adopted, before_rename=lambda: env.unlink(missing_ok=True)
    )
    assert managed_values(env.read_text())["AWS_ACCESS_KEY_ID"] == [VALUES["AWS_ACCESS_KEY_ID"]]
    assert "A=1" not in env.read_text()


def test_a_long_term_key_is_never_overwritten(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    original = (
        "AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE\n"
        "AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n"
    )
    env.write_text(original)
    with pytest.raises(LongTermKeyError, match="adopt-keys") as caught:
        write_env_target(EnvTarget(env), VALUES, tmp_path, never_adopted)
    assert "AKIA…MPLE" in str(caught.value) and "AKIAIOSFODNN7EXAMPLE" not in str(caught.value)
    assert env.read_text() == original
    # Once the pair sits in a source profile, the .env may take temporary credentials.
    assert write_env_target(EnvTarget(env), VALUES, tmp_path, lambda key_id, secret: True)


def test_concurrent_writers_never_leave_a_mixed_set(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text("KEEP=1\n")
    sets = [
        {"AWS_ACCESS_KEY_ID": f"ASIA{i:016d}", "AWS_SECRET_ACCESS_KEY": f"secret{i:04d}"} for i in range(40)
    ]
    errors: list[BaseException] = []

    def writer(chunk: list[dict[str, str]]) -> None:
        try:
            for values in chunk:
                write_env_target(EnvTarget(env), values, tmp_path, never_adopted)
        except BaseException as error:  # surfaced below
            errors.append(error)

    threads = [threading.Thread(target=writer, args=(sets[i::4],)) for i in range(4)]
    for thread in threads:
        thread.start()
    seen_pairs = set()
    while any(t.is_alive() for t in threads):
        found = managed_values(env.read_text())
        if "AWS_ACCESS_KEY_ID" in found:
            seen_pairs.add((found["AWS_ACCESS_KEY_ID"][0][-4:], found["AWS_SECRET_ACCESS_KEY"][0][-4:]))
    for thread in threads:
        thread.join()
    assert not errors
    assert all(key == secret for key, secret in seen_pairs)
    assert env.read_text().startswith("KEEP=1\n")
