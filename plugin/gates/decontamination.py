"""The ``decontamination`` gate: experience text shares no n-gram with a benchmark.

Checked against every benchmark registered through the ``register_benchmarks`` hook
(HumanEval ships) and the frozen hold-out; see :mod:`convergent.decontamination`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from itertools import accumulate
from pathlib import Path
from typing import Any

from convergent.decontamination import (
    DEFAULT_N,
    HOLDOUT,
    Benchmark,
    Match,
    NgramIndex,
    cache_path,
    experience_fields,
    holdout_benchmark,
    registered_benchmarks,
)
from convergent.errors import RepoError
from convergent.gates.base import GateContext, NewLine, Problem
from convergent.layout import CONFIG_FILE

GATE = "decontamination"
_INDEXES: dict[tuple[int, tuple[tuple[object, ...], ...]], NgramIndex] = {}
# Fields are joined with a newline, which normalization folds like any whitespace.
_SEPARATOR = "\n"


def check_decontamination(ctx: GateContext) -> Iterator[Problem]:
    experiences = [(line, line.record) for line in ctx.new_lines
                   if line.record is not None and line.record.get("kind") == "experience"]
    if not experiences:
        return
    try:
        index = decontamination_index(ctx.root, ctx.config)
    except (RepoError, OSError) as exc:  # fail closed: an unchecked record must not pass
        yield Problem(CONFIG_FILE, 0, GATE, f"cannot check against the benchmarks: {exc}")
        return
    for line, record in experiences:
        yield from _check_line(index, line, record)


def decontamination_index(root: Path, config: Mapping[str, Any]) -> NgramIndex:
    """One index over every benchmark and the hold-out: the gate and the dataset build share
    it, so training data is decontaminated by exactly the rule commits are."""
    n = int(config.get("decontamination", {}).get("ngram", DEFAULT_N))
    benchmarks = _benchmarks(root, config)
    # A changed benchmark or hold-out gets a new index; an unchanged one is not rebuilt
    # (nor re-hashed) per record.
    key = (n, tuple(_identity(b, n) for b in benchmarks))
    index = _INDEXES.get(key)
    if index is None:
        if len(_INDEXES) >= 8:
            _INDEXES.clear()
        index = _INDEXES[key] = NgramIndex.build(benchmarks, n)
    return index


def _identity(benchmark: Benchmark, n: int) -> tuple[object, ...]:
    """What names a benchmark's content: its file's path, size and mtime when it has one
    (a stat, not a read), else the content hash in its fingerprint file's name."""
    if benchmark.source is not None:
        st = benchmark.source.stat()
        return (benchmark.name, str(benchmark.source), st.st_size, st.st_mtime_ns)
    return (benchmark.name, str(cache_path(benchmark, n)))


def _benchmarks(root: Path, config: Mapping[str, Any]) -> list[Benchmark]:
    found = registered_benchmarks()
    wanted = config.get("decontamination", {}).get("benchmarks", [])
    missing = [name for name in wanted if name not in found]
    if missing:
        raise RepoError(f"[decontamination] benchmarks names {', '.join(missing)}, "
                        "which no installed plugin registers")
    if HOLDOUT not in found:
        found[HOLDOUT] = holdout_benchmark(root, config)
    return list(found.values())


def _check_line(index: NgramIndex, line: NewLine, record: dict[str, Any]
                ) -> Iterator[Problem]:
    fields = experience_fields(record)
    text = _SEPARATOR.join(value for _, value in fields)
    # Start offset of each field in the joined text, to say where a match is.
    starts = list(accumulate((len(value) + len(_SEPARATOR) for _, value in fields),
                             initial=0))
    first: dict[tuple[str, str], Match] = {}
    counts: dict[tuple[str, str], int] = {}
    for match in index.find(text):
        key = (match.benchmark, match.item_id)
        first.setdefault(key, match)
        counts[key] = counts.get(key, 0) + 1
    for key, match in first.items():
        yield Problem(line.path, line.lineno, GATE,
                      _message(match, counts[key], index.n, fields, starts))


def _message(match: Match, count: int, n: int, fields: list[tuple[str, str]],
             starts: list[int]) -> str:
    i = max(j for j in range(len(fields)) if starts[j] <= match.start)
    begin, end = match.start - starts[i], match.end - starts[i]
    more = f" (and {count - 1} more of its {n}-grams)" if count > 1 else ""
    return (f"{fields[i][0]} [{begin}:{end}] shares the {n}-gram \"{match.ngram}\" with "
            f"benchmark {match.benchmark!r} item {match.item_id!r}{more}")
