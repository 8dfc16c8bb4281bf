"""Benchmark: durable emits per second and emit latency, beside a raw write+fsync baseline.

    .venv/bin/python bench/emit.py [--records 3000] [--batch 1]

For 1 and for 4 processes it measures ``Recorder.emit`` (validate, id, append, fsync)
twice: the append path alone (verification and content screening off, so the log is
what is measured) and with the content screening (decontamination + secrets gates) that
every experience gets at emit. In the same run, a baseline of raw ``os.write`` of the
same bytes + ``fsync`` per batch of the same size. Prints records/s, p50/p99 latency and
the throughput ratio to the baseline. (Sandbox verification, ~0.1 s a program, is
measured by the gates bench, not here.)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve()


def _draft(worker: int, i: int) -> dict[str, object]:
    return {
        # Not add(a, b): a + b is HumanEval/53, which the screening refuses.
        "kind": "experience", "claim": f"w{worker} record {i} returns a times b, plus one",
        "task": f"Write times_{i}(a, b).",
        "response": f"def times_{i}(a, b):\n    return a * b + 1\n",
        "evidence": {"type": "execution", "language": "python",
                     "tests": "def check(f):\n    assert f(1, 2) == 3\n",
                     "entry_point": f"times_{i}"},
        "confidence": 0.9, "source": {"emitter": "bench", "model": "none", "origin": "self"},
    }


def _worker_convergent(root: str, worker: int, count: int, batch: int,
                       screen: bool = False) -> list[float]:
    from convergent.recorder import Recorder

    lat = []
    with Recorder(root, verify=False, screen=screen) as rec:
        for start in range(0, count, batch):
            drafts = [_draft(worker, i) for i in range(start, min(count, start + batch))]
            t = time.perf_counter()
            if batch == 1:
                rec.emit(drafts[0])
            else:
                rec.emit_many(drafts)
            lat.append(time.perf_counter() - t)
    return lat


def _worker_baseline(root: str, worker: int, count: int, batch: int) -> list[float]:
    from convergent.records import Verdict, encode, finalize

    lines = [encode(finalize(_draft(worker, i), Verdict(False, "none"))) for i in range(count)]
    fd = os.open(Path(root) / "baseline.jsonl", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    lat = []
    for start in range(0, count, batch):
        t = time.perf_counter()
        os.write(fd, b"".join(lines[start:start + batch]))
        os.fsync(fd)
        lat.append(time.perf_counter() - t)
    os.close(fd)
    return lat


def _run(kind: str, root: str, procs: int, count: int, batch: int) -> dict[str, float]:
    start = time.perf_counter()
    children = [subprocess.Popen([sys.executable, str(HERE), "--worker", kind, "--root", root,
                                  "--id", str(w), "--records", str(count), "--batch", str(batch)],
                                 stdout=subprocess.PIPE, text=True) for w in range(procs)]
    lat: list[float] = []
    for child in children:
        out, _ = child.communicate()
        assert child.returncode == 0
        lat.extend(json.loads(out))
    wall = time.perf_counter() - start
    lat.sort()
    return {"records_per_s": procs * count / wall, "p50_ms": statistics.median(lat) * 1e3,
            "p99_ms": lat[int(len(lat) * 0.99) - 1] * 1e3}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=3000, help="records per process")
    parser.add_argument("--batch", type=int, default=1, help="records per emit / fsync")
    parser.add_argument("--worker")
    parser.add_argument("--root")
    parser.add_argument("--id", type=int, default=0)
    args = parser.parse_args()
    if args.worker:
        if args.worker == "baseline":
            lat = _worker_baseline(args.root, args.id, args.records, args.batch)
        else:
            lat = _worker_convergent(args.root, args.id, args.records, args.batch,
                                     screen=args.worker == "screened")
        print(json.dumps(lat))
        return
    from convergent.repo import init_repo

    os.environ.setdefault("GIT_AUTHOR_NAME", "bench")
    os.environ.setdefault("GIT_AUTHOR_EMAIL", "bench@example.com")
    os.environ.setdefault("GIT_COMMITTER_NAME", "bench")
    os.environ.setdefault("GIT_COMMITTER_EMAIL", "bench@example.com")
    print(f"emit benchmark: {args.records} records per process, batch {args.batch}")
    for procs in (1, 4):
        with tempfile.TemporaryDirectory() as tmp:
            root = str(init_repo(Path(tmp) / "records", install_hooks=False))
            base = _run("baseline", root, procs, args.records, args.batch)
            runs = {"append path": _run("convergent", root, procs, args.records, args.batch),
                    "with screening": _run("screened", root, procs, args.records,
                                           args.batch)}
        print(f"{procs} process{'es' if procs > 1 else ''}: baseline "
              f"{base['records_per_s']:,.0f} rec/s p50 {base['p50_ms']:.2f} ms "
              f"p99 {base['p99_ms']:.2f} ms")
        for name, ours in runs.items():
            ratio = ours["records_per_s"] / base["records_per_s"]
            print(f"  convergent, {name}: {ours['records_per_s']:,.0f} rec/s "
                  f"p50 {ours['p50_ms']:.2f} ms p99 {ours['p99_ms']:.2f} ms | "
                  f"throughput ratio {ratio:.2f}")

if __name__ == "__main__":
    main()
