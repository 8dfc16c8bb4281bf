"""Benchmark: wall time of each stage of one real cycle on the tiny model (CPU).

    .venv/bin/python bench/cycle.py [--backend peft] [--experiences 20] [--steps 30]

Runs the real flow in a temp records repo with its git hooks installed: experiences,
gap, three levers, a proposal, the operator's merge, then the cycle (dataset build,
training in a subprocess, the tripwire on the default 90-task hold-out, registry,
commits). Prints each stage's seconds, and the share of the cycle that is not training
(target: under 20%, counted over dataset + training + registry + commits+, the cycle's own
work; the tripwire's evaluation is model inference and is shown separately).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
OPERATOR = ("Ada Operator", "ada@example.com")


def _git(root: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=root, check=True, capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", default="peft", choices=("peft", "unsloth"))
    parser.add_argument("--experiences", type=int, default=20)
    parser.add_argument("--steps", type=int, default=30)
    args = parser.parse_args()
    sys.path.insert(0, str(HERE.parent / "tests"))
    from drafts import experience

    from convergent.gaps import record_gap, record_lever
    from convergent.on_merge import on_merge
    from convergent.proposals import propose
    from convergent.recorder import Recorder
    from convergent.repo import init_repo
    from convergent.trainer import cycle

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    with tempfile.TemporaryDirectory() as tmp:
        root = init_repo(Path(tmp) / "records", operators=[f"{OPERATOR[0]} <{OPERATOR[1]}>"])
        _git(root, "config", "user.name", "Bench Agent")
        _git(root, "config", "user.email", "bench@example.com")
        config = root / ".convergent.toml"
        text = config.read_text().replace('backend = "auto"', f'backend = "{args.backend}"')
        config.write_text(text.replace("max_steps = 30", f"max_steps = {args.steps}")
                          .replace("autostart = true", "autostart = false")
                          # typed lever numbers: this bench times the cycle, not the levers
                          .replace("allow_reported = false", "allow_reported = true"))
        _git(root, "commit", "-qam", "bench config")
        with Recorder(root) as recorder:
            for n in range(args.experiences):
                recorder.emit(experience(n))
            recorder.commit()
        (root / "evals").mkdir()
        (root / "evals/e.jsonl").write_text(json.dumps({
            "task_id": "e/0", "entry_point": "f", "prompt": "def f(x):\n",
            "test": "def check(f):\n    assert f(1) == 2\n"}) + "\n")
        record_gap(root, "bench", "pass@1", 0.9, "evals/e.jsonl", 0.1)
        for lever, value in (("route", 0.2), ("verify_best_of_n", 0.3), ("rag", 0.4)):
            record_lever(root, "bench", lever, value, {"bench": True})
        proposal = propose(root, "bench")
        _git(root, "-c", f"user.name={OPERATOR[0]}", "-c", f"user.email={OPERATOR[1]}",
             "merge", "--no-ff", "-m", "approve", proposal.branch)
        on_merge(root)
        start = time.perf_counter()
        [record] = cycle.run_due_cycles(root, say=lambda message: None)
        wall = time.perf_counter() - start
    # The cycle record keeps each stage's seconds up to the registry; what follows the
    # record (its commits, the promotion commit and tag, the cycle_ended hook) and the
    # due-check before the cycle are the rest of the measured wall time.
    stages = dict(record["evidence"]["stages_s"])
    stages["commits+"] = round(wall - sum(stages.values()), 4)
    print(f"cycle benchmark: {args.backend} backend, {args.experiences} experiences, "
          f"{args.steps} steps, tiny model, CPU; outcome {record['evidence']['outcome']}")
    for name, seconds in stages.items():
        print(f"  {name:<10} {seconds:8.2f} s")
    print(f"  {'total':<10} {wall:8.2f} s")
    own = {k: v for k, v in stages.items() if k != "tripwire"}
    overhead = sum(v for k, v in own.items() if k != "training")
    share = overhead / sum(own.values())
    print(f"not-training share of dataset+training+registry+commits+: {share:.1%} "
          f"(target < 20%) -> {'PASS' if share < 0.2 else 'FAIL'}")
    print(f"tripwire share of the whole cycle: {stages.get('tripwire', 0) / wall:.1%}")


if __name__ == "__main__":
    main()
