"""Our modules and the imports between them, read from the source (no import runs).

The package is the folder ``convergent/``: ``convergent/x/y.py`` is ``convergent.x.y``.
Shared by tests/test_structure.py and bench/structure.py.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "convergent"


@dataclass
class Module:
    name: str
    path: Path
    is_package: bool
    tree: ast.Module
    top_imports: set[str] = field(default_factory=set)
    function_imports: set[str] = field(default_factory=set)
    function_import_count: int = 0
    top_import_count: int = 0


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT)
    if rel.parts[0] != PACKAGE:
        raise ValueError(f"{rel} is outside the package folder {PACKAGE}/")
    parts = list(rel.with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _resolve(importer: Module, node: ast.ImportFrom | ast.Import, names: set[str]) -> list[str]:
    """The modules of ours one import statement names (a ``from x import y`` names x.y
    where y is a module, else x)."""
    if isinstance(node, ast.Import):
        targets = [alias.name for alias in node.names]
        return [t for t in targets if t.split(".")[0] == "convergent"]
    if node.level:
        base = importer.name.split(".")
        if not importer.is_package:
            base = base[:-1]
        base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
        parent = ".".join(base + ([node.module] if node.module else []))
    else:
        parent = node.module or ""
    if parent.split(".")[0] != "convergent":
        return []
    found = []
    for alias in node.names:
        child = f"{parent}.{alias.name}"
        found.append(child if child in names else parent)
    return found


def _nearest_known(name: str, names: set[str]) -> str | None:
    while name and name not in names:
        name = name.rpartition(".")[0]
    return name or None


def load_modules() -> dict[str, Module]:
    modules: dict[str, Module] = {}
    for path in sorted((ROOT / PACKAGE).rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        name = module_name(path)
        modules[name] = Module(name, path, path.name == "__init__.py", tree)
    names = set(modules)
    for module in modules.values():
        _collect(module, names)
    return modules


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _collect(module: Module, names: set[str]) -> None:
    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                continue  # typing only: never runs
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                targets = {t for raw in _resolve(module, child, names)
                           if (t := _nearest_known(raw, names)) and t != module.name}
                if targets:
                    if in_function:
                        module.function_imports |= targets
                        module.function_import_count += 1
                    else:
                        module.top_imports |= targets
                        module.top_import_count += 1
            inner = in_function or isinstance(
                child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            visit(child, inner)

    visit(module.tree, False)


def _with_parents(modules: dict[str, Module], functions: bool) -> dict[str, set[str]]:
    """Module-level edges (with ``functions``, the imports inside functions too), plus the
    edge a submodule import implies to its packages (``import convergent.a.b`` runs
    ``convergent/a/__init__``)."""
    graph: dict[str, set[str]] = {}
    for name, module in modules.items():
        edges = set()
        for target in module.top_imports | (module.function_imports if functions else set()):
            edges.add(target)
            parent = target.rpartition(".")[0]
            while parent and parent in modules and parent != name \
                    and not name.startswith(parent + "."):
                edges.add(parent)
                parent = parent.rpartition(".")[0]
        graph[name] = edges
    return graph


def import_cycles(modules: dict[str, Module], *, functions: bool = False) -> list[list[str]]:
    """Each strongly connected group of module-level imports, as one cycle through it.

    Only module-level imports make a circle that can fail at import time; ``functions``
    counts the imports inside functions too (the dependency circles a reader meets)."""
    graph = _with_parents(modules, functions)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []
    counter = [0]

    def strongconnect(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                strongconnect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for name in sorted(graph):
        if name not in index:
            strongconnect(name)
    return [_one_cycle(group, graph) for group in groups]


def _one_cycle(group: list[str], graph: dict[str, set[str]]) -> list[str]:
    """A concrete path a -> ... -> a inside one strongly connected group."""
    members = set(group)
    start = group[0]
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
    return group
