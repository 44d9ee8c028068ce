"""The documentation tells the truth where a test can check it: every test and benchmark it names
exists, and the exit codes it lists are the ones the error classes carry."""

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
