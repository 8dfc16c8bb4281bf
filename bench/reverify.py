"""Benchmark: what the ``levers-first`` gate's re-verification of one measured record costs,
with its sample (4 tasks per measurement) against re-running every outcome (the baseline),
both with a cold verdict cache (as CI runs it in a fresh clone).

    .venv/bin/python bench/reverify.py [--tasks 30] [--n 1]

A real records repo, a scripted member (half its answers right), a measured gap of
``--tasks`` tasks (``--n`` candidates each); then :func:`convergent.outcomes.
measurement_problems` with the gate's sample and with every task, timed in this process.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any


def _tasks(count: int) -> list[dict[str, str]]:
    return [{"task_id": f"bench/{i}", "entry_point": f"add_{i}",
             "prompt": f'def add_{i}(x):\n    """x plus {i}."""\n',
             "test": f"def check(f):\n    assert f(1) == {1 + i}\n    assert f(-{i}) == 0\n"}
            for i in range(count)]


def _member(prompts: list[str], n: int, temperature: float, seed: int) -> list[list[str]]:
    out = []
    for prompt in prompts:
        i = int(prompt.split("add_", 1)[1].split("(", 1)[0])
        body = f"    return x + {i}\n" if i % 2 == 0 else f"    return x - {i}\n"
        out.append([body] * n)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=30)
    parser.add_argument("--n", type=int, default=1)
    args = parser.parse_args()

    from convergent.config import load_config
    from convergent.harness import Harness, allow_unisolated
    from convergent.holdout import task_case
    from convergent.measurement import run_member
    from convergent.outcomes import REVERIFY_PER_MEASUREMENT, measurement_problems
    from convergent.repo import init_repo
    from convergent.sandbox import SandboxLimits

    with tempfile.TemporaryDirectory() as tmp:
        config = load_config(init_repo(Path(tmp) / "records", install_hooks=False))
        tasks = _tasks(args.tasks)

        def cold() -> Any:  # no verdict cache: every case runs in the sandbox
            harness = Harness(None, SandboxLimits.from_config(config), allow_unisolated(config))
            return lambda task, completion: harness.verify(task_case(task, completion)).passed

        start = time.perf_counter()
        measurement = run_member(cold(), tasks, "scripted", _member, n=args.n)
        measure_s = time.perf_counter() - start
        data = measurement.completions_bytes()
        sha = measurement.evidence()["completions_sha256"]
        record = {"id": "sha256:bench", "evidence": {"measured": measurement.pass_rate,
                                                     "measurements": [measurement.evidence()]}}
        files = {f"data/convergence/outcomes/{sha}.jsonl": data}
        timings = {}
        for label, sample in (("gate sample", REVERIFY_PER_MEASUREMENT),
                              ("every task", args.tasks)):
            start = time.perf_counter()
            problems = measurement_problems(record, tasks, files.get, cold(), sample=sample)
            timings[label] = time.perf_counter() - start
            assert problems == [], problems
    print(f"re-verification of one measured record: {args.tasks} tasks x n={args.n}, cold "
          f"cache, bubblewrap sandbox (measuring it took {measure_s:.2f} s)")
    for label, seconds in timings.items():
        print(f"  {label:<12} {seconds:8.2f} s")
    ratio = timings["every task"] / timings["gate sample"]
    print(f"every task / gate sample: {ratio:.1f}x")


if __name__ == "__main__":
    main()
