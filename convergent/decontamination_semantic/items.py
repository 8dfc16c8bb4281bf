"""Benchmark and hold-out items in the form the semantic stages need.

An item is a HumanEval-format task: ``prompt`` (signature + docstring), ``entry_point``,
``test`` (a ``check(candidate)`` function) and, when the benchmark has one, the canonical
solution. Items without a test (a benchmark registered as plain text) still take part in
the text stage; only items with a test can be matched functionally.
"""

from __future__ import annotations

import ast
import gzip
import hashlib
import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from convergent.decontamination import (
    HOLDOUT,
    Benchmark,
    configured_benchmarks,
    humaneval_source,
)
from convergent.errors import RepoError

HUMANEVAL = "humaneval"


@dataclass(frozen=True)
class Item:
    """One benchmark item; ``key`` ("benchmark/item_id") names it in findings and caches."""

    benchmark: str
    item_id: str
    prompt: str
    entry_point: str = ""
    test: str = ""
    solution: str = ""

    @property
    def key(self) -> str:
        return f"{self.benchmark}/{self.item_id}"

    @cached_property
    def digest(self) -> str:
        """sha256 of what a functional run of this item depends on."""
        blob = json.dumps([self.prompt, self.entry_point, self.test], ensure_ascii=False)
        return hashlib.sha256(blob.encode("utf-8", "surrogatepass")).hexdigest()

    @cached_property
    def arity(self) -> tuple[int, int] | None:
        """(required, total) positional parameters of the entry point; None when unknown."""
        return entry_point_arity(self.prompt, self.entry_point)

    @property
    def runnable(self) -> bool:
        return bool(self.test and self.entry_point and self.arity is not None)


def entry_point_arity(prompt: str, entry_point: str) -> tuple[int, int] | None:
    try:
        tree = ast.parse(prompt)
    except (SyntaxError, ValueError):
        return None
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == entry_point:
            return positional_arity(node.args)
    return None


def positional_arity(args: ast.arguments) -> tuple[int, int]:
    """(required, total) positional parameters; total is large for ``*args``."""
    positional = len(args.posonlyargs) + len(args.args)
    required = positional - len(args.defaults)
    return required, (1 << 16 if args.vararg is not None else positional)


_DOCTEST = re.compile(r"^\s*(>>>|\.\.\.)")


def prompt_text(item: Item) -> str:
    """The natural-language part of an item's prompt: its name, in words, and its
    docstring without the doctest lines and example calls, which paraphrases rarely keep."""
    words = " ".join(re.findall(r"[A-Za-z][a-z]*|[0-9]+", item.entry_point))
    body = item.prompt
    doc = _docstrings(body)
    lines = []
    skip_next = False
    for line in (doc or body).splitlines():
        if skip_next:
            skip_next = False
            continue
        if _DOCTEST.match(line):
            skip_next = True  # the doctest's expected output
            continue
        if item.entry_point and f"{item.entry_point}(" in line:
            continue
        lines.append(line.strip())
    return (words + "\n" + "\n".join(line for line in lines if line)).strip()


def _docstrings(code: str) -> str:
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError):
        return ""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            doc = ast.get_docstring(node, clean=True)
            if doc:
                found.append(doc)
    return "\n".join(found)


def item_text(item: Item) -> str:
    """Everything a model could memorize from the item: prompt, solution and tests."""
    return "\n".join((item.prompt, item.solution, item.test))


# --- loaders -------------------------------------------------------------------------


def tasks_to_items(benchmark: str, tasks: Iterable[Mapping[str, Any]], where: str
                   ) -> list[Item]:
    items = []
    for n, task in enumerate(tasks, 1):
        try:
            items.append(Item(benchmark, str(task["task_id"]), str(task["prompt"]),
                              str(task.get("entry_point") or ""), str(task.get("test") or ""),
                              str(task.get("canonical_solution") or "")))
        except (KeyError, TypeError) as exc:
            raise RepoError(f"{where}:{n}: not a HumanEval-format task: {exc}") from None
    return items


def humaneval_tasks(path: Path | None = None) -> list[Item]:
    path = path or humaneval_source()
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        tasks = [json.loads(line) for line in fh if line.strip()]
    return tasks_to_items(HUMANEVAL, tasks, str(path))


def holdout_tasks(root: Path | None, config: Mapping[str, Any]) -> list[Item]:
    from convergent.holdout import holdout_source, load_holdout

    source = holdout_source(root, config)
    return tasks_to_items(HOLDOUT, load_holdout(root, config), str(source or HOLDOUT))


def text_items(benchmark: str, pairs: Iterable[tuple[str, str]]) -> Iterator[Item]:
    """Items of a benchmark registered as ``(item_id, text)`` only: text stage, no tests."""
    for item_id, text in pairs:
        yield Item(benchmark, item_id, text)


def configured_items(root: Path | None, config: Mapping[str, Any],
                     benchmarks: Sequence[Benchmark] | None = None) -> list[Item]:
    """Every benchmark the n-gram gate checks (registered ones, the frozen hold-out), as
    items: HumanEval and the hold-out as tasks with tests; a benchmark a plugin registers
    as ``(item_id, text)`` as text-only items."""
    if benchmarks is None:
        benchmarks = configured_benchmarks(root or Path("."), config)
    items: list[Item] = []
    for benchmark in benchmarks:
        if benchmark.name == HOLDOUT:
            items.extend(holdout_tasks(root, config))
        elif benchmark.name == HUMANEVAL and benchmark.source is not None:
            items.extend(humaneval_tasks(benchmark.source))
        else:
            items.extend(text_items(benchmark.name, benchmark.load()))
    return items
