"""The contamination corpus (``tests/corpus/contamination/``) and how to score a stage on it.

``leaks.jsonl``: hand-written paraphrases of HumanEval and hold-out items, one a line,
naming the ``benchmark`` and ``item`` they leak and their ``kind``:

- ``docstring``: the docstring rewritten in other words, names and solution kept;
- ``renamed``: function and variable names changed (and the docstring reworded);
- ``restructured``: another algorithm or shape (loops <-> comprehensions, helpers,
  recursion, the standard library), names changed;
- ``task_only``: the task in other words, the response prose with no code;
- ``solution_only``: code without a docstring under a generic task, names changed.

``clean.jsonl``: problems on the same topics that are *not* the same problem (rolling min
vs rolling max, touching intervals kept apart vs merged, ...), each with its own
``check(candidate)`` tests and ``entry_point``; each one passes its own tests and fails
every benchmark and hold-out item's tests (a test checks both in the sandbox).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CORPUS = Path(__file__).resolve().parent / "corpus" / "contamination"
KINDS = ("docstring", "renamed", "restructured", "task_only", "solution_only")


def read_jsonl(name: str) -> list[dict[str, Any]]:
    with open(CORPUS / name, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def leaks() -> list[dict[str, Any]]:
    return read_jsonl("leaks.jsonl")


def clean() -> list[dict[str, Any]]:
    return read_jsonl("clean.jsonl")


def as_record(entry: Mapping[str, Any], *, text_only: bool = False) -> dict[str, Any]:
    """The experience a corpus entry stands for (``text_only``: its task and claim alone)."""
    tests = entry.get("tests", "")
    if entry.get("entry_point") and tests:
        tests += f"\ncheck({entry['entry_point']})\n"
    return {"kind": "experience", "claim": entry["claim"], "task": entry["task"],
            "response": "" if text_only else entry["response"],
            "evidence": {"type": "execution", "language": "python",
                         "tests": "" if text_only else tests},
            "confidence": 0.9, "source": {"emitter": "corpus", "model": "none",
                                          "origin": "self"}}


def leaked_key(entry: Mapping[str, Any]) -> tuple[str, str]:
    return entry["benchmark"], entry["item"]


@dataclass(frozen=True)
class Hit:
    """One finding of a stage: which record, which (benchmark, item), and the score."""

    record: int
    benchmark: str
    item: str
    score: float | None = None


def caught(entries: Sequence[Mapping[str, Any]], hits: Iterable[Hit]) -> list[bool]:
    """Per leak: whether a hit names the very item it leaks."""
    named = {(h.record, h.benchmark, h.item) for h in hits}
    return [(n, *leaked_key(e)) in named for n, e in enumerate(entries)]


def flagged(count: int, hits: Iterable[Hit]) -> list[bool]:
    """Per record: whether any hit refuses it."""
    found = {h.record for h in hits}
    return [n in found for n in range(count)]


def recall_by_kind(entries: Sequence[Mapping[str, Any]], hit: Sequence[bool]
                   ) -> dict[str, tuple[int, int]]:
    """kind -> (caught, of)."""
    out = {}
    for kind in KINDS:
        rows = [h for e, h in zip(entries, hit, strict=True) if e["kind"] == kind]
        out[kind] = (sum(rows), len(rows))
    return out
