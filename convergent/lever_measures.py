"""The levers, each measured here through the registered members (:mod:`convergent.members`).

- ``route``: every registered member on the gap's evaluation set, greedy; the best one's
  pass@1 is the lever's value, and every member's measurement is recorded.
- ``verify_best_of_n`` (execution-verify + best-of-N): ``n`` sampled candidates per task
  from the member, each run in the sandbox with the task's tests; the first that passes is
  selected. The value is pass@1 of the *selected* answer, what a host using this lever
  would actually ship.
- ``rag``: the top-k verified experiences retrieved from the index (:mod:`convergent.index`)
  for each task, given to the member as few-shot context; the retrieved ids are recorded
  per task.

Each try is recorded with its per-task outcomes and completions (:mod:`convergent.outcomes`),
which the ``levers-first`` gate re-verifies::

    convergent lever measure --gap NAME --lever route|verify_best_of_n|rag [--member M]
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from convergent.config import load_config
from convergent.errors import ConvergentError
from convergent.gaps import gap_tasks, record_measured_lever, require_gap
from convergent.measurement import run_member, verifier
from convergent.members import choose_member, registered_members
from convergent.outcomes import Measurement
from convergent.records import Record

LEVER = "verify_best_of_n"
WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]{2,}")
# The retrieval query's words: enough to rank by, few enough to keep FTS fast.
QUERY_WORDS = 32


class LeverError(ConvergentError):
    """A lever cannot be measured as asked (bad n or k, unknown members, nothing to route
    between)."""


@dataclass(frozen=True)
class TaskOutcome:
    """One task: how many of its candidates passed, and which one was selected."""

    task_id: str
    candidates: int
    passed: int
    selected: int | None


def best_of_n_detail(measurement: Measurement) -> dict[str, Any]:
    """The lever's numbers at a glance (the outcomes hold the full evidence)."""
    per_task = [TaskOutcome(r.task_id, len(r.completions), sum(r.passed), r.selected).__dict__
                for r in measurement.results]
    return {"n": measurement.n, "tasks": len(measurement.results),
            "solved": measurement.solved, "pass_rate": measurement.pass_rate,
            "member": measurement.member, "temperature": measurement.temperature,
            "seed": measurement.seed, "per_task": per_task}


def run_best_of_n(root: Path, gap: str, n: int = 8, member: str | None = None, *,
                  temperature: float = 0.8, seed: int = 0) -> dict[str, Any]:
    """Measure execution-verify + best-of-N on the gap's evaluation set; record the try."""
    if n < 1:
        raise LeverError(f"n must be at least 1, got {n}")
    root = Path(root).resolve()
    gap_record = require_gap(root, gap)
    tasks = gap_tasks(root, gap_record)
    config = load_config(root)
    name, generate = choose_member(config, member)
    measurement = run_member(verifier(root, config), tasks, name, generate, n=n,
                             temperature=temperature, seed=seed)
    detail = {**best_of_n_detail(measurement), "eval": Record(gap_record).evidence["eval"]}
    return record_measured_lever(root, gap_record, LEVER, [measurement], detail)


def run_route(root: Path, gap: str, members: list[str] | None = None) -> dict[str, Any]:
    """Measure every registered member (or those named) greedily; record the best one."""
    root = Path(root).resolve()
    gap_record = require_gap(root, gap)
    tasks = gap_tasks(root, gap_record)
    config = load_config(root)
    found = registered_members(config)
    names = sorted(found) if members is None else list(members)
    unknown = [m for m in names if m not in found]
    if unknown:
        raise LeverError(f"no member named {', '.join(map(repr, unknown))}; registered: "
                           f"{', '.join(sorted(found))}")
    if len(names) < 2:
        raise LeverError(f"routing needs at least two members, got {', '.join(names)}: a "
                           "host registers its models through the register_members hook")
    run = verifier(root, config)
    measured = [run_member(run, tasks, name, found[name]) for name in names]
    best = max(measured, key=lambda m: m.pass_rate)  # ties: the first in name order
    detail = {"routed_to": best.member, "metric": "pass@1",
              "members": {m.member: m.pass_rate for m in measured}}
    return record_measured_lever(root, gap_record, "route", measured, detail)


def retrieval_query(prompt: str) -> str:
    """The words of a task prompt that retrieval ranks experiences by (identifiers)."""
    words = list(dict.fromkeys(WORD.findall(prompt)))
    return " ".join(words[:QUERY_WORDS])


def few_shot(prompt: str, hits: list[dict[str, Any]]) -> str:
    """The prompt with retrieved experiences before it, as commented examples then code."""
    shots = []
    for hit in hits:
        task = "\n".join(f"# {line}" for line in str(hit.get("task") or "").splitlines())
        shots.append(f"# A verified solution of a similar task:\n{task}\n"
                     f"{str(hit.get('response') or '').rstrip()}\n\n")
    return "".join(shots) + prompt


def run_rag(root: Path, gap: str, member: str | None = None, k: int | None = None
            ) -> dict[str, Any]:
    """Measure RAG: top-k verified experiences from the index as few-shot context for the
    member (greedy); the retrieved record ids are recorded per task."""
    from convergent.index import query

    root = Path(root).resolve()
    gap_record = require_gap(root, gap)
    tasks = gap_tasks(root, gap_record)
    config = load_config(root)
    k = int(config["levers"].get("rag_k", 2)) if k is None else k
    if k < 1:
        raise LeverError(f"k must be at least 1, got {k}")
    name, generate = choose_member(config, member)
    prompts, extras = [], []
    for task in tasks:
        text = retrieval_query(str(task["prompt"]))
        hits = query(root, text=text, kind="experience", verified=True, limit=k,
                     any_word=True) if text else []
        prompts.append(few_shot(str(task["prompt"]), hits))
        extras.append({"retrieved": [str(hit["id"]) for hit in hits]})
    measurement = run_member(verifier(root, config), tasks, name, generate, prompts=prompts,
                             extras=extras)
    retrieved = sorted({rid for extra in extras for rid in extra["retrieved"]})
    detail = {"member": name, "k": k, "metric": "pass@1", "retrieved": retrieved}
    return record_measured_lever(root, gap_record, "rag", [measurement], detail)
