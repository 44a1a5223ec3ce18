"""The house's layout holds (issue 15): no import circle, rooms import only what their
``__init__`` allows, no module over 500 lines unless its docstring says why. And (issue 24):
no private name (``_x``) is imported from another module, and no class in ``sync`` or
``state`` inherits from another module's private class; ``bench`` is held to the same rules,
and nothing of the service imports it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("sync", "connectors", "mappings", "state", "bench")
MAX_LINES = 500
# room -> rooms of the project it must never import (its __init__ docstring says the same)
FORBIDDEN = {
    "mappings": ("sync", "state", "connectors", "bench"),
    "connectors": ("sync", "state", "mappings", "bench"),
    "state": ("sync", "connectors", "mappings", "bench"),
    "sync": ("bench",),  # the benchmark measures the service; the service never needs it
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


def _imported_from(node: ast.ImportFrom, package: str) -> str:
    """The module a ``from ... import`` names, relative imports resolved from ``package``."""
    base = node.module or ""
    if node.level:
        parent = package.split(".")[: len(package.split(".")) - node.level + 1]
        base = ".".join([*parent, base] if base else parent)
    return base


def _imports(name: str, path: Path) -> set[str]:
    """The project modules ``name`` imports (anywhere in the module, functions included)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _imported_from(node, package)
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
    assert "bench.run" in MODULES
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


# -- private names (issue 24) ------------------------------------------------------------------


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _outside_its_package(importer: str, module: str) -> bool:
    """A private module (``connectors._http``) is its package's own: any module below the
    package may import it, none outside."""
    parts = module.split(".")
    for depth, part in enumerate(parts):
        owner = ".".join(parts[:depth])
        if _private(part) and not (importer == owner or importer.startswith(owner + ".")):
            return True
    return False


class _PrivateUse(ast.NodeVisitor):
    """What a module takes that is private to another one: ``from m import _x``, ``m._x`` on
    a module it imported, a private module from outside its package; and the classes that
    inherit from a private class imported from elsewhere."""

    def __init__(self, name: str, is_package: bool, modules: set[str]) -> None:
        self.name = name
        self.package = name if is_package else name.rpartition(".")[0]
        self.modules = modules
        self.bound: dict[str, str] = {}  # a local name -> the project module it stands for
        self.private: dict[str, str] = {}  # a private name imported -> the module it came from
        self.uses: list[str] = []
        self.bases: list[str] = []

    def _project(self, module: str) -> bool:
        return module.split(".")[0] in PACKAGES

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if not self._project(alias.name):
                continue
            if _outside_its_package(self.name, alias.name):
                self.uses.append(f"{self.name}:{node.lineno} imports {alias.name}")
            if alias.asname:
                self.bound[alias.asname] = alias.name
            else:
                self.bound[alias.name.split(".")[0]] = alias.name.split(".")[0]

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        base = _imported_from(node, self.package)
        if not self._project(base):
            return
        if _outside_its_package(self.name, base):
            self.uses.append(f"{self.name}:{node.lineno} imports from {base}")
        for alias in node.names:
            module = f"{base}.{alias.name}"
            if module in self.modules:  # `from package import module`
                if _outside_its_package(self.name, module):
                    self.uses.append(f"{self.name}:{node.lineno} imports {module}")
                self.bound[alias.asname or alias.name] = module
            elif _private(alias.name):
                self.uses.append(f"{self.name}:{node.lineno} imports {alias.name} from {base}")
                self.private[alias.asname or alias.name] = base

    def _module_of(self, node: ast.expr) -> str | None:
        """The project module an expression like ``state.users`` or ``users`` names."""
        if isinstance(node, ast.Name):
            return self.bound.get(node.id)
        if isinstance(node, ast.Attribute):
            outer = self._module_of(node.value)
            return f"{outer}.{node.attr}" if outer is not None else None
        return None

    def check(self, tree: ast.Module) -> None:
        self.visit(tree)  # the imports first: a name may be used above its import
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and _private(node.attr):
                module = self._module_of(node.value)
                if module in self.modules and module != self.name:
                    self.uses.append(f"{self.name}:{node.lineno} uses {module}.{node.attr}")
            if isinstance(node, ast.ClassDef):
                for base in node.bases:
                    if isinstance(base, ast.Name) and base.id in self.private:
                        where = self.private[base.id]
                        self.bases.append(
                            f"{self.name}:{node.lineno} {node.name}({base.id} of {where})"
                        )
                    elif isinstance(base, ast.Attribute) and _private(base.attr):
                        where = self._module_of(base.value) or ast.unparse(base.value)
                        self.bases.append(
                            f"{self.name}:{node.lineno} {node.name}({base.attr} of {where})"
                        )


def _private_use(name: str, source: str, *, is_package: bool = False) -> _PrivateUse:
    found = _PrivateUse(name, is_package, set(MODULES))
    found.check(ast.parse(source))
    return found


USES = {
    name: _private_use(
        name, path.read_text(encoding="utf-8"), is_package=path.name == "__init__.py"
    )
    for name, path in MODULES.items()
}


def test_no_private_name_is_imported_across_modules() -> None:
    # A name with a leading underscore is its module's own: another module that needs it
    # needs a public name (or the code moves to where it is used).
    wrong = sorted(use for found in USES.values() for use in found.uses)
    assert wrong == []


def test_no_class_inherits_a_private_class_of_another_module() -> None:
    # A class built from other modules' private mixins is read in several files at once:
    # collaborators are passed in, each a public class named for what it does.
    wrong = sorted(
        base
        for name, found in USES.items()
        if name.split(".")[0] in ("sync", "state")
        for base in found.bases
    )
    assert wrong == []


@pytest.mark.parametrize(
    ("name", "source", "uses", "bases"),
    [
        ("state.x", "from state.store.claims import _Claims\nclass S(_Claims): ...", 1, 1),
        ("state.store.x", "from .claims import _Claims as C\nclass S(C): ...", 1, 1),
        ("state.x", "from state.store import claims\nclass S(claims._Claims): ...", 1, 1),
        ("state.x", "import state.store.claims\nx = state.store.claims._Claims", 1, 0),
        ("state.x", "from state import store\nx = store._x", 1, 0),
        ("state.x", "from connectors._http import send", 1, 0),  # another package's module
        ("state.x", "from connectors import _http", 1, 0),
        ("connectors.x", "from connectors import _http\nx = _http.send", 0, 0),  # its own
        ("connectors", "from connectors._http import send", 0, 0),
        ("state.x", "class _Mine: ...\nclass S(_Mine): ...\nx = _Mine._y", 0, 0),
        ("state.x", "from state.store.claims import Claims\nx = Claims._y", 0, 0),  # a class's
        ("state.x", "from httpx import _types\nimport os\nx = os._exit", 0, 0),  # not ours
    ],
)
def test_the_private_name_check_finds_what_it_should(
    name: str, source: str, uses: int, bases: int
) -> None:
    found = _private_use(name, source, is_package=name.count(".") == 0)
    assert (len(found.uses), len(found.bases)) == (uses, bases), found.uses + found.bases
