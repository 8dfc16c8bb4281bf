"""The model organism's task family: simple Python functions, generated from a seed.

Four sub-families of one-line functions, each task a signature and a docstring (the
prompt), a one-line body (the solution) and asserts (the tests, HumanEval format)::

    def add_7(x):
        \"\"\"Return x plus 7.\"\"\"
        return x + 7

- ``arith``: an argument plus, minus or times a constant;
- ``strings``: repeat, head, tail, append a suffix;
- ``compare``: greater / less than a constant, max / min with it;
- ``lists``: the **gap** (under-represented in the organism's pretraining, so the base is
  weak there): map, filter, sum, count over a list.

Every task is a point of a finite space (sub-family, variant, constant, argument name);
:func:`organism_splits` shuffles that space with a seed and cuts it into disjoint sets:
the frozen hold-out (all four sub-families), the gap evaluation set, the experience pool
(verified gap solutions, the cycle's data) and the pretraining corpus. The same seed gives
the same sets, byte for byte; the shipped data files are checked against them.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

FAMILIES = ("arith", "strings", "compare", "lists")
GAP_FAMILY = "lists"
ORGANISM = "organism"  # the base model's and its hold-out's name in the config
SEED = 0
HOLDOUT_PER_FAMILY = 40  # 160 hold-out tasks
GAP_EVAL_SIZE = 150
POOL_SIZE = 120
PRETRAIN_GAP_SIZE = 600  # the gap in pretraining: 600 of 7536 documents (the others: all)
HOLDOUT_FILE = "organism_holdout.jsonl"
GAP_EVAL_FILE = "organism_gap_eval.jsonl"
POOL_FILE = "organism_pool.jsonl"

# One pool of argument names for every sub-family: copying the name off the signature is
# then one skill, not one per sub-family.
_ARGS = ("x", "n", "a", "v", "y", "k", "m", "z", "s", "t", "w", "q")
_CONSTANTS = range(2, 50)
_SUFFIXES = ("ab", "xy", "ok", "ed", "er", "ing", "ly", "s", "zz", "qq", "io", "up")

Task = dict[str, Any]


@dataclass(frozen=True)
class Point:
    """One task of the space: its sub-family, variant, constant (or suffix) and argument."""

    family: str
    variant: str
    const: int | str
    arg: str

    @property
    def task_id(self) -> str:
        return f"organism/{self.family}/{self.variant}_{self.const}/{self.arg}"


@dataclass(frozen=True)
class Variant:
    name: str  # also the function name's stem
    doc: str  # format fields: {a} argument, {k} constant
    body: str
    inputs: Callable[[int | str], list[Any]]
    reference: Callable[[Any, Any], Any]


def second(k: int) -> int:
    """The second constant of the two-constant variants: a fixed function of the first,
    larger than it, that the model still has to read off the docstring."""
    return k + 3 + (k * 7) % 40


def _ints(k: int | str) -> list[Any]:
    assert isinstance(k, int)
    return [0, k + 3, 2 * k - 1, -k]


def _around(k: int | str) -> list[Any]:
    assert isinstance(k, int)
    return [k + 1, k - 1, k, k + 9, -k]


def _strs(_: int | str) -> list[Any]:
    return ["convergent", "abcdefghijklmnop", "", "hi"]


def _lists(k: int | str) -> list[Any]:
    assert isinstance(k, int)
    return [[1, k, 3 * k, k + 1], [k, k, 0], [], [2 * k, -k, k - 1]]


def _nonempty_lists(k: int | str) -> list[Any]:
    return [xs for xs in _lists(k) if xs]


def _int_k(fn: Callable[[Any, int], Any]) -> Callable[[Any, Any], Any]:
    return lambda x, k: fn(x, int(k))


VARIANTS: dict[str, tuple[Variant, ...]] = {
    "arith": (
        Variant("add", "Return {a} plus {k}.", "return {a} + {k}", _ints,
                _int_k(lambda x, k: x + k)),
        Variant("sub", "Return {a} minus {k}.", "return {a} - {k}", _ints,
                _int_k(lambda x, k: x - k)),
        Variant("mul", "Return {a} times {k}.", "return {a} * {k}", _ints,
                _int_k(lambda x, k: x * k)),
        Variant("affine", "Return {a} times {k} plus {j}.", "return {a} * {k} + {j}", _ints,
                _int_k(lambda x, k: x * k + second(k))),
    ),
    "strings": (
        Variant("repeat", "Return {a} repeated {k} times.", "return {a} * {k}", _strs,
                _int_k(lambda s, k: s * k)),
        Variant("head", "Return the first {k} characters of {a}.", "return {a}[:{k}]", _strs,
                _int_k(lambda s, k: s[:k])),
        Variant("tail", "Return the last {k} characters of {a}.", "return {a}[-{k}:]", _strs,
                _int_k(lambda s, k: s[-k:])),
        Variant("append", "Return {a} with '{k}' appended.", "return {a} + '{k}'", _strs,
                lambda s, k: s + str(k)),
    ),
    "compare": (
        Variant("above", "Return True if {a} is greater than {k}.", "return {a} > {k}", _around,
                _int_k(lambda x, k: x > k)),
        Variant("below", "Return True if {a} is less than {k}.", "return {a} < {k}", _around,
                _int_k(lambda x, k: x < k)),
        Variant("atleast", "Return the larger of {a} and {k}.", "return max({a}, {k})", _around,
                _int_k(max)),
        Variant("atmost", "Return the smaller of {a} and {k}.", "return min({a}, {k})", _around,
                _int_k(min)),
        Variant("within", "Return True if {a} is between {k} and {j}.",
                "return {k} < {a} < {j}", _around, _int_k(lambda x, k: k < x < second(k))),
    ),
    "lists": (
        Variant("total", "Return the sum of {a} plus {k}.", "return sum({a}) + {k}", _lists,
                _int_k(lambda xs, k: sum(xs) + k)),
        Variant("tally", "Return how many items of {a} equal {k}.", "return {a}.count({k})",
                _lists, _int_k(lambda xs, k: xs.count(k))),
        Variant("scale", "Return the length of {a} times {k}.", "return len({a}) * {k}",
                _lists, _int_k(lambda xs, k: len(xs) * k)),
        Variant("peak", "Return the largest item of {a} plus {k}.", "return max({a}) + {k}",
                _nonempty_lists, _int_k(lambda xs, k: max(xs) + k)),
    ),
}


def _variant(point: Point) -> Variant:
    return next(v for v in VARIANTS[point.family] if v.name == point.variant)


def space(family: str) -> list[Point]:
    """Every task of ``family``, in a fixed order."""
    points: list[Point] = []
    for variant in VARIANTS[family]:
        consts: tuple[int | str, ...] = _SUFFIXES if variant.name == "append" else tuple(_CONSTANTS)
        for const in consts:
            points.extend(Point(family, variant.name, const, arg) for arg in _ARGS)
    return points


def make_task(point: Point) -> Task:
    """The HumanEval-format task of ``point`` (with its canonical solution and sub-family)."""
    variant = _variant(point)
    name = f"{variant.name}_{point.const}"
    j = second(point.const) if isinstance(point.const, int) else ""
    doc = variant.doc.format(a=point.arg, k=point.const, j=j)
    prompt = f'def {name}({point.arg}):\n    """{doc}"""\n'
    solution = f"    {variant.body.format(a=point.arg, k=point.const, j=j)}\n"
    expected = [(value, variant.reference(value, point.const))
                for value in variant.inputs(point.const)]
    asserts = "".join(f"    assert candidate({value!r}) == {out!r}\n" for value, out in expected)
    return {"task_id": point.task_id, "prompt": prompt, "entry_point": name,
            "canonical_solution": solution, "test": f"def check(candidate):\n{asserts}",
            "family": point.family}


@dataclass(frozen=True)
class Splits:
    """Disjoint task sets of one seed."""

    holdout: list[Task]
    gap_eval: list[Task]
    pool: list[Task]
    pretrain: list[Task]


def organism_splits(seed: int = SEED) -> Splits:
    """The hold-out, gap evaluation set, experience pool and pretraining tasks of ``seed``."""
    rng = random.Random(seed)
    holdout: list[Task] = []
    gap_eval: list[Task] = []
    pool: list[Task] = []
    pretrain: list[Task] = []
    for family in FAMILIES:
        points = space(family)
        rng.shuffle(points)
        tasks = [make_task(p) for p in points]
        holdout += tasks[:HOLDOUT_PER_FAMILY]
        rest = tasks[HOLDOUT_PER_FAMILY:]
        if family == GAP_FAMILY:
            gap_eval += rest[:GAP_EVAL_SIZE]
            pool += rest[GAP_EVAL_SIZE:GAP_EVAL_SIZE + POOL_SIZE]
            start = GAP_EVAL_SIZE + POOL_SIZE
            pretrain += rest[start:start + PRETRAIN_GAP_SIZE]
        else:
            pretrain += rest
    rng.shuffle(holdout)
    rng.shuffle(pretrain)
    return Splits(holdout, gap_eval, pool, pretrain)


def pretraining_texts(seed: int = SEED) -> Iterator[str]:
    """The pretraining documents: each pretraining task's prompt and solution."""
    for task in organism_splits(seed).pretrain:
        yield task["prompt"] + task["canonical_solution"]


