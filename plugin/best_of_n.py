"""The execution-verify + best-of-N lever, built in.

For each task of the gap's evaluation set, a sampler registered through the
``register_samplers`` hook proposes ``n`` candidate programs; each runs in the sandbox
with the task's tests (HumanEval convention: candidate, tests, ``check(entry_point)``);
the first passing candidate is selected. The measured value is the share of tasks that
have a passing selection, i.e. pass@1 of the *selected* answer, which is what a host
using this lever would actually ship. The try is recorded with its numbers::

    convergent lever best-of-n --gap NAME --n 8
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from convergent.config import load_config
from convergent.errors import ConvergentError
from convergent.gaps import eval_path, record_lever, require_gap
from convergent.harness import ExecutionCase, Harness
from convergent.holdout import read_tasks

LEVER = "verify_best_of_n"

Sample = Callable[[str, int], list[str]]


class BestOfNError(ConvergentError):
    """The lever cannot run: no sampler, a bad evaluation set, a bad sampler answer."""


@dataclass(frozen=True)
class TaskOutcome:
    """One task: how many of its candidates passed, and which one was selected."""

    task_id: str
    candidates: int
    passed: int
    selected: int | None


@dataclass(frozen=True)
class BestOfNResult:
    """The lever's numbers: ``pass_rate`` = tasks with a passing selection / tasks."""

    n: int
    tasks: list[TaskOutcome]

    @property
    def solved(self) -> int:
        return sum(1 for t in self.tasks if t.selected is not None)

    @property
    def pass_rate(self) -> float:
        return self.solved / len(self.tasks) if self.tasks else 0.0

    def detail(self) -> dict[str, Any]:
        return {"n": self.n, "tasks": len(self.tasks), "solved": self.solved,
                "pass_rate": self.pass_rate, "per_task": [asdict(t) for t in self.tasks]}


def registered_samplers() -> dict[str, Sample]:
    """Sampler name -> ``sample(prompt, n)``, from every plugin (the last one wins)."""
    from convergent.plugins import collect

    return collect("register_samplers")


def choose_sampler(name: str | None) -> tuple[str, Sample]:
    """The sampler named ``name``, or the only one registered."""
    found = registered_samplers()
    if name is not None:
        if name not in found:
            raise BestOfNError(f"no sampler named {name!r}; registered: "
                               f"{', '.join(sorted(found)) or 'none'}")
        return name, found[name]
    if len(found) == 1:
        return next(iter(found.items()))
    if not found:
        raise BestOfNError("no sampler is registered: a host registers one through the "
                           "register_samplers hook (sample(prompt, n) -> candidate programs)")
    raise BestOfNError(f"several samplers are registered ({', '.join(sorted(found))}): "
                       "choose one with --sampler")


def load_tasks(path: Path) -> list[dict[str, Any]]:
    """The evaluation set's HumanEval-format tasks (read as the hold-out is read)."""
    tasks = [dict(task) for task in read_tasks(path)]
    if not tasks:
        raise BestOfNError(f"{path}: the evaluation set holds no tasks")
    return tasks


def _candidates(sample: Sample, task: dict[str, Any], n: int) -> list[str]:
    answer = sample(task["prompt"], n)
    if not isinstance(answer, list) or not all(isinstance(c, str) for c in answer):
        raise BestOfNError(f"task {task['task_id']}: the sampler must return a list of "
                           "strings")
    return answer[:n]  # a sampler that over-delivers must not get more tries than asked


def _case(task: dict[str, Any], candidate: str) -> ExecutionCase:
    # What the execution verifier runs for an experience with this response and tests.
    return ExecutionCase(candidate, task["test"], task["entry_point"])


def measure(tasks: list[dict[str, Any]], sample: Sample, n: int,
            run: Callable[[ExecutionCase], bool], workers: int | None = None) -> BestOfNResult:
    """Sample, verify every candidate (in parallel: each run is its own process), select."""
    if n < 1:
        raise BestOfNError(f"n must be at least 1, got {n}")
    per_task = [_candidates(sample, task, n) for task in tasks]
    cases = [_case(task, c) for task, cands in zip(tasks, per_task, strict=True)
             for c in cands]
    with ThreadPoolExecutor(max_workers=workers or min(8, os.cpu_count() or 1)) as pool:
        verdicts: Iterator[bool] = iter(list(pool.map(run, cases)))
    outcomes = []
    for task, cands in zip(tasks, per_task, strict=True):
        passed = [next(verdicts) for _ in cands]
        selected = passed.index(True) if any(passed) else None
        outcomes.append(TaskOutcome(task["task_id"], len(cands), sum(passed), selected))
    return BestOfNResult(n, outcomes)


def run_best_of_n(root: Path, gap: str, n: int = 8, sampler: str | None = None
                  ) -> dict[str, Any]:
    """Measure the lever on the gap's evaluation set and record the try; returns it."""
    root = Path(root).resolve()
    gap_record = require_gap(root, gap)
    eval_ref = gap_record["evidence"]["eval"]
    path = eval_path(root, eval_ref)
    recorded = gap_record["evidence"].get("eval_sha256")
    if recorded and hashlib.sha256(path.read_bytes()).hexdigest() != recorded:
        # A lever measured on other tasks than the gap says nothing about the gap.
        raise BestOfNError(f"{eval_ref} changed since gap {gap!r} was measured: measure the "
                           "gap again (`convergent gap add`) before trying the lever")
    tasks = load_tasks(path)
    name, sample = choose_sampler(sampler)
    harness = Harness.for_repo(root, load_config(root))
    result = measure(tasks, sample, n, lambda case: harness.verify(case).passed)
    detail = {**result.detail(), "sampler": name, "eval": eval_ref}
    return record_lever(root, gap, LEVER, result.pass_rate, detail)
