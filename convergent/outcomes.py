"""Per-task outcomes of a measurement, its completions file, and their re-verification.

A measured gap or lever record carries ``evidence.measurements``: one entry per member
measured (route measures every member; the others one), each::

    {"member", "n", "temperature", "seed", "tasks", "solved", "pass_rate", "stderr",
     "completions_sha256", "outcomes": [{"task_id", "sha256", "passed",
                                         "candidates"?: [{"sha256", "passed"}],
                                         "retrieved"?: [record ids]}]}

``outcomes`` follow the evaluation set's tasks, in order. With ``n`` > 1 (best-of-N) a
task's ``candidates`` are every sampled completion and its verdict; the outcome's
``sha256`` is the one selected (the first that passed, else the first) and ``passed`` says
whether any did. The completions themselves are in ``data/convergence/outcomes/<sha256>
.jsonl`` (one ``{"task_id", "completions"}`` line per task), committed with the record and
named by the sha256 of its bytes.

:func:`measurement_problems` is the one check of such a record: the file is there and
hashes to its name, it matches the outcomes, the numbers follow from the outcomes, and a
deterministic sample of outcomes (seeded by the record id) re-verifies in the sandbox.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from convergent.layout import outcomes_file
from convergent.records import Record

# Tasks re-run per measurement by the levers-first gate: half drawn from the claimed passes,
# half from the claimed fails (so a forged pass and a forged fail are both probed in every
# record), all of them when the set is this small.
REVERIFY_PER_MEASUREMENT = 4
STDERR_DIGITS = 6

Run = Callable[[Mapping[str, Any], str], bool]


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def pass_at_1_stderr(solved: int, tasks: int) -> float:
    """The standard error of a pass rate over ``tasks`` independent tasks."""
    if tasks == 0:
        return 0.0
    rate = solved / tasks
    return round(math.sqrt(rate * (1 - rate) / tasks), STDERR_DIGITS)


@dataclass(frozen=True)
class TaskResult:
    """One task: every completion graded, in order, and what the lever added (retrieved)."""

    task_id: str
    completions: list[str]
    passed: list[bool]
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def selected(self) -> int | None:
        return self.passed.index(True) if any(self.passed) else None

    def outcome(self) -> dict[str, Any]:
        chosen = self.selected if self.selected is not None else 0
        out: dict[str, Any] = {"task_id": self.task_id,
                               "sha256": sha256_text(self.completions[chosen]),
                               "passed": self.selected is not None}
        if len(self.completions) > 1:
            out["candidates"] = [{"sha256": sha256_text(c), "passed": p}
                                 for c, p in zip(self.completions, self.passed, strict=True)]
        out.update(self.extra)
        return out


@dataclass(frozen=True)
class Measurement:
    """One member on one evaluation set: pass@1 of the selected completion per task."""

    member: str
    n: int
    temperature: float
    seed: int
    results: list[TaskResult]

    @property
    def solved(self) -> int:
        return sum(1 for r in self.results if r.selected is not None)

    @property
    def pass_rate(self) -> float:
        return self.solved / len(self.results) if self.results else 0.0

    def completions_bytes(self) -> bytes:
        return b"".join(json.dumps({"task_id": r.task_id, "completions": r.completions},
                                   ensure_ascii=False, sort_keys=True).encode("utf-8") + b"\n"
                        for r in self.results)

    def evidence(self) -> dict[str, Any]:
        return {"member": self.member, "n": self.n, "temperature": self.temperature,
                "seed": self.seed, "tasks": len(self.results), "solved": self.solved,
                "pass_rate": self.pass_rate,
                "stderr": pass_at_1_stderr(self.solved, len(self.results)),
                "completions_sha256": hashlib.sha256(self.completions_bytes()).hexdigest(),
                "outcomes": [r.outcome() for r in self.results]}


# --- checking a recorded measurement ----------------------------------------------------


def measurement_problems(record: Mapping[str, Any], tasks: Sequence[Mapping[str, Any]],
                         read: Callable[[str], bytes | None], run: Run,
                         sample: int = REVERIFY_PER_MEASUREMENT) -> list[str]:
    """Why the measured ``record`` does not stand (empty: it does).

    :param tasks: the evaluation set the record names (its sha256 already checked).
    :param read: a repo path's bytes at the revision checked (None: absent).
    :param run: whether a completion passes a task's tests, run in the sandbox.
    """
    evidence = Record(record).evidence
    measurements = evidence.get("measurements")
    if not isinstance(measurements, list) or not measurements:
        return ["evidence.measurements: missing or empty"]
    problems: list[str] = []
    rates: list[float] = []
    rng = random.Random(str(record.get("id")))
    for number, entry in enumerate(measurements):
        where = f"evidence.measurements[{number}]"
        if not isinstance(entry, dict):
            problems.append(f"{where}: not an object")
            continue
        found = list(_entry_problems(entry, tasks, read, run, rng, sample))
        problems.extend(f"{where} (member {entry.get('member')!r}): {p}" for p in found)
        rates.append(float(entry.get("pass_rate") or 0.0))
    if not problems and evidence.get("measured") != max(rates):
        problems.append(f"evidence.measured is {evidence.get('measured')!r}, but the best "
                        f"measured pass rate is {max(rates)!r}")
    return problems


def _entry_problems(entry: Mapping[str, Any], tasks: Sequence[Mapping[str, Any]],
                    read: Callable[[str], bytes | None], run: Run, rng: random.Random,
                    sample: int) -> Iterator[str]:
    outcomes = entry.get("outcomes")
    if not isinstance(outcomes, list) or not all(isinstance(o, dict) for o in outcomes):
        yield "outcomes: missing or not a list of objects"
        return
    ids = [o.get("task_id") for o in outcomes]
    if ids != [t["task_id"] for t in tasks]:
        yield "outcomes do not follow the evaluation set's tasks (every task, in order)"
        return
    lines = yield from _completions(entry, read)
    if lines is None:
        return
    for outcome, line in zip(outcomes, lines, strict=False):
        problem = _consistency(outcome, line)
        if problem:
            yield f"task {outcome['task_id']}: {problem}"
            return
    solved = sum(1 for o in outcomes if o.get("passed") is True)
    expect = {"tasks": len(outcomes), "solved": solved,
              "pass_rate": solved / len(outcomes) if outcomes else 0.0,
              "stderr": pass_at_1_stderr(solved, len(outcomes))}
    for key, value in expect.items():
        if entry.get(key) != value:
            yield f"{key} is {entry.get(key)!r}, but the outcomes give {value!r}"
            return
    by_id = {t["task_id"]: t for t in tasks}
    for index in _sample(outcomes, rng, sample):
        outcome, completions = outcomes[index], lines[index]["completions"]
        claimed = _claimed(outcome)
        for number, (completion, said) in enumerate(zip(completions, claimed, strict=True)):
            if run(by_id[outcome["task_id"]], completion) is not said:
                yield (f"task {outcome['task_id']}: completion {number} "
                       f"{'passed' if said else 'failed'} as recorded, but "
                       f"{'fails' if said else 'passes'} when run again in the sandbox")
                return


def _completions(entry: Mapping[str, Any], read: Callable[[str], bytes | None]
                 ) -> Generator[str, None, list[dict[str, Any]] | None]:
    """The completions file's lines, or None after yielding why it cannot be used."""
    sha = entry.get("completions_sha256")
    if not isinstance(sha, str) or len(sha) != 64:
        yield "completions_sha256: missing or not a sha256"
        return None
    path = outcomes_file(sha)
    data = read(path)
    if data is None:
        yield f"its completions file {path} is missing: commit it with the record"
        return None
    if hashlib.sha256(data).hexdigest() != sha:
        yield f"its completions file {path} does not hash to its name (it was changed)"
        return None
    try:
        lines = [json.loads(line) for line in data.decode("utf-8").splitlines()]
    except (UnicodeDecodeError, ValueError):
        yield f"{path}: not JSON lines"
        return None
    if len(lines) != len(entry["outcomes"]) or not all(
            isinstance(x, dict) and isinstance(x.get("completions"), list)
            and all(isinstance(c, str) for c in x["completions"]) for x in lines):
        yield f"{path}: not one {{task_id, completions}} line per outcome"
        return None
    return lines


