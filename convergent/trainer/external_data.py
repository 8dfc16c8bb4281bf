"""The default external (non-self) training data: functions from Python's own stdlib.

Every machine that runs convergent has the standard library's sources, so the
default external set needs no download and no shipped copy. Each item is one
top-level function with a docstring and a short body: the prompt is its
signature and docstring as written, the completion is the rest of its body::

    from convergent.trainer.external_data import load_stdlib_functions, stdlib_info
    items = load_stdlib_functions()   # a few hundred items, deterministic order
    stdlib_info()                     # record this in the dataset manifest

The order is the sorted module path, then source order, so one Python version
always yields the same items. Another Python version yields other items, which
is why the manifest records :func:`stdlib_info` beside the item ids and hashes.
"""

from __future__ import annotations

import ast
import hashlib
import os
import platform
import sysconfig
import tokenize
from collections.abc import Iterator
from pathlib import Path
from typing import TypedDict

DEFAULT_LIMIT = 400
DEFAULT_MAX_BODY_LINES = 30

# Tests, bundled third-party code and demo programs are not the stdlib's own
# library code; tests also carry odd syntax on purpose.
EXCLUDED_DIRS = frozenset(
    {
        "__pycache__",
        "site-packages",
        "dist-packages",
        "test",
        "tests",
        "idlelib",
        "lib2to3",
        "turtledemo",
        "ensurepip",
        "venv",
    }
)


class ExternalItem(TypedDict):
    """One external training pair; ``id`` is stable for a given source text."""

    id: str
    prompt: str
    completion: str
    origin: str


def stdlib_root() -> Path:
    """The directory holding this interpreter's standard library sources."""
    return Path(sysconfig.get_paths()["stdlib"])


def stdlib_info() -> dict[str, str]:
    """Which standard library the items come from, for the dataset manifest."""
    return {
        "source": "python-stdlib",
        "implementation": platform.python_implementation(),
        "version": platform.python_version(),
    }


def _is_public_module(name: str) -> bool:
    # Private modules (_pydecimal, ctypes._aix) are implementation details whose
    # functions lean on internals; __init__ is the public face of a package.
    return name == "__init__.py" or not name.startswith("_")


def _module_paths(root: Path) -> list[Path]:
    paths: list[Path] = []
    for directory, subdirs, files in os.walk(root):
        # Pruning in place stops os.walk from descending into excluded trees.
        subdirs[:] = [d for d in subdirs if d not in EXCLUDED_DIRS and _is_public_module(d)]
        paths.extend(
            Path(directory, name)
            for name in files
            if name.endswith(".py") and _is_public_module(name)
        )
    return sorted(paths, key=lambda path: path.relative_to(root).as_posix())


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _parse(path: Path) -> tuple[ast.Module, list[str]] | None:
    try:
        # tokenize.open honours the file's coding cookie, as the interpreter does.
        with tokenize.open(path) as handle:
            source = handle.read()
        return ast.parse(source, filename=str(path)), source.splitlines(keepends=True)
    except (SyntaxError, UnicodeDecodeError, ValueError, OSError):
        return None


def _parses(source: str) -> bool:
    try:
        ast.parse(source)
    except SyntaxError:
        return False
    return True


def _split_function(
    node: ast.FunctionDef | ast.AsyncFunctionDef, lines: list[str], max_body_lines: int
) -> tuple[str, str] | None:
    """(signature + docstring, rest of body) as source text, or None if unsuitable."""
    if ast.get_docstring(node) is None or len(node.body) < 2 or node.end_lineno is None:
        return None
    docstring = node.body[0]
    doc_end = docstring.end_lineno
    # A docstring on the def line, or a statement sharing its last line, cannot be
    # cut at a line boundary into a valid prompt and completion.
    if doc_end is None or docstring.lineno == node.lineno or node.body[1].lineno <= doc_end:
        return None
    start = min([node.lineno] + [d.lineno for d in node.decorator_list])
    prompt = "".join(lines[start - 1 : doc_end])
    completion = "".join(lines[doc_end : node.end_lineno])
    body_lines = [line for line in completion.splitlines() if line.strip()]
    if len(body_lines) > max_body_lines:
        return None
    prompt, completion = _ensure_newline(prompt), _ensure_newline(completion)
    # Both halves must stay valid Python: the prompt alone is a function whose
    # body is its docstring, and prompt + completion is the original function.
    if not (_parses(prompt) and _parses(prompt + completion)):
        return None
    return prompt, completion


def _ensure_newline(text: str) -> str:
    return text if text.endswith("\n") else text + "\n"


def _item_id(module: str, name: str, prompt: str, completion: str) -> str:
    digest = hashlib.sha256((prompt + completion).encode("utf-8")).hexdigest()
    return f"stdlib:{module}:{name}:{digest[:12]}"


def _module_items(path: Path, root: Path, max_body_lines: int) -> Iterator[ExternalItem]:
    parsed = _parse(path)
    if parsed is None:
        return
    tree, lines = parsed
    module = _module_name(path, root)
    for node in tree.body:
        # Private helpers lean on module internals; public functions stand alone better.
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        if node.name.startswith("_"):
            continue
        halves = _split_function(node, lines, max_body_lines)
        if halves is None:
            continue
        prompt, completion = halves
        yield ExternalItem(
            id=_item_id(module, node.name, prompt, completion),
            prompt=prompt,
            completion=completion,
            origin="external",
        )


def iter_stdlib_functions(
    max_body_lines: int = DEFAULT_MAX_BODY_LINES, root: Path | None = None
) -> Iterator[ExternalItem]:
    """Yield every suitable stdlib function, lazily, in deterministic order, ids unique."""
    root = root or stdlib_root()
    seen: set[str] = set()
    for path in _module_paths(root):
        for item in _module_items(path, root, max_body_lines):
            if item["id"] not in seen:
                seen.add(item["id"])
                yield item


def load_stdlib_functions(
    limit: int | None = DEFAULT_LIMIT, max_body_lines: int = DEFAULT_MAX_BODY_LINES
) -> list[ExternalItem]:
    """The first ``limit`` items of :func:`iter_stdlib_functions` (all of them for None)."""
    if limit is not None and limit < 0:
        raise ValueError(f"limit must be non-negative or None, got {limit}")
    items: list[ExternalItem] = []
    for item in iter_stdlib_functions(max_body_lines):
        if limit is not None and len(items) >= limit:
            break
        items.append(item)
    return items
