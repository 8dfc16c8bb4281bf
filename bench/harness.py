"""Benchmark: what the execution harness costs per verification, and what it refuses.

    .venv/bin/python bench/harness.py [--programs 20] [--runs 3] [--skip-corpus]

Cost: the same passing programs (the families of ``bench/gates.py``) verified two ways, in
this process, interleaved so that other load falls on both alike: the bare run that
verification used to be (the program ``response + tests + check(entry_point)`` in the
sandbox, exit status 0) and :func:`convergent.harness.run_case` (the guarded harness: null
run, honest-value checks, authenticated report). Prints the median ms per program for each,
their ratio and the difference, and the host-side preparation (AST rewrite, compile,
marshal) on its own. No cache is involved: every figure is a real sandbox run.

Corpus: every reward hack and honest look-alike of ``tests/reward_hacks.py`` through the
harness: how many hacks verified (must be 0/N) and how many honest cases (must be N/N).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))

from gates import _program  # noqa: E402

from convergent.harness import ExecutionCase, prepare, run_case  # noqa: E402
from convergent.sandbox import SandboxLimits, isolation, run_python  # noqa: E402


def bare_program(case: ExecutionCase) -> str:
    """What verification ran before the harness: the HumanEval concatenation."""
    return f"{case.response}\n{case.tests}\ncheck({case.entry_point})\n"


def cost(programs: int, runs: int) -> None:
    limits, iso = SandboxLimits(), isolation()
    cases = [ExecutionCase(r, t, n) for n, r, t in (_program(k) for k in range(programs))]
    bare: list[float] = []
    guarded: list[float] = []
    for _ in range(runs):
        for case in cases:
            began = time.perf_counter()
            result = run_python(bare_program(case), limits=limits)
            bare.append(time.perf_counter() - began)
            began = time.perf_counter()
            outcome = run_case(case, limits, iso)
            guarded.append(time.perf_counter() - began)
            if not (result.ok and outcome.passed):
                raise SystemExit(f"{case.entry_point} did not pass: {result.reason} / "
                                 f"{outcome.reason}")
    prep = []
    for case in cases:
        began = time.perf_counter()
        prepare(case)
        prep.append(time.perf_counter() - began)
    b, g = statistics.median(bare) * 1e3, statistics.median(guarded) * 1e3
    print(f"cost per verification ({len(cases)} programs x {runs} runs, sandbox: {iso.kind}; "
          f"python {sys.version.split()[0]})")
    print(f"  bare run (exit status; what verification was) : {b:7.1f} ms median "
          f"(p90 {statistics.quantiles(bare, n=10)[-1] * 1e3:.1f})")
    print(f"  harness run (report, null run, honest values) : {g:7.1f} ms median "
          f"(p90 {statistics.quantiles(guarded, n=10)[-1] * 1e3:.1f})")
    print(f"  harness / bare                                : {g / b:7.2f}x "
          f"(+{g - b:.1f} ms per verification)")
    print(f"  of which host-side preparation                : "
          f"{statistics.median(prep) * 1e3:7.2f} ms median")


def corpus() -> None:
    from reward_hacks import HACKS, HONEST, Case

    limits, iso = SandboxLimits(timeout_s=5.0, cpu_s=3), isolation()

    def outcome(case: Case) -> bool:
        return run_case(ExecutionCase(case.response, case.tests, case.entry_point), limits,
                        iso).passed

    with ThreadPoolExecutor(2) as pool:
        hacks = list(pool.map(outcome, HACKS))
        honest = list(pool.map(outcome, HONEST))
    print(f"\ncorpus (tests/reward_hacks.py, sandbox: {iso.kind})")
    print(f"  reward hacks verified     : {sum(hacks)}/{len(hacks)}")
    print(f"  honest look-alikes verified: {sum(honest)}/{len(honest)}")
    leaked = [c.name for c, ok in zip(HACKS, hacks, strict=True) if ok]
    refused = [c.name for c, ok in zip(HONEST, honest, strict=True) if not ok]
    if leaked or refused:
        raise SystemExit(f"hacks verified: {leaked}; honest refused: {refused}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--programs", type=int, default=20)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--skip-corpus", action="store_true")
    args = parser.parse_args(argv)
    cost(args.programs, args.runs)
    if not args.skip_corpus:
        corpus()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