def replay_items(seed: int = SEED) -> Iterator[dict[str, str]]:
    """The organism's external (non-self) training data: pretraining tasks with their
    solutions, in pretraining order. Replaying its own distribution beside the gap's
    experiences is what keeps a cycle from forgetting the other sub-families (Python's
    standard library, the default external set, is not a language this model speaks)."""
    for task in organism_splits(seed).pretrain:
        yield {"id": f"organism-replay:{task['task_id']}", "prompt": task["prompt"],
               "completion": task["canonical_solution"], "origin": "external"}


def _data_path(name: str) -> Path:
    return Path(str(resources.files("convergent.data") / name))


def holdout_path() -> Path:
    """The organism's frozen hold-out (shipped): 160 tasks over the four sub-families."""
    return _data_path(HOLDOUT_FILE)


def gap_eval_path() -> Path:
    """The gap's evaluation set (shipped): lists tasks, for ``gap measure --eval``."""
    return _data_path(GAP_EVAL_FILE)


def pool_path() -> Path:
    """The experience pool (shipped): gap tasks with their verified ``completion``."""
    return _data_path(POOL_FILE)


def pool_rows(seed: int = SEED) -> list[Task]:
    """The pool as shipped: each gap task with its solution as the ``completion``."""
    return [{**task, "completion": task["canonical_solution"]}
            for task in organism_splits(seed).pool]


