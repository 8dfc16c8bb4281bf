"""Gate ``benchmark-not-target``: public benchmarks are instruments, never targets.

No proposal, cycle record, gap evaluation set, cycle config or hold-out may name a
public benchmark as what it trains for or is scored on.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from convergent.config import parse_config
from convergent.errors import RepoError
from convergent.gates.base import GateContext, Problem
from convergent.layout import CONFIG_FILE
from convergent.records import Record

GATE = "benchmark-not-target"
PUBLIC_BENCHMARKS = ("humaneval", "mbpp", "apps", "gsm8k", "mmlu", "math", "livecodebench",
                     "swebench", "bigcodebench", "arc", "hellaswag", "truthfulqa", "ds1000")
TARGET_KINDS = ("gap", "proposal", "cycle")
# Fields where a name would make a benchmark the target (free text like claims is not).
TARGET_FIELDS = ("eval", "target_set", "holdout", "dataset", "train_on", "benchmark", "metric")


def _squash(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


def named_benchmark(value: Any) -> str | None:
    """The public benchmark a string value names (``HumanEval``, ``human-eval`` ...)."""
    if isinstance(value, str):
        squashed = _squash(value)
        for name in PUBLIC_BENCHMARKS:
            if squashed == name or squashed.startswith(name) and len(name) > 4:
                return name
    elif isinstance(value, dict):
        for key, item in value.items():
            if key in TARGET_FIELDS or isinstance(item, dict | list):
                found = named_benchmark(item)
                if found:
                    return found
    elif isinstance(value, list):
        for item in value:
            found = named_benchmark(item)
            if found:
                return found
    return None


def check_benchmark_not_target(ctx: GateContext) -> Iterator[Problem]:
    for line in ctx.new_lines:
        if line.record is None:
            continue
        record = Record(line.record)
        if record.kind not in TARGET_KINDS:
            continue
        # The evidence as written, whatever its type: a malformed one may name one too.
        found = named_benchmark(record.raw.get("evidence", {}))
        if found:
            yield Problem(line.path, line.lineno, GATE,
                          f"{record.kind} names the public benchmark {found!r} as its target; "
                          "benchmarks are read-only instruments")
    for change in ctx.files:
        if change.path != CONFIG_FILE or not change.new:
            continue
        try:
            table = parse_config(change.new.decode("utf-8"))
        except (RepoError, UnicodeDecodeError):
            continue  # never-removed reports an unreadable config
        for section in ("cycle", "tripwire"):
            found = named_benchmark(table.get(section, {}))
            if found:
                yield Problem(CONFIG_FILE, 1, GATE,
                              f"[{section}] names the public benchmark {found!r}; the hold-out "
                              "and the training data may not be a public benchmark")
