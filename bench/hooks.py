"""Benchmark: what the reference-transaction hook adds to a commit.

    .venv/bin/python bench/hooks.py [--commits 10] [--records 20]

A temp records repo (our git hooks installed) gets ``--commits`` commits of ``--records``
records each, made through the real ``git commit`` with every hook, three ways:

* on main with the reference-transaction hook (the gates run on the commit it brings),
* on main without it (the baseline: pre-commit only, as before the hook existed),
* on a side branch (its shell prefilter exits before Python starts).

It prints the median seconds per commit of each and the ratio against the baseline, and
the cost of one ref update the prefilter skips (``git update-ref`` of a side branch).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from convergent.layout import RECORDS_DIR
from convergent.recorder import Recorder
from convergent.repo import init_repo

IDENTITY = {"GIT_AUTHOR_NAME": "Bench", "GIT_AUTHOR_EMAIL": "bench@example.com",
            "GIT_COMMITTER_NAME": "Bench", "GIT_COMMITTER_EMAIL": "bench@example.com"}


def _note(n: int) -> dict[str, object]:
    return {"kind": "gap", "claim": f"bench note {n}", "evidence": {"type": "note", "n": n},
            "confidence": 1.0, "source": {"emitter": "bench", "model": "none",
                                          "origin": "self"}}


def _git(root: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=root, check=True, capture_output=True)


def _commits(root: Path, count: int, records: int, start: int) -> list[float]:
    times = []
    for c in range(count):
        with Recorder(root, verify=False) as recorder:
            for n in range(records):
                recorder.emit(_note(start + c * records + n))
        _git(root, "add", RECORDS_DIR)
        began = time.perf_counter()
        _git(root, "commit", "-qm", f"bench commit {c}")
        times.append(time.perf_counter() - began)
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--commits", type=int, default=10)
    parser.add_argument("--records", type=int, default=20)
    args = parser.parse_args()
    os.environ.update(IDENTITY)
    with tempfile.TemporaryDirectory(prefix="convergent-bench-hooks-") as tmp:
        root = init_repo(Path(tmp) / "records")
        hook = root / ".git" / "hooks" / "reference-transaction"
        if not hook.exists():
            print("git < 2.28: no reference-transaction hook to measure", file=sys.stderr)
            return 1
        with_hook = _commits(root, args.commits, args.records, 0)
        saved = hook.read_text()
        hook.unlink()
        baseline = _commits(root, args.commits, args.records, 10**6)
        hook.write_text(saved)
        hook.chmod(0o755)
        _git(root, "checkout", "-q", "-b", "side")
        side = _commits(root, args.commits, args.records, 2 * 10**6)
        began = time.perf_counter()
        for _ in range(20):
            _git(root, "update-ref", "refs/heads/elsewhere", "HEAD")
        skipped = (time.perf_counter() - began) / 20
    base = statistics.median(baseline)
    for name, times in (("main, with reference-transaction", with_hook),
                        ("main, pre-commit only (baseline)", baseline),
                        ("side branch, with reference-transaction", side)):
        median = statistics.median(times)
        print(f"{name:42s} {median:.3f} s/commit  ({median / base:.2f}x baseline)")
    print(f"{'a ref update the prefilter skips':42s} {skipped * 1000:.1f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