def _claimed(outcome: Mapping[str, Any]) -> list[bool]:
    candidates = outcome.get("candidates")
    if isinstance(candidates, list):
        return [c.get("passed") is True for c in candidates]
    return [outcome.get("passed") is True]


def _consistency(outcome: Mapping[str, Any], line: Mapping[str, Any]) -> str | None:
    """Whether an outcome names the completions of its file line and selects right."""
    completions = line["completions"]
    if line.get("task_id") != outcome.get("task_id"):
        return "its completions-file line names another task"
    candidates = outcome.get("candidates")
    if len(completions) > 1 or candidates is not None:
        if not isinstance(candidates, list) or len(candidates) != len(completions):
            return "candidates do not match the completions file"
        if any(not isinstance(c, dict) or c.get("sha256") != sha256_text(text)
               for c, text in zip(candidates, completions, strict=True)):
            return "a candidate's sha256 does not match its completion"
        passed = [c.get("passed") is True for c in candidates]
        chosen = passed.index(True) if any(passed) else 0
        if outcome.get("passed") is not any(passed):
            return "passed does not follow from its candidates"
        if outcome.get("sha256") != sha256_text(completions[chosen]):
            return "the selected completion is not the first that passed"
        return None
    if outcome.get("sha256") != sha256_text(completions[0]):
        return "sha256 does not match its completion"
    if not isinstance(outcome.get("passed"), bool):
        return "passed: not a boolean"
    return None


def _sample(outcomes: Sequence[Mapping[str, Any]], rng: random.Random, size: int) -> list[int]:
    """Which outcomes to re-run: up to half from the claimed passes, the rest from the
    claimed fails, topped up from either; deterministic for one record id."""
    passes = [i for i, o in enumerate(outcomes) if o.get("passed") is True]
    fails = [i for i, o in enumerate(outcomes) if o.get("passed") is not True]
    take_pass = min(len(passes), max(size // 2, size - len(fails)))
    chosen = rng.sample(passes, take_pass) + rng.sample(fails, min(len(fails),
                                                                   size - take_pass))
    return sorted(chosen)
