"""The local stack's modules form layers: no import cycle among them, and none edits ``sys.path``."""

from __future__ import annotations

import ast
from pathlib import Path

LOCAL = Path(__file__).resolve().parents[2] / "local"
PACKAGE = LOCAL.name


def _modules() -> dict[str, ast.Module]:
    """Every module of local/ by its short name (``server``, ``__main__``...), parsed."""
    return {path.stem: ast.parse(path.read_text(encoding="utf-8"), str(path)) for path in sorted(LOCAL.glob("*.py"))}


def _imported(tree: ast.Module, known: set[str]) -> set[str]:
    """The modules of local/ that ``tree`` imports anywhere: top level, in functions, under TYPE_CHECKING."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            dotted = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # from . import x / from .x import y
                base = f"{PACKAGE}.{base}" if base else PACKAGE
            dotted = [base, *(f"{base}.{alias.name}" for alias in node.names)]
        else:
            continue
        for name in dotted:
            parts = name.split(".")
            if parts[0] == PACKAGE and len(parts) > 1 and parts[1] in known:
                found.add(parts[1])
    return found


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules) - {"__init__"}
    return {name: _imported(tree, known) - {name} for name, tree in modules.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One path for every back edge a depth-first walk finds (empty: the graph is acyclic)."""
    found: list[list[str]] = []
    state: dict[str, str] = {}  # "open" while on the walk's path, "done" after

    def visit(name: str, path: list[str]) -> None:
        state[name] = "open"
        for target in sorted(graph.get(name, ())):
            if state.get(target) == "open":
                found.append([*path[path.index(target) :], target])
            elif target not in state:
                visit(target, [*path, target])
        state[name] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    return found


def test_the_cycle_finder_finds_a_cycle_through_three_modules() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c", "a"]]
    assert cycles({"a": {"b", "c"}, "b": {"c"}, "c": set()}) == []


def test_the_local_modules_import_each_other_without_cycles() -> None:
    graph = import_graph()
    assert len(graph) > 5, f"expected the modules of {LOCAL}, found {sorted(graph)}"
    assert cycles(graph) == []


def _edits_sys_path(node: ast.AST) -> bool:
    def is_sys_path(target: ast.AST) -> bool:
        return (
            isinstance(target, ast.Attribute)
            and target.attr == "path"
            and isinstance(target.value, ast.Name)
            and target.value.id == "sys"
        )

    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        return is_sys_path(node.func.value) or (node.func.attr == "addsitedir")
    if isinstance(node, ast.Assign | ast.AugAssign):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        return any(is_sys_path(t) or (isinstance(t, ast.Subscript) and is_sys_path(t.value)) for t in targets)
    return False


def test_the_sys_path_finder_sees_inserts_and_assignments() -> None:
    for source in ("sys.path.insert(0, 'x')", "sys.path.append('x')", "sys.path[:0] = ['x']", "site.addsitedir('x')"):
        assert any(_edits_sys_path(node) for node in ast.walk(ast.parse(source))), source
    assert not any(_edits_sys_path(node) for node in ast.walk(ast.parse("print(sys.path)")))


def test_no_local_module_edits_sys_path() -> None:
    """Where ``mci`` comes from is the launcher's business (PYTHONPATH in the Makefile, pytest's pythonpath)."""
    editing = sorted(
        f"{name}.py:{node.lineno}"
        for name, tree in _modules().items()
        for node in ast.walk(tree)
        if _edits_sys_path(node) and hasattr(node, "lineno")
    )
    assert editing == []
