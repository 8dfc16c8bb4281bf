"""Process-control escapes in a program's source, found by one static scan.

An escape is code that ends or controls the process instead of computing an answer, or
that reaches into the interpreter: exit (``sys.exit``, ``os._exit``, ``SystemExit``),
signals, ``atexit``, fork and exec (``os.fork``, ``subprocess``), exception hooks
(``sys.excepthook``), ctypes, and frame or object-graph inspection (``sys._getframe``,
``tb_frame``, ``gc.get_referrers``). The harness refuses them at run time; the dataset build
drops every response that contains one, so that no model learns them from convergent's
training data, however it verified. Aliases are followed (``import os as o; o._exit(0)``,
``from os import _exit``).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

from convergent import pyast

EXIT, SIGNALS, ATEXIT, FORK = "exit", "signals", "atexit", "fork/exec"
EXCEPTHOOK, CTYPES, FRAMES = "exception hook", "ctypes", "frame inspection"

# Modules whose every use is an escape.
MODULES = {"signal": SIGNALS, "_signal": SIGNALS, "atexit": ATEXIT, "subprocess": FORK,
           "_posixsubprocess": FORK, "multiprocessing": FORK, "pty": FORK, "ctypes": CTYPES,
           "_ctypes": CTYPES, "cffi": CTYPES}
# Dotted names (after resolving aliases) that are escapes.
NAMES = {
    "sys.exit": EXIT, "os._exit": EXIT, "os.abort": EXIT, "exit": EXIT, "quit": EXIT,
    "SystemExit": EXIT, "_thread.exit": EXIT, "os.kill": SIGNALS, "os.killpg": SIGNALS,
    "_thread.interrupt_main": SIGNALS, "os.fork": FORK, "os.forkpty": FORK,
    "os.system": FORK, "os.popen": FORK, "os.posix_spawn": FORK, "os.posix_spawnp": FORK,
    "os.register_at_fork": FORK, "sys.excepthook": EXCEPTHOOK,
    "sys.unraisablehook": EXCEPTHOOK, "threading.excepthook": EXCEPTHOOK,
    "sys._getframe": FRAMES, "sys._current_frames": FRAMES, "sys.settrace": FRAMES,
    "sys.setprofile": FRAMES, "sys.addaudithook": FRAMES, "threading.settrace": FRAMES,
    "threading.setprofile": FRAMES, "inspect.currentframe": FRAMES, "inspect.stack": FRAMES,
    "inspect.trace": FRAMES, "inspect.getouterframes": FRAMES,
    "inspect.getinnerframes": FRAMES, "traceback.walk_stack": FRAMES,
    "gc.get_objects": FRAMES, "gc.get_referrers": FRAMES, "gc.get_referents": FRAMES,
}
PREFIXES = {"os.exec": FORK, "os.spawn": FORK}
# Attributes that only frames, tracebacks and generators have.
ATTRIBUTES = {"tb_frame": FRAMES, "f_back": FRAMES, "f_locals": FRAMES, "f_globals": FRAMES,
              "f_trace": FRAMES, "gi_frame": FRAMES, "cr_frame": FRAMES, "ag_frame": FRAMES}


@dataclass(frozen=True)
class Escape:
    line: int
    kind: str
    what: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.what} ({self.kind})"


def find_escapes(source: str) -> list[Escape]:
    """Every escape in ``source``, in line order; [] for text that is not Python."""
    try:
        tree = pyast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return []
    scanner = _Scanner()
    scanner.visit(tree)
    return sorted(set(scanner.found), key=lambda e: (e.line, e.what))


class _Scanner(ast.NodeVisitor):
    def __init__(self) -> None:
        self.aliases: dict[str, str] = {}
        self.found: list[Escape] = []

    def _hit(self, node: ast.AST, name: str) -> None:
        kind = NAMES.get(name) or MODULES.get(name.split(".")[0]) or next(
            (k for prefix, k in PREFIXES.items() if name.startswith(prefix)), None)
        if kind is not None:
            self.found.append(Escape(getattr(node, "lineno", 0), kind, name))

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self.aliases[(alias.asname or alias.name).split(".")[0]] = (
                alias.name if alias.asname else alias.name.split(".")[0])
            self._hit(node, alias.name)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        for alias in node.names:
            full = f"{node.module}.{alias.name}" if node.module else alias.name
            self.aliases[alias.asname or alias.name] = full
            self._hit(node, full)

    def visit_Name(self, node: ast.Name) -> None:
        self._hit(node, self.aliases.get(node.id, node.id))

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if node.attr in ATTRIBUTES:
            self.found.append(Escape(node.lineno, ATTRIBUTES[node.attr], f".{node.attr}"))
        dotted = _dotted(node)
        if dotted is not None:
            head, _, rest = dotted.partition(".")
            self._hit(node, f"{self.aliases.get(head, head)}.{rest}")
        self.generic_visit(node)


def _dotted(node: ast.expr) -> str | None:
    """``a.b.c`` for a chain of attributes on a name, else None."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    return ".".join([node.id, *reversed(parts)])
