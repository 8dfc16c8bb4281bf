"""Python ASTs, safe from any thread: ``ast.parse`` and ``compile`` of a tree under one lock.

CPython 3.11 keeps the AST conversion's recursion depth in per-interpreter state, not per
thread: two threads converting at once (the tripwire and best-of-N verify in thread pools)
fail with ``SystemError: AST constructor recursion depth mismatch``. Both conversions take
about a millisecond, so one process-wide lock costs nothing that matters.
"""

from __future__ import annotations

import ast
import threading
from types import CodeType

_LOCK = threading.Lock()


def parse(source: str, filename: str = "<unknown>") -> ast.Module:
    with _LOCK:
        return ast.parse(source, filename)


def compile_tree(tree: ast.Module, filename: str) -> CodeType:
    with _LOCK:
        return compile(tree, filename, "exec", dont_inherit=True)
