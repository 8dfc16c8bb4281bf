"""The frozen hold-out: which tasks, their sha256, and the freeze check.

``[tripwire] holdout`` names the hold-out: ``"default"`` (shipped in ``convergent.data``),
a name registered through the ``register_holdouts`` hook, or a path relative to the
records repo. ``convergent init`` freezes its sha256 in ``[tripwire] holdout_sha256``; a
changed hold-out stops every cycle until an operator re-freezes it in a reviewed commit.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

from convergent.completions import program
from convergent.errors import ConvergentError, RepoError
from convergent.harness import ExecutionCase
from convergent.plugins import collect
from convergent.records import canonical_json

DEFAULT = "default"
TASK_FIELDS = ("task_id", "prompt", "entry_point", "test")
Task = dict[str, Any]


class HoldoutChangedError(ConvergentError):
    """The hold-out's content no longer matches the frozen sha256."""


def default_holdout_path() -> Path:
    path = _shipped_holdout()
    if not path.is_file():
        raise RepoError(f"{path}: the default hold-out is missing from the installation")
    return path


@functools.lru_cache(maxsize=1)
def _shipped_holdout() -> Path:
    """Where the installation keeps the default hold-out (found once a process)."""
    return Path(str(resources.files("convergent.data") / "holdout.jsonl"))


def task_case(task: Mapping[str, Any], completion: str) -> ExecutionCase:
    """The completion's program (:func:`convergent.completions.program`: prompt + completion,
    or an instruct model's fenced answer), the tests, then check(entry_point). Every scorer of a
    task's completion builds its case here (tripwire, gaps, levers)."""
    return ExecutionCase(program(task["prompt"], completion, task["entry_point"]), task["test"],
                         task["entry_point"])


def read_tasks(path: Path) -> list[Task]:
    """HumanEval-format tasks from a JSONL file; errors name the line and field."""
    return parse_tasks(path.read_text("utf-8"), str(path))


def parse_tasks(text: str, where: str) -> list[Task]:
    """HumanEval-format tasks from JSONL text; errors name ``where``, the line and field."""
    tasks = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            task = json.loads(line)
        except json.JSONDecodeError as exc:
            raise RepoError(f"{where}:{lineno}: not JSON: {exc.msg}") from None
        if not isinstance(task, dict):
            raise RepoError(f"{where}:{lineno}: not a JSON object")
        for field in TASK_FIELDS:
            if not isinstance(task.get(field), str):
                raise RepoError(f"{where}:{lineno}: {field}: missing or not a string")
        tasks.append(task)
    return tasks


def registered_holdouts() -> dict[str, Callable[[], Iterable[Task]]]:
    """Hold-outs registered through the ``register_holdouts`` hook, by name."""
    return collect("register_holdouts")


def holdout_source(root: Path | None, config: Mapping[str, Any]) -> Path | None:
    """The file behind the configured hold-out (None for one a plugin registered)."""
    name = str(config["tripwire"].get("holdout", DEFAULT))
    if name == DEFAULT:
        return default_holdout_path()
    if name in registered_holdouts():
        return None
    if root is None:
        raise RepoError(f"[tripwire] holdout = {name!r} needs the records repo")
    path = (root / name).resolve()
    if not path.is_file():
        raise RepoError(f"[tripwire] holdout = {name!r}: no such registered hold-out or file")
    return path


def load_holdout(root: Path | None, config: Mapping[str, Any]) -> list[Task]:
    source = holdout_source(root, config)
    if source is not None:
        return read_tasks(source)
    name = str(config["tripwire"]["holdout"])
    return [dict(task) for task in registered_holdouts()[name]()]


def tasks_sha256(tasks: Iterable[Mapping[str, Any]]) -> str:
    """sha256 over the canonical JSON of each task's fields, in order."""
    digest = hashlib.sha256()
    for task in tasks:
        digest.update(canonical_json({k: task[k] for k in TASK_FIELDS}).encode("utf-8"))
        digest.update(b"\n")
    return digest.hexdigest()


def default_holdout_sha256() -> str:
    return tasks_sha256(read_tasks(default_holdout_path()))


def frozen_holdout(root: Path, config: Mapping[str, Any]) -> list[Task]:
    """The hold-out, refusing it when it changed since it was frozen."""
    tasks = load_holdout(root, config)
    frozen = str(config["tripwire"].get("holdout_sha256", ""))
    actual = tasks_sha256(tasks)
    if not frozen:
        raise HoldoutChangedError("the hold-out is not frozen: set [tripwire] holdout_sha256 = "
                                  f'"{actual}" in a reviewed commit (`convergent holdout freeze`)')
    if actual != frozen:
        raise HoldoutChangedError(
            f"the hold-out changed (sha256 {actual}, frozen {frozen}); every cycle is stopped "
            "until an operator reviews the change and re-freezes it with `convergent holdout "
            "freeze` in a reviewed commit")
    return tasks
