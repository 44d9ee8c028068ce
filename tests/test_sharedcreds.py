"""The credentials-section kind, pure: it rewrites what it can read with certainty, and only that."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from credhelper.credentials import Credentials
from credhelper.errors import TargetError
from credhelper.formats.ini import parse_sections, set_section
from credhelper.targets.credsection import CredentialsSectionTarget

CREDENTIALS = Credentials("ASIAIOSFODNN7EXAMPLE", "secret/EXAMPLE+1", "token/EXAMPLE=", 2_000_000_000.0)
TARGET = CredentialsSectionTarget(Path("/home/u/.aws/apps"), section="app")
NEVER_ADOPTED = lambda key_id, secret: False  # noqa: E731

KEY = st.sampled_from(["aws_access_key_id", "aws_secret_access_key", "aws_session_token", "region", "x"])
VALUE = st.text(alphabet="abcXYZ019/+=.-", max_size=12)
SETTING = st.tuples(KEY, st.sampled_from([" = ", "=", " ="]), VALUE).map("".join)
OTHER_LINE = st.sampled_from(["", "# a comment", "; another", "   "])
BODY = st.tuples(
    st.lists(SETTING, max_size=4, unique_by=lambda line: line.partition("=")[0].strip()),
    st.lists(OTHER_LINE, max_size=2),
    st.randoms(use_true_random=False),
).map(lambda t: t[2].sample(t[0] + t[1], len(t[0]) + len(t[1])))
SECTION = st.tuples(st.sampled_from(["app", "default", "work", "DEFAULT", " app "]), BODY)
FILE = st.tuples(
    st.lists(OTHER_LINE, max_size=2),
    st.lists(SECTION, max_size=4, unique_by=lambda section: section[0]),
    st.sampled_from(["\n", "\r\n"]),
    st.booleans(),
    st.sampled_from(["", "a stray line", "  indented continuation", "[app]", "AWS_ACCESS_KEY_ID = x"]),
)


def build(parts: tuple[list[str], list[tuple[str, list[str]]], str, bool, str]) -> str:
    head, sections, eol, final_eol, extra = parts
    lines = list(head)
    for name, body in sections:
        lines += [f"[{name}]", *body]
    if extra:
        lines.append(extra)
    return eol.join(lines) + (eol if final_eol and lines else "")


def other_sections_text(text: str) -> list[str]:
    """The lines outside [app], as written."""
    kept, inside = [], False
    lines = re.split(r"\r\n|\n", text)
    if lines[-1] == "":
        lines.pop()
    for line in lines:
        header = re.match(r"^\s*\[(.+)\]", line)
        if header:
            inside = header.group(1) == "app"
        if not inside:
            kept.append(line)
    return kept


def in_order(part: list[str], whole: list[str]) -> bool:
    rest = iter(whole)
    return all(line in rest for line in part)


@pytest.mark.slow(seconds=6)
@settings(max_examples=400, deadline=None)
@given(FILE.map(build))
def test_the_section_is_set_exactly_or_the_file_is_refused(text: str) -> None:
    try:
        before = parse_sections(text, "t")
    except TargetError:
        for refused in (lambda: TARGET.guard(text, NEVER_ADOPTED), lambda: TARGET.render(text, CREDENTIALS)):
            try:
                refused()
            except TargetError:
                continue
            raise AssertionError("a file that does not parse was accepted") from None
        return
    try:
        merged = TARGET.render(text, CREDENTIALS)
    except TargetError as error:
        assert "with certainty" in str(error)
        return
    after = parse_sections(merged, "t")
    assert after["app"] == {**before.get("app", {}), **CREDENTIALS.credentials_file_values()}
    assert {k: v for k, v in after.items() if k != "app"} == {k: v for k, v in before.items() if k != "app"}
    assert in_order(other_sections_text(text), other_sections_text(merged))  # every line outside stays
    assert TARGET.render(merged, CREDENTIALS) == merged


def test_a_byte_order_mark_is_refused_as_botocore_cannot_read_the_file() -> None:
    """botocore opens the file as plain UTF-8: `\\ufeff[app]` is no section header to it, so the
    guard refuses (78) instead of writing credentials no SDK would read; the section writer
    behind it keeps the mark like every other byte."""
    text = "\ufeff[app]\naws_access_key_id = ASIAIOSFODNN7EXAMPLE\n"
    with pytest.raises(TargetError, match="line 1: a byte-order mark before the first"):
        TARGET.guard(text, NEVER_ADOPTED)
    with pytest.raises(TargetError):
        TARGET.render(text, CREDENTIALS)
    assert set_section("\ufeff[app]\nregion = x\n", "app", {"region": "y"}).startswith(
        "\ufeff[app]\nregion = x\n"
    )
