"""The layout shows the design: no import circle, no module importing a layer above its own
(imports inside functions count; what a lower layer needs of a higher one it gets through
`credhelper.interfaces`), no feature importing another, no module over 400 lines, and the dev tools
outside the package (tests/test_install.py builds the wheel)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "credhelper"
MAX_LINES = 400

# The layers, lowest first (docs/architecture.md draws them): a module imports from its own layer
# or those below it. A name stands for the module or the package of that name.
LAYERS = (
    ("leaves", ("errors", "paths", "credentials", "windows", "interfaces", "endpointurl")),
    ("process leaves", ("signals", "wakeup", "sdnotify", "logsetup")),
    ("pure core", ("settings", "profile", "policy", "schedule", "formats", "rotation")),
    ("primitives", ("fileio", "children", "configfile", "config", "unit")),
    ("shells", ("cache", "keystore", "sts", "iam", "mfa", "refresher", "hooks", "targets", "endpoint")),
    ("operations", ("supply", "fastpath", "status", "adopt", "keyringadopt", "keysource", "rotate")),
    ("features", ("daemon", "appexec", "doctor", "init", "containers")),
    ("commands", ("cli", "clihelp", "main", "__main__")),
)
FEATURES = dict(LAYERS)["features"]


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def imports_of(name: str) -> set[str]:
    """Every credhelper module `name` imports, at any depth of its code (TYPE_CHECKING blocks excepted)."""
    path = MODULES[name]
    tree = ast.parse(path.read_text())
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            node.body = []  # annotations only: never imported at run time
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                found.add(candidate if candidate in MODULES else base)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {module for module in found if module in MODULES and module != name}


GRAPH = {name: imports_of(name) for name in MODULES}


def cycles() -> list[list[str]]:
    """Every strongly connected group of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in GRAPH[node]:
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in GRAPH:
        if node not in index:
            visit(node)
    return found


def layer_of(name: str) -> int | None:
    """The index in LAYERS of module `name`; None for the package itself and for a module no layer names."""
    short = name.removeprefix("credhelper").lstrip(".")
    for index, (_, members) in enumerate(LAYERS):
        if any(short == member or short.startswith(f"{member}.") for member in members):
            return index
    return None


def test_every_module_has_a_layer() -> None:
    unplaced = [name for name in MODULES if name != "credhelper" and layer_of(name) is None]
    assert unplaced == [], "modules no layer names: add each to LAYERS (and to docs/architecture.md)"


def test_no_module_imports_a_layer_above_its_own() -> None:
    upward = [
        f"{name} ({LAYERS[layer_of(name) or 0][0]}) imports {other} ({LAYERS[layer_of(other) or 0][0]})"
        for name, imported in GRAPH.items()
        for other in sorted(imported)
        if (layer_of(other) or 0) > (layer_of(name) or 0)
    ]
    assert upward == [], "declare what the lower layer needs in credhelper/interfaces.py instead"


def test_no_feature_imports_another() -> None:
    def feature(name: str) -> str | None:
        part = name.split(".")[1] if "." in name else ""
        return part if part in FEATURES else None

    across = [
        f"{name} imports {other}"
        for name, imported in GRAPH.items()
        for other in sorted(imported)
        if feature(name) and feature(other) and feature(name) != feature(other)
    ]
    assert across == [], "what two features share belongs in a layer below both"


def test_the_architecture_map_draws_these_layers() -> None:
    text = (PACKAGE.parent / "docs" / "architecture.md").read_text()
    drawn = [
        (cells[0], tuple(name.strip(" `") for name in cells[1].split(",")))
        for line in text.splitlines()
        if line.startswith("| ") and len(cells := [cell.strip() for cell in line.strip("|").split("|")]) == 3
        and cells[0] in dict(LAYERS)
    ]
    assert drawn == list(LAYERS), "docs/architecture.md section 2 and LAYERS disagree"


def test_no_import_circle() -> None:
    assert cycles() == [], "modules that import each other, directly or around a circle"


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_module_over_400_lines(name: str) -> None:
    lines = len(MODULES[name].read_text().splitlines())
    assert lines <= MAX_LINES, f"{MODULES[name].name}: {lines} lines; split it by what it does"
