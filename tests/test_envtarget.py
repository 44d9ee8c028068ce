"""Target file handling: lost updates, locking, atomicity, temp files, modes; the pure kinds."""

from __future__ import annotations

import io
import logging
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from dotenv.parser import Binding

from credhelper.credentials import Credentials
from credhelper.errors import LongTermKeyError, TargetBeingWritten, TargetError
from credhelper.formats import dotenv as dotenv_format
from credhelper.formats.dotenv import managed_values
from credhelper.formats.ini import parse_sections
from credhelper.formats.nodedotenv import NodeBinding
from credhelper.targets.credsection import CredentialsSectionTarget
from credhelper.targets.envfile import EnvFileTarget
from credhelper.targets.files import target_state, write_target
from tests.conftest import AGENT0_ENV_DEFAULT

CREDENTIALS = Credentials("ASIAIOSFODNN7EXAMPLE", "secret/EXAMPLE+1", "token/EXAMPLE=", 2_000_000_000.0)


def never_adopted(key_id: str, secret: str | None) -> bool:
    return False


def write(env: Path, lock_dir: Path, credentials: Credentials = CREDENTIALS, **kwargs: object) -> bool:
    return write_target(EnvFileTarget(env), credentials, lock_dir, never_adopted, **kwargs)  # type: ignore[arg-type]


def temp_files(directory: Path) -> list[Path]:
    return [p for p in directory.iterdir() if p.name.endswith(".tmp")]


