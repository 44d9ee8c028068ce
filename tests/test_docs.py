"""The documentation tells the truth where a test can check it: every test and benchmark it names
exists, every promise in the guarantees names one, every link between the documents leads somewhere,
the README stays short enough to read, and the exit codes it lists are the ones the error classes
carry."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from credhelper import errors

REPO = Path(__file__).resolve().parent.parent
DOCUMENTS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
NAMED = re.compile(r"`((?:tests/)?test_\w+\.py)?(?:::(test_\w+))?(?:\[[^\]`]*\])?`|`(benchmarks/\w+\.py)`")


def named_tests(text: str) -> list[tuple[str, str | None]]:
    """(test file, test function or None) for every test a document names; `::name` alone
    continues the file named before it."""
    found: list[tuple[str, str | None]] = []
    current = ""
    for match in NAMED.finditer(text):
        file, function, benchmark = match.groups()
        if benchmark:
            found.append((benchmark, None))
            continue
        if file:
            current = file if file.startswith("tests/") else f"tests/{file}"
        if file or function:
            found.append((current, function))
    return found


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda path: path.name)
def test_every_test_a_document_names_exists(document: Path) -> None:
    text = document.read_text()
    missing = []
    for file, function in named_tests(text):
        path = REPO / file
        if not file or not path.is_file():
            missing.append(file or f"::{function} with no file before it")
        elif function and not re.search(rf"^def {function}\(", path.read_text(), re.M):
            missing.append(f"{file}::{function}")
    assert not missing, f"{document.name} names tests that do not exist: {missing}"


def test_every_promise_in_the_guarantees_names_a_test_or_benchmark() -> None:
    rows = [
        line
        for line in (REPO / "docs" / "guarantees.md").read_text().splitlines()
        if line.startswith("| ") and not line.startswith("| promise |")
    ]
    assert len(rows) >= 20, f"docs/guarantees.md lists {len(rows)} promises; its table is gone or cut short"
    unproven = [row.split(" | ")[0].strip("| ") for row in rows if not named_tests(row.split(" | ", 1)[1])]
    assert not unproven, f"docs/guarantees.md has promises that name no test or benchmark: {unproven}"


README_MOST_LINES = 300


def test_the_readme_stays_short_enough_to_read() -> None:
    lines = len((REPO / "README.md").read_text().splitlines())
    assert lines <= README_MOST_LINES, (
        f"README.md has {lines} lines, more than {README_MOST_LINES}: move maintainers' detail under docs/"
    )


FENCE = re.compile(r"^ *```.*?^ *```", re.M | re.S)
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def anchors(text: str) -> set[str]:
    """The anchors GitHub gives the headings of a Markdown text (code blocks skipped)."""
    found: set[str] = set()
    for heading in re.findall(r"^#{1,6} +(.+?) *$", FENCE.sub("", text), re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
        anchor, n = slug, 0
        while anchor in found:
            n += 1
            anchor = f"{slug}-{n}"
        found.add(anchor)
    return found


def leads_somewhere(document: Path, target: str) -> bool:
    """A relative link (`docs/x.md`, `x.md#a-heading`, `#a-heading`) names a file that exists and,
    with an anchor, a heading of that file."""
    path, _, anchor = target.partition("#")
    linked = (document.parent / path).resolve() if path else document
    if not linked.exists():
        return False
    return not anchor or (linked.suffix == ".md" and anchor in anchors(linked.read_text()))


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda path: path.name)
def test_every_link_between_the_documents_leads_to_a_file_and_heading(document: Path) -> None:
    text = re.sub(r"`[^`\n]*`", "", FENCE.sub("", document.read_text()))
    relative = [target for target in LINK.findall(text) if not re.match(r"[a-z]+:", target)]
    broken = [target for target in relative if not leads_somewhere(document, target)]
    assert not broken, f"{document.name} links to files or headings that do not exist: {broken}"


def test_the_architecture_lists_every_exit_code_the_errors_carry() -> None:
    text = (REPO / "docs" / "architecture.md").read_text()
    carried = {cls.exit_code for cls in vars(errors).values() if isinstance(cls, type)}
    listed = {int(code) for code in re.findall(r"\((\d{1,3})\)", text.split("### 3.4")[1].split("\n## ")[0])}
    assert carried <= listed, f"docs/architecture.md section 3.4 omits exit codes {sorted(carried - listed)}"


def test_every_module_of_the_package_is_on_the_architecture_map() -> None:
    text = (REPO / "docs" / "architecture.md").read_text()
    modules = sorted(
        p.name for p in (REPO / "credhelper").glob("*.py") if p.name not in ("__init__.py", "__main__.py")
    )
    missing = [name for name in modules if f"`{name}`" not in text]
    assert not missing, f"docs/architecture.md does not place {missing}"
