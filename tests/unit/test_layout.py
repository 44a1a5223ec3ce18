"""The house's layout holds (issue 15): no import circle, rooms import only what their
``__init__`` allows, no module over 500 lines unless its docstring says why."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("sync", "connectors", "mappings", "state")
MAX_LINES = 500
# room -> rooms of the project it must never import (its __init__ docstring says the same)
FORBIDDEN = {
    "mappings": ("sync", "state", "connectors"),
    "connectors": ("sync", "state", "mappings"),
    "state": ("sync", "connectors", "mappings"),
    "sync.pipeline": ("sync.operations", "sync.service", "sync.cli", "sync.web"),
    "sync.delivery": (
        "sync.pipeline",
        "sync.operations",
        "sync.service",
        "sync.cli",
        "sync.web",
    ),
    "sync.operations": ("sync.service", "sync.cli", "sync.web"),
    "sync.service": ("sync.cli",),
    "sync.web": ("sync.cli", "sync.service"),
}


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if "migrations" in path.parts:
                continue  # alembic's revisions: run by alembic, not imported by the package
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    """The project modules ``name`` imports (anywhere in the module, functions included)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, base] if base else parent)
            # `from package import module` depends on the module; `from module import name`
            # on the module.
            submodules = {f"{base}.{a.name}" for a in node.names} & MODULES.keys()
            targets.update(submodules)
            if len(submodules) < len(node.names):
                targets.add(base)
    return {t for t in targets if t in MODULES and t != name}


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def test_the_layout_is_found() -> None:
    assert "sync.pipeline.engine" in MODULES
    assert "sync.cli" in MODULES
    assert GRAPH["sync.cli"], "the CLI imports its command groups"


def test_no_import_circle() -> None:
    # Tarjan's strongly connected components: a component of more than one module is a circle.
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in GRAPH[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            # A package importing its own modules is how a package re-exports: not a circle
            # unless one of them imports the package back.
            if len(component) > 1:
                circles.append(sorted(component))

    for name in sorted(GRAPH):
        if name not in index:
            visit(name)
    assert circles == []


@pytest.mark.parametrize(("room", "forbidden"), sorted(FORBIDDEN.items()))
def test_rooms_import_only_what_they_may(room: str, forbidden: tuple[str, ...]) -> None:
    wrong = sorted(
        f"{name} -> {target}"
        for name, targets in GRAPH.items()
        if name == room or name.startswith(room + ".")
        for target in targets
        if any(target == f or target.startswith(f + ".") for f in forbidden)
    )
    assert wrong == []


def test_no_module_over_500_lines_unless_its_docstring_says_why() -> None:
    long = []
    for name, path in MODULES.items():
        text = path.read_text(encoding="utf-8")
        if text.count("\n") <= MAX_LINES:
            continue
        docstring = ast.get_docstring(ast.parse(text)) or ""
        if "longer than 500 lines" not in docstring:
            long.append(f"{name}: {text.count(chr(10))} lines")
    assert long == []