def test_an_edit_made_while_credhelper_writes_is_merged_not_lost(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text("A=1\n")
    edits = ["B=2\n", "C=3\n"]

    def person_saves() -> None:
        if edits:
            with env.open("a") as handle:
                handle.write(edits.pop(0))

    assert write(env, tmp_path, before_rename=person_saves)
    text = env.read_text()
    assert text.startswith("A=1\nB=2\nC=3\n")
    assert managed_values(text)["AWS_ACCESS_KEY_ID"] == [CREDENTIALS.access_key_id]
    assert not temp_files(tmp_path)


def test_a_file_deleted_while_credhelper_writes_is_recreated(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text("A=1\n")
    write(env, tmp_path, before_rename=lambda: env.unlink(missing_ok=True))
    assert managed_values(env.read_text())["AWS_ACCESS_KEY_ID"] == [CREDENTIALS.access_key_id]
    assert "A=1" not in env.read_text()


def test_no_temp_file_survives_a_target_turning_into_a_directory_before_the_rename(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text("A=1\n")

    def replaced_by_a_directory() -> None:
        env.unlink()
        env.mkdir()

    with pytest.raises(TargetError, match="directory"):
        write(env, tmp_path, before_rename=replaced_by_a_directory)
    assert not temp_files(tmp_path), "a temp file holding the secret survived"


def test_a_long_term_key_is_never_overwritten(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    original = (
        "AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE\n"
        "AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n"
    )
    env.write_text(original)
    with pytest.raises(LongTermKeyError, match="adopt-keys") as caught:
        write(env, tmp_path)
    assert caught.value.exit_code == 78
    assert "AKIA…MPLE" in str(caught.value) and "AKIAIOSFODNN7EXAMPLE" not in str(caught.value)
    assert env.read_text() == original
    # Once the pair sits in a source profile, the .env may take temporary credentials.
    assert write_target(EnvFileTarget(env), CREDENTIALS, tmp_path, lambda key_id, secret: True)


def test_every_write_to_a_file_others_can_read_warns(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    env = tmp_path / ".env"
    for number in range(2):
        env.write_text("A=1\n")
        os.chmod(env, 0o644)
        with caplog.at_level(logging.WARNING, logger="credhelper"):
            assert write(env, tmp_path)
        assert caplog.text.count("readable by other users") == number + 1
    assert env.stat().st_mode & 0o777 == 0o644


def test_concurrent_writers_never_leave_a_mixed_set(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text("KEEP=1\n")
    sets = [Credentials(f"ASIA{i:016d}", f"secret{i:04d}", f"token{i:04d}", 2e9) for i in range(40)]
    errors: list[BaseException] = []

    def writer(chunk: list[Credentials]) -> None:
        try:
            for credentials in chunk:
                write(env, tmp_path, credentials)
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


# -- what a write costs --------------------------------------------------------------------


@pytest.mark.parametrize("bedrock_api_key", [False, True], ids=["credentials", "with a Bedrock key"])
def test_a_write_reads_the_file_once_and_its_new_text_once_with_each_reader(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bedrock_api_key: bool
) -> None:
    """DESIGN §11: a write costs a few dotenv reads of the file, not one read per question the
    guard and the merge ask (each read of a 1 MiB `.env` takes a good part of a second)."""
    read: dict[str, list[str]] = {"python-dotenv": [], "Node's dotenv": []}
    python_parse, node_parse = dotenv_format.parse_stream, dotenv_format.node_bindings

    def python_reading(stream: io.StringIO) -> Iterator[Binding]:
        read["python-dotenv"].append(stream.getvalue())
        return python_parse(stream)

    def node_reading(text: str) -> list[NodeBinding]:
        read["Node's dotenv"].append(text)
        return node_parse(text)

    monkeypatch.setattr(dotenv_format, "parse_stream", python_reading)
    monkeypatch.setattr(dotenv_format, "node_bindings", node_reading)
    env = tmp_path / ".env"
    env.write_text(AGENT0_ENV_DEFAULT)
    target = EnvFileTarget(env, region="us-east-1", bedrock_api_key=bedrock_api_key)
    assert write_target(target, CREDENTIALS, tmp_path, never_adopted)
    for reader, texts in read.items():
        before = texts.count(AGENT0_ENV_DEFAULT)
        assert texts == [AGENT0_ENV_DEFAULT, env.read_text()], (
            f"one write made {before} {reader} parses of the file and {len(texts) - before} of its new "
            "text where one of each does: a large .env takes that many reads to refresh"
        )


# -- the credentials-section kind, pure ------------------------------------------------------

SECTION = CredentialsSectionTarget(Path("/home/u/.aws/apps"), section="app")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("[a]\nx = 1\nstray\n", "line 3"),
        ("stray\n[a]\nx = 1\n", "line 1"),
        ("[a]\nx = 1\n[a]\ny = 2\n", "line 3"),
        ("[a]\nx = 1\nX = 2\n", "line 3"),
    ],
)
def test_a_credentials_file_read_with_less_than_certainty_is_refused(text: str, problem: str) -> None:
    with pytest.raises(TargetError, match=problem) as caught:
        SECTION.guard(text, never_adopted)
    assert caught.value.exit_code == 78
    with pytest.raises(TargetError):
        SECTION.render(text, CREDENTIALS)


def test_a_long_term_key_hides_from_no_guard_behind_a_stray_line() -> None:
    text = "[app]\naws_access_key_id = AKIAIOSFODNN7EXAMPLE\n\n[other]\nnot a setting\n"
    with pytest.raises(TargetError):
        SECTION.guard(text, never_adopted)
    clean = text.replace("not a setting", "x = 1")
    with pytest.raises(LongTermKeyError, match=r"\[app\] holds a long-term access key"):
        SECTION.guard(clean, never_adopted)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "[app]\n",
        "# c\n[default]\nregion = x\n",
        "[app]\naws_access_key_id = ASIAOLD\nregion = eu-west-1\n[next]\nx = 1",
        "[ app ]\naws_access_key_id = ASIAOLD\n",
        "[app]\r\naws_access_key_id=ASIAOLD\r\n",
        "[DEFAULT]\naws_access_key_id = ASIAOLD\n",
    ],
)
def test_the_section_render_sets_exactly_the_credentials(text: str) -> None:
    merged = SECTION.render(text, CREDENTIALS)
    before, after = parse_sections(text, "t"), parse_sections(merged, "t")
    assert after["app"] == {**before.get("app", {}), **CREDENTIALS.credentials_file_values()}
    assert {k: v for k, v in after.items() if k != "app"} == {k: v for k, v in before.items() if k != "app"}
    assert SECTION.state(merged, CREDENTIALS) == "current"


def test_a_value_continued_on_an_indented_line_is_not_rewritten_blindly() -> None:
    text = "[app]\naws_access_key_id = ASIAOLD\n  continued\n"
    with pytest.raises(TargetError, match="with certainty"):
        SECTION.render(text, CREDENTIALS)


def test_status_of_a_fifo_target_is_refused_without_blocking(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / ".env")
    state = target_state(EnvFileTarget(tmp_path / ".env"), CREDENTIALS)
    assert state.startswith("refused: ") and "FIFO" in state


def test_a_write_waits_for_a_process_writing_the_file_in_place_and_merges_its_text(tmp_path: Path) -> None:
    """An editor or `cp` writing in place truncates the file and writes an instant later: a rename
    in between would put the credentials over an empty file and send the person's text into the
    file replaced. The write waits for the writer to close the file, then merges its text."""
    env = tmp_path / ".env"
    env.write_text(AGENT0_ENV_DEFAULT)
    fd = os.open(env, os.O_WRONLY | os.O_TRUNC)

    def finish_writing() -> None:
        os.write(fd, (AGENT0_ENV_DEFAULT + "ADDED_BY_A_PERSON=yes\n").encode())
        os.close(fd)

    late = threading.Timer(0.5, finish_writing)
    late.start()
    try:
        assert write(env, tmp_path)
    finally:
        late.join()
    values = managed_values(env.read_text())
    assert "ADDED_BY_A_PERSON=yes" in env.read_text(), "the person's text went into the file replaced"
    assert values["AWS_ACCESS_KEY_ID"] == [CREDENTIALS.access_key_id]


def test_a_file_kept_open_for_writing_is_refused_untouched(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text(AGENT0_ENV_DEFAULT)
    fd = os.open(env, os.O_WRONLY | os.O_APPEND)
    try:
        with pytest.raises(TargetBeingWritten, match="open for writing"):
            write(env, tmp_path, writer_wait=0.1)
        assert env.read_text() == AGENT0_ENV_DEFAULT
        assert temp_files(tmp_path) == []
    finally:
        os.close(fd)
    assert write(env, tmp_path, writer_wait=0.1)  # closed: written at once
