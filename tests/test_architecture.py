"""The package's shape: no import cycles between rankwise's modules, and ``import rankwise`` stays light.

The import graph is read from the source with :mod:`ast` (nothing is imported): every ``import`` and
``from ... import`` of a ``rankwise`` module, at module level or inside a function, with relative imports resolved;
imports under ``if TYPE_CHECKING:`` are left out (they never run). ``from rankwise.pkg import name`` counts as an
import of ``rankwise.pkg.name`` when that is a module, else of ``rankwise.pkg``. A ``"rankwise.module:attribute"``
string counts as an import of that module (the registry imports its backends' factories that way). A package's
``__init__`` is the node of the package itself; the lazy-name tables of ``__init__`` modules are not edges (they only
run when a name is first used from outside).
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
_FACTORY = re.compile(r"(rankwise(?:\.\w+)+):\w+")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    """Every module of ``src/rankwise`` by dotted name."""
    return {module_name(p): p for p in sorted((SRC / "rankwise").rglob("*.py"))}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _import_nodes(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement that can run: module level and inside functions, not under ``if TYPE_CHECKING:``."""
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        elif isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
        else:
            stack.extend(ast.iter_child_nodes(node))


def _absolute(node: ast.ImportFrom, name: str, is_package: bool) -> str:
    """The module ``from <node.module> import ...`` reads, with ``.``/``..`` resolved against ``name``."""
    if node.level == 0:
        return node.module or ""
    package = name.split(".") if is_package else name.split(".")[:-1]
    base = package[: len(package) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def _factory_targets(tree: ast.AST) -> Iterator[str]:
    """Modules named by ``"rankwise.module:attribute"`` strings: the registry imports its factories from them."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            match = _FACTORY.fullmatch(node.value)
            if match:
                yield match.group(1)


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The rankwise modules that module ``name`` imports (each resolved to a module of ``known``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    targets: list[str] = list(_factory_targets(tree))
    for node in _import_nodes(tree):
        if isinstance(node, ast.Import):
            targets += [alias.name for alias in node.names]
        else:
            source = _absolute(node, name, path.name == "__init__.py")
            targets += [f"{source}.{a.name}" if f"{source}.{a.name}" in known else source for a in node.names]
    out: set[str] = set()
    for target in targets:
        while target and target not in known:  # `import rankwise.a.b` of a name inside a module
            target = target.rpartition(".")[0]
        if target.startswith("rankwise") and target != name:
            out.add(target)
    return out


def import_graph() -> dict[str, set[str]]:
    found = modules()
    known = set(found)
    return {name: imports_of(name, path, known) for name, path in found.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each as one cycle through them."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                components.append(_cycle_through(sorted(component), graph))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return components


def _cycle_through(component: list[str], graph: dict[str, set[str]]) -> list[str]:
    """One import path that starts and ends at the component's first module (breadth-first, inside it)."""
    members = set(component)
    start = component[0]
    paths = {start: [start]}
    queue = [start]
    while queue:
        v = queue.pop(0)
        for w in sorted(graph[v] & members):
            if w == start:
                return [*paths[v], start]
            if w not in paths:
                paths[w] = [*paths[v], w]
                queue.append(w)
    return component  # unreachable for a strongly connected component


def test_the_graph_reader_sees_function_level_and_relative_imports_but_not_type_checking(tmp_path: Path) -> None:
    code = (
        "from typing import TYPE_CHECKING\nfrom . import b\nif TYPE_CHECKING:\n    import rankwise.c\n"
        "def f():\n    from rankwise.d import thing\nROW = 'rankwise.e:Factory'\n"
    )
    path = tmp_path / "a.py"
    path.write_text(code)
    known = {"rankwise.pkg.a", "rankwise.pkg.b", "rankwise.c", "rankwise.d", "rankwise.e"}
    assert imports_of("rankwise.pkg.a", path, known) == {"rankwise.pkg.b", "rankwise.d", "rankwise.e"}
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]


def test_no_import_cycles() -> None:
    found = cycles(import_graph())
    assert not found, "import cycles in src/rankwise:\n" + "\n".join(" -> ".join(c) for c in found)


def test_import_rankwise_does_not_import_torch() -> None:
    code = "import rankwise, sys; rankwise.Document; rankwise.load; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_subpackages_are_reachable_from_a_plain_import_without_importing_torch() -> None:
    code = (
        "import rankwise, sys\n"
        "assert callable(rankwise.train.ltr) and callable(rankwise.batch.rerank_dataset)\n"
        "assert 'train' in dir(rankwise) and 'evaluation' in dir(rankwise)\n"
        "print('torch' in sys.modules, 'lightgbm' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_an_unknown_attribute_is_still_an_attribute_error() -> None:
    import rankwise

    with pytest.raises(AttributeError, match="no attribute 'trian'"):
        rankwise.trian  # noqa: B018
