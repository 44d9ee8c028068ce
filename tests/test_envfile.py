"""The `.env` merge: every byte a person wrote stays; readers see the new values."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from dotenv import dotenv_values
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from credhelper.formats.dotenv import (
    MANAGED_KEYS,
    long_term_key_ids,
    managed_values,
    merge_env,
    merge_env_verified,
)
from tests.conftest import AGENT0_ENV_DEFAULT, UserHome
from tests.nodecheck import node_dotenv_parse

NEW = {
    "AWS_ACCESS_KEY_ID": "ASIAIOSFODNN7EXAMPLE",
    "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "AWS_SESSION_TOKEN": "FwoGZXIvYXdzEXAMPLE//////////wEaDEXAMPLETOKEN+/abc==",
    "AWS_CREDENTIAL_EXPIRATION": "2026-11-25T20:00:00Z",
    "AWS_REGION": "us-east-1",
}


def python_read(text: str) -> dict[str, str | None]:
    return dict(dotenv_values(stream=io.StringIO(text)))


def non_managed_lines(text: str) -> list[str]:
    return [
        line
        for line in text.splitlines(keepends=True)
        if not any(line.lstrip().removeprefix("export ").lstrip().startswith(k) for k in MANAGED_KEYS)
    ]


def test_agent0_template_keeps_every_other_line_and_gains_the_credentials() -> None:
    merged = merge_env(AGENT0_ENV_DEFAULT, NEW)
    assert non_managed_lines(merged)[: len(non_managed_lines(AGENT0_ENV_DEFAULT))] == non_managed_lines(
        AGENT0_ENV_DEFAULT
    )
    values = python_read(merged)
    for key, value in NEW.items():
        assert values[key] == value
    assert values["CLIENT_SECRET"] == "s3cr3t with spaces"
    assert "# AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE\n" in merged  # commented example untouched


def test_in_place_keys_stay_where_they_were_and_missing_ones_are_appended() -> None:
    text = "A=1\nAWS_ACCESS_KEY_ID=\nB=2\nAWS_REGION=eu-west-1\n"
    merged = merge_env(text, NEW)
    lines = merged.splitlines()
    assert lines[:4] == [
        "A=1",
        f"AWS_ACCESS_KEY_ID={NEW['AWS_ACCESS_KEY_ID']}",
        "B=2",
        "AWS_REGION=us-east-1",
    ]
    assert lines[4:] == [
        f"AWS_SECRET_ACCESS_KEY={NEW['AWS_SECRET_ACCESS_KEY']}",
        f"AWS_SESSION_TOKEN={NEW['AWS_SESSION_TOKEN']}",
        f"AWS_CREDENTIAL_EXPIRATION={NEW['AWS_CREDENTIAL_EXPIRATION']}",
    ]


def test_duplicates_export_prefix_comments_and_spacing() -> None:
    text = (
        "export AWS_ACCESS_KEY_ID=old # mine\n"
        "AWS_ACCESS_KEY_ID = 'older'\n"
        '  AWS_SESSION_TOKEN="x"  # keep\n'
    )
    merged = merge_env(text, NEW)
    assert merged.splitlines()[:3] == [
        f"export AWS_ACCESS_KEY_ID={NEW['AWS_ACCESS_KEY_ID']} # mine",
        f"AWS_ACCESS_KEY_ID = {NEW['AWS_ACCESS_KEY_ID']}",
        f"  AWS_SESSION_TOKEN={NEW['AWS_SESSION_TOKEN']}  # keep",
    ]
    assert managed_values(merged)["AWS_ACCESS_KEY_ID"] == [NEW["AWS_ACCESS_KEY_ID"]] * 2


def test_crlf_stays_crlf_and_missing_final_newline_stays_missing() -> None:
    text = "A=1\r\nAWS_ACCESS_KEY_ID=\r\nB=2"
    merged = merge_env(text, NEW)
    assert "\n" not in merged.replace("\r\n", "")
    assert not merged.endswith(("\n", "\r"))
    assert merged.startswith(f"A=1\r\nAWS_ACCESS_KEY_ID={NEW['AWS_ACCESS_KEY_ID']}\r\nB=2\r\n")


def test_a_byte_order_mark_stays(tmp_path: Path) -> None:
    """python-dotenv reads past a leading BOM and Node's dotenv takes it as white space: both read
    a key right after it, and the merge keeps the mark like every other byte."""
    text = "\ufeff# my app\nCOOKIE_SECRET=abc\nAWS_ACCESS_KEY_ID=\n"
    merged = merge_env_verified(text, NEW)
    assert merged == "\ufeff# my app\nCOOKIE_SECRET=abc\n" + "".join(f"{k}={NEW[k]}\n" for k in NEW)
    before_key = "\ufeffAWS_ACCESS_KEY_ID=old\nB=1"
    assert long_term_key_ids("\ufeffAWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE\n") == ["AKIAIOSFODNN7EXAMPLE"]
    rewritten = merge_env_verified(before_key, NEW)
    assert rewritten.startswith("\ufeffAWS_ACCESS_KEY_ID=ASIAIOSFODNN7EXAMPLE\nB=1\n"), rewritten
    assert merge_env_verified("\ufeff", NEW).startswith("\ufeffAWS_ACCESS_KEY_ID=")
    paths = []
    for name, content in {"comment.env": merged, "key.env": rewritten}.items():
        paths.append(tmp_path / name)
        paths[-1].write_bytes(content.encode())
    for path, node_values in zip(paths, node_dotenv_parse(paths), strict=True):
        python_values = python_read(path.read_text())
        for key, value in NEW.items():
            assert python_values[key] == node_values[key] == value, (path.name, key)
        assert python_values.get("COOKIE_SECRET", python_values.get("B")) in ("abc", "1")


def test_multiline_value_that_mentions_a_managed_key_is_not_touched() -> None:
    text = 'CERT="-----BEGIN-----\nAWS_ACCESS_KEY_ID=inside\n-----END-----"\n'
    merged = merge_env(text, NEW)
    assert merged.startswith(text)
    assert python_read(merged)["CERT"] == "-----BEGIN-----\nAWS_ACCESS_KEY_ID=inside\n-----END-----"


def test_merge_is_idempotent() -> None:
    once = merge_env(AGENT0_ENV_DEFAULT, NEW)
    assert merge_env(once, NEW) == once


def test_long_term_keys_are_found_and_temporary_ones_are_not() -> None:
    assert long_term_key_ids("AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE\n") == ["AKIAIOSFODNN7EXAMPLE"]
    assert long_term_key_ids("AWS_ACCESS_KEY_ID=ASIAIOSFODNN7EXAMPLE\n") == []
    assert long_term_key_ids("# AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE\n") == []


MANAGED_LINE = re.compile(r"^\s*(?:export\s+)?(?:{})\s*(?:=|$)".format("|".join(MANAGED_KEYS)))


def person_lines(text: str) -> list[str]:
    """The lines that do not bind a managed key, without their line endings."""
    lines = re.split(r"\r\n|\n|\r", text)
    if lines and lines[-1] == "":
        lines.pop()  # what follows a final line ending
    return [line for line in lines if not MANAGED_LINE.match(line)]


# Any text at all: lines that are not managed bindings survive byte for byte and in order,
# and python-dotenv reads the new values back.
@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=400))
def test_any_text_keeps_its_other_lines(text: str) -> None:
    merged = merge_env(text, NEW)
    assert merge_env(merged, NEW) == merged
    assert person_lines(merged) == person_lines(text)
    assert merged.startswith(text[: len(text) - len(text.lstrip())])  # leading bytes kept
    values = python_read(merged)
    for key, value in NEW.items():
        assert values[key] == value


KEY = st.sampled_from(["A", "COOKIE_SECRET", "CLIENT_ID", "AUTH_SERVER", *MANAGED_KEYS])
PLAIN = st.text(alphabet="abcXYZ019_-./:@+= ", max_size=20).map(str.strip)
VALUE = st.one_of(
    PLAIN,
    PLAIN.map(lambda v: f"'{v}'"),
    PLAIN.map(lambda v: f'"{v}"'),
    st.just('"line one\nline two"'),
)
LINE = st.one_of(
    st.tuples(
        st.sampled_from(["", "export ", "  "]),
        KEY,
        st.sampled_from(["=", " = ", "= "]),
        VALUE,
        st.sampled_from(["", " # note"]),
    ).map("".join),
    st.sampled_from(["", "# a comment", "# AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE", "   "]),
)
ENV_TEXT = st.tuples(st.lists(LINE, max_size=12), st.sampled_from(["\n", "\r\n"]), st.booleans()).map(
    lambda t: t[1].join(t[0]) + (t[1] if t[2] and t[0] else "")
)


@pytest.mark.slow(seconds=8)  # a Node process for each of 25 examples
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ENV_TEXT)
def test_python_and_node_dotenv_read_identical_values(tmp_path: Path, text: str) -> None:
    merged = merge_env(text, NEW)
    target = tmp_path / "merged.env"
    target.write_bytes(merged.encode())
    (node_values,) = node_dotenv_parse([target])
    python_values = python_read(merged)
    for key, value in NEW.items():
        assert python_values[key] == value
        assert node_values[key] == value
    # The lines a person wrote read back the same after the merge as before it.
    before = python_read(text)
    for key, value in before.items():
        if key not in NEW:
            assert python_values[key] == value


@settings(max_examples=100, deadline=None)
@given(ENV_TEXT)
def test_a_byte_order_mark_changes_nothing_else(text: str) -> None:
    assert merge_env("\ufeff" + text, NEW) == "\ufeff" + merge_env(text, NEW)


def test_a_refresh_keeps_the_byte_order_mark_of_the_env(home: UserHome) -> None:
    home.app_env.write_bytes(b"\xef\xbb\xbf# my app\nCOOKIE_SECRET=abc\nAWS_ACCESS_KEY_ID=\n")
    result = home.run("refresh", "bedrock")
    assert result.returncode == 0, result.stderr
    data = home.app_env.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf# my app\nCOOKIE_SECRET=abc\nAWS_ACCESS_KEY_ID=ASIA"), data[:40]
