"""The package's structure: imports run one way, no module is over 500 lines, the core stays apart.

The import graph is read from the source with :mod:`ast`: every ``import`` and ``from ... import``,
including those inside functions and under ``if TYPE_CHECKING:``, is an edge from the module that
writes it to the ``bceweights`` module it names (``from bceweights.x import y`` names
``bceweights.x.y`` when that is a module, else ``bceweights.x``).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "bceweights"
MAX_LINES = 500


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def all_modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def resolve(module: str, is_package: bool, level: int, target: str | None) -> str:
    """The absolute name of a (possibly relative) import's module."""
    if level == 0:
        return target or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join(base + ([target] if target else []))


def import_graph() -> dict[str, set[str]]:
    """Module -> the ``bceweights`` modules it imports anywhere in its source."""
    modules = all_modules()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = resolve(name, path.name == "__init__.py", node.level, node.module)
                targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
            else:
                continue
            for target in targets:
                while target and target not in modules and "." in target:
                    target = target.rsplit(".", 1)[0]  # import a.b.c of a name c defined in a.b
                if target in modules and target != name:
                    graph[name].add(target)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a list of modules (first == last), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_the_graph_reader_sees_imports_inside_functions_and_under_type_checking(tmp_path):
    source = ast.parse(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from bceweights.loss import Prepared\n"
        "def f():\n    from bceweights import eager\n"
    )
    found = [n for n in ast.walk(source) if isinstance(n, ast.ImportFrom) and (n.module or "").startswith("bceweights")]
    assert [n.module for n in found] == ["bceweights.loss", "bceweights"]
    assert find_cycle({"a": {"b"}, "b": {"a"}}) == ["a", "b", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycle_anywhere_in_the_package():
    graph = import_graph()
    assert graph["bceweights.loss"] >= {"bceweights.prepared", "bceweights.backend"}
    assert graph["bceweights.fused.autograd"] >= {"bceweights.eager"}
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_core_never_imports_the_lessons():
    graph = import_graph()
    offenders = {
        module: sorted(t for t in targets if t.startswith("bceweights.lessons"))
        for module, targets in graph.items()
        if not module.startswith("bceweights.lessons")
    }
    assert not any(offenders.values()), {m: t for m, t in offenders.items() if t}


@pytest.mark.parametrize("name", sorted(all_modules()))
def test_no_module_is_over_500_lines(name):
    lines = all_modules()[name].read_text(encoding="utf-8").count("\n")
    assert lines <= MAX_LINES, f"{name} has {lines} lines; split it by concern (at most {MAX_LINES})"


def test_the_audit_imports_the_core_and_the_core_never_imports_the_audit():
    graph = import_graph()
    in_audit = lambda module: module == "bceweights.audit" or module.startswith("bceweights.audit.")  # noqa: E731
    offenders = {
        module: sorted(t for t in targets if in_audit(t))
        for module, targets in graph.items()
        if not in_audit(module) and not module.startswith("bceweights.lessons") and module != "bceweights"
    }
    assert not any(offenders.values()), {m: t for m, t in offenders.items() if t}
    assert graph["bceweights.audit.rules"] >= {"bceweights.shapes", "bceweights.messages"}
    assert not any(t.startswith("bceweights.lessons") for m in graph if in_audit(m) for t in graph[m])
