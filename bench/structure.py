"""Structure figures of our own modules, read from the source.

    .venv/bin/python bench/structure.py

Prints the module count, the ten longest functions, the share of internal imports
(of ``convergent.*``) that sit inside functions, and the import circles found.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from import_graph import import_cycles, load_modules  # noqa: E402


def main() -> int:
    modules = load_modules()
    functions = []
    for module in modules.values():
        for node in ast.walk(module.tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                functions.append((length, f"{module.name.removeprefix('convergent.')}."
                                          f"{node.name}"))
    inside = sum(m.function_import_count for m in modules.values())
    total = inside + sum(m.top_import_count for m in modules.values())
    print(f"modules: {len(modules)}")
    print("longest functions (lines):")
    for length, name in sorted(functions, reverse=True)[:10]:
        print(f"  {length:4d}  {name}")
    print(f"internal imports inside functions: {inside}/{total} = {inside / total:.0%}")
    for label, functions in (("module-level", False), ("counting function-level", True)):
        cycles = import_cycles(modules, functions=functions)
        print(f"import circles ({label} imports): {len(cycles)}")
        for cycle in cycles:
            print("  " + " -> ".join(name.removeprefix("convergent.") for name in cycle))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