def _read(path: Path) -> list[Task]:
    from convergent.holdout import read_tasks

    return read_tasks(path)


def read_holdout() -> list[Task]:
    return _read(holdout_path())


def read_gap_eval() -> list[Task]:
    return _read(gap_eval_path())


def read_pool() -> list[Task]:
    """The shipped experience pool; a row without its string ``completion`` is refused."""
    from convergent.errors import RepoError

    rows = _read(pool_path())
    for number, row in enumerate(rows, 1):
        if not isinstance(row.get("completion"), str) or not row["completion"].strip():
            raise RepoError(f"{pool_path()}:{number}: completion: missing or not a string")
    return rows


def holdout_sha256() -> str:
    """The frozen sha256 of the organism's hold-out (as ``convergent holdout freeze`` has it)."""
    from convergent.holdout import tasks_sha256

    return tasks_sha256(read_holdout())


def organism_tripwire_config() -> dict[str, Any]:
    """The ``[tripwire]`` table of a records repo on the organism: its own frozen hold-out."""
    # A body is one line (about a dozen tokens): 32 new tokens leave room to spare.
    return {"holdout": ORGANISM, "holdout_sha256": holdout_sha256(), "max_new_tokens": 32}


# Best-of-N samples the organism at this temperature: best-of-8 measured 0.46 on the gap set
# at 0.5 against 0.19 at 1.0, no better than greedy (bench/organism.py).
SAMPLING_TEMPERATURE = 0.5


def organism_repo_config() -> dict[str, dict[str, Any]]:
    """What ``convergent init --base organism`` sets beside ``[base] model``: its own frozen
    hold-out, short generations (a body is one line) and the cycle's measured knobs: 60 LoRA
    steps at batch 8 and learning rate 3e-3 raise the gap's pass@1 (bench/organism.py), and
    half the data replayed from its own pretraining keeps the hold-out (measured on the demo's
    106 experiences: a 0.2 share of replay, 160-task hold-out 108 -> 106, a 0.5 share 108 ->
    109; the gap rose either way, 28/150 -> 48 and 45)."""
    # The tolerance (two of 160 tasks) stays under one standard error of the hold-out (0.037
    # at p = 0.675): what it lets through is sampling noise; a collapse (0.675 -> 0) halts.
    return {"tripwire": {**organism_tripwire_config(), "pass_rate_tolerance": 0.0125},
            "members": {"max_new_tokens": 32},
            "cycle": {"max_steps": 60, "batch_size": 8, "learning_rate": 3e-3,
                      "external": [ORGANISM], "external_share": 0.5}}


def data_files(seed: int = SEED) -> dict[str, str]:
    """The shipped data files' exact text, regenerated from ``seed``."""
    import json

    splits = organism_splits(seed)

    def jsonl(rows: list[Task]) -> str:
        return "".join(json.dumps(row, sort_keys=True) + "\n" for row in rows)

    return {HOLDOUT_FILE: jsonl(splits.holdout), GAP_EVAL_FILE: jsonl(splits.gap_eval),
            POOL_FILE: jsonl(pool_rows(seed))}


def main(argv: list[str] | None = None) -> int:
    """``python -m convergent.organism_tasks DIR``: write the data files into DIR."""
    import sys

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m convergent.organism_tasks DIR", file=sys.stderr)
        return 2
    for name, text in data_files().items():
        (Path(args[0]) / name).write_text(text, "utf-8")
        print(Path(args[0]) / name)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
