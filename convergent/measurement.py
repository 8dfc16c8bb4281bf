"""Measuring a member on an evaluation set: completions from the member, each run with its
task's tests through the execution harness (the very verify path of execution evidence,
in the sandbox), graded per task.

Gaps (``convergent gap measure``) and every lever (``convergent lever measure``) measure
through :func:`run_member`; the record's format and its re-verification live in
:mod:`convergent.outcomes`.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from convergent.errors import ConvergentError
from convergent.harness import Harness
from convergent.holdout import read_tasks, task_case
from convergent.layout import outcomes_file
from convergent.members import Generate, complete
from convergent.outcomes import Measurement, Run, TaskResult


class MeasureError(ConvergentError):
    """An evaluation set cannot be measured (empty, repeated task ids)."""


def verifier(root: Path, config: Mapping[str, Any]) -> Run:
    """``run(task, completion) -> passed``, under the repo's sandbox limits and policy."""
    harness = Harness.for_repo(root, config)
    return lambda task, completion: harness.verify(task_case(task, completion)).passed


def run_all(run: Run, cases: Sequence[tuple[Mapping[str, Any], str]],
            workers: int | None = None) -> list[bool]:
    """Every (task, completion) verdict, in order; each run is its own sandboxed process."""
    with ThreadPoolExecutor(max_workers=workers or min(8, os.cpu_count() or 1)) as pool:
        return list(pool.map(lambda case: run(*case), cases))


def run_member(run: Run, tasks: Sequence[Mapping[str, Any]], name: str, generate: Generate,
               *, n: int = 1, temperature: float = 0.0, seed: int = 0,
               prompts: Sequence[str] | None = None,
               extras: Sequence[dict[str, Any]] | None = None) -> Measurement:
    """``n`` completions per task from the member (given ``prompts``, default the tasks'
    own), every one verified; a task is solved when any of its completions passes."""
    asked = list(prompts) if prompts is not None else [str(t["prompt"]) for t in tasks]
    completions = complete(name, generate, asked, n, temperature, seed)
    cases = [(task, c) for task, cands in zip(tasks, completions, strict=True) for c in cands]
    verdicts = iter(run_all(run, cases))
    results = []
    for i, (task, cands) in enumerate(zip(tasks, completions, strict=True)):
        results.append(TaskResult(str(task["task_id"]), cands, [next(verdicts) for _ in cands],
                                  dict(extras[i]) if extras is not None else {}))
    return Measurement(name, n, float(temperature), int(seed), results)


def write_completions(root: Path, measurement: Measurement) -> str:
    """Write the measurement's completions file (content-addressed); its repo path."""
    data = measurement.completions_bytes()
    rel = outcomes_file(hashlib.sha256(data).hexdigest())
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        path.write_bytes(data)
    return rel


def load_eval(path: Path) -> list[dict[str, Any]]:
    """An evaluation set's HumanEval-format tasks (read as the hold-out is read)."""
    tasks = [dict(task) for task in read_tasks(path)]
    if not tasks:
        raise MeasureError(f"{path}: the evaluation set holds no tasks")
    ids = [t["task_id"] for t in tasks]
    if len(set(ids)) != len(ids):
        raise MeasureError(f"{path}: task ids repeat; each task needs its own task_id")
    return tasks

