"""Benchmark: the embedded organism's build and its four properties, measured (CPU).

    .venv/bin/python bench/organism.py [--reuse] [--backend peft|unsloth]

Builds the organism cold into a temp directory (a subprocess, one thread; its time is the
build time), checks the weights' sha256 against the copy in the user cache when there is one
(bit-reproducibility), then measures on the user-cache copy, with the real generation,
sandbox, training and tripwire (:mod:`convergent.trainer.organism_eval`):

    base pass@1 on the 160-task hold-out, greedy and best-of-8 (T=0.5) on the 150-task gap set,
    a LoRA cycle on the 120 verified gap experiences, a collapse cycle (constant answers),

each pass rate with n and SE = sqrt(p(1-p)/n), and the tripwire's decisions. ``--reuse``
skips the cold build and reports the cache copy's build time from its stamp instead.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path


def _cold_build(out: Path) -> tuple[float, float]:
    """Wall and CPU seconds of a cold build into ``out`` (a subprocess)."""
    from convergent.child_process import run_module
    from convergent.trainer.organism import MODULE

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    run_module(MODULE, [str(out)], timeout_s=900, what="building the organism")
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", default="peft", choices=("peft", "unsloth"))
    parser.add_argument("--reuse", action="store_true", help="no cold build")
    args = parser.parse_args()
    # One thread per child: on a shared 2-core box, threads fight each other for tiny matmuls.
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

    from convergent.trainer.organism import default_dir, ensure_organism, read_stamp
    from convergent.trainer.organism_eval import (
        TEMPERATURE,
        difference_se,
        measure_all,
        organism_config,
    )

    def say(message: str) -> None:
        print(f"  {message}", file=sys.stderr, flush=True)

    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="convergent-organism-bench-") as tmp:
        cached_before = read_stamp(default_dir())
        if not args.reuse:
            wall, cpu = _cold_build(Path(tmp) / "cold")
            cold = read_stamp(Path(tmp) / "cold") or {}
            print(f"build (cold): {wall:.1f}s wall, {cpu:.1f}s CPU; pretraining "
                  f"{cold.get('pretrain_s')}s, {cold.get('parameters')} parameters, final "
                  f"loss {cold.get('final_loss')}")
            if cached_before is not None:
                same = cached_before.get("weights_sha256") == cold.get("weights_sha256")
                print(f"bit-reproducible: {same} (weights sha256 "
                      f"{str(cold.get('weights_sha256'))[:16]}, user cache "
                      f"{str(cached_before.get('weights_sha256'))[:16]})")
        base = ensure_organism()
        if args.reuse or cached_before is None:
            print(f"build (user cache, from its stamp): {read_stamp(base)}")
        config = organism_config({"tripwire": {"embeddings": False}})
        figures = measure_all(Path(tmp) / "work", str(base), backend=args.backend, say=say,
                              config=config)
    f = figures
    print(f"organism: {base}")
    print(f"(a) base pass@1, hold-out:      {f.base_holdout}")
    print(f"(b) gap pass@1, greedy:         {f.gap_greedy}")
    print(f"    gap best-of-{f.n}, T={TEMPERATURE}:      {f.gap_best_of_n}   difference "
          f"{f.gap_best_of_n.p - f.gap_greedy.p:+.3f} ± "
          f"{difference_se(f.gap_best_of_n, f.gap_greedy):.3f}")
    print(f"(c) gap pass@1 after the cycle: {f.cycle_gap}   difference "
          f"{f.cycle_gap.p - f.gap_greedy.p:+.3f} ± {difference_se(f.cycle_gap, f.gap_greedy):.3f}")
    print(f"    hold-out after the cycle:   {f.cycle_holdout}; tripwire: "
          f"{'promote' if f.cycle_decision.promote else 'halt'} {f.cycle_decision.reasons}")
    print(f"(d) hold-out after collapse:    {f.collapse_holdout}; tripwire: "
          f"{'promote' if f.collapse_decision.promote else 'halt'} "
          f"{f.collapse_decision.reasons}")
    for name in ("cycle", "collapse"):
        report = f.reports[name]
        print(f"train ({name}): {report['steps']} steps, {report['train_s']:.1f}s training, "
              f"{report['wall_s']:.1f}s in the child, loss {report['losses'][0]:.3f} -> "
              f"{report['loss']:.3f}")
    print("seconds: " + json.dumps(f.seconds))
    print(f"total: {time.perf_counter() - started:.1f}s "
          f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)")


if __name__ == "__main__":
    main()
