"""No circular imports among the services: each module imports on its own in a fresh
interpreter, and the module-level import graph of the package has no cycle."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "contentops"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES: dict[str, Path] = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}
SERVICES = sorted(m for m in MODULES
                  if m.startswith("contentops.services") or m == "contentops.post_states")


def _resolve(module: str, level: int, target: str | None, is_package: bool) -> str:
    if level == 0:
        return target or ""
    base = module.split(".")
    # A module's own package is level 1; a package's __init__ is its own level 1.
    base = base if is_package else base[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join(base + ([target] if target else []))


def imports_of(module: str) -> set[str]:
    """Modules of this package imported at module level (not inside functions: those run
    later, after every module has loaded). Importing a.b.c also runs a and a.b."""
    path = MODULES[module]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    is_package = path.name == "__init__.py"
    found: set[str] = set()

    def add(name: str) -> None:
        parts = name.split(".")
        for i in range(1, len(parts) + 1):
            candidate = ".".join(parts[:i])
            if candidate in MODULES:
                found.add(candidate)

    for node in tree.body:
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(module, node.level, node.module, is_package)
            add(base)
            for alias in node.names:
                add(f"{base}.{alias.name}")
    # A module's own packages are always initialised before it; not an edge of its own.
    return {m for m in found if m != module and not module.startswith(m + ".")}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if state.get(nxt) is None:
                cycle = visit(nxt)
                if cycle:
                    return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if state.get(node) is None:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def test_the_graph_finder_sees_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
    assert "contentops.services.review" in imports_of("contentops.services.content")
    # A package's own submodule imports are edges; the submodule's import of its parent is not.
    assert "contentops.services.publishing.claim" in imports_of(
        "contentops.services.publishing")
    assert "contentops.services.publishing" not in imports_of(
        "contentops.services.publishing.actions")


def test_no_import_cycle_among_the_services():
    graph = {m: imports_of(m) for m in MODULES}
    services = {m: {n for n in graph[m] if n in SERVICES} for m in SERVICES}
    assert find_cycle(services) is None


@pytest.mark.parametrize("module", SERVICES)
def test_each_services_module_imports_alone(module):
    done = subprocess.run([sys.executable, "-c", f"import {module}"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
