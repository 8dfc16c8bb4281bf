"""Benchmark: durable emits per second and emit latency, beside a raw write+fsync baseline.

    .venv/bin/python bench/emit.py [--records 3000] [--batch 1]

For 1 and for 4 processes it measures ``Recorder.emit`` (validate, id, append, fsync)
twice: the append path alone (verification and content screening off, so the log is
what is measured) and with the content screening (decontamination + secrets gates) that
every experience gets at emit. In the same run, a baseline of raw ``os.write`` of the
same bytes + ``fsync`` per batch of the same size. Prints records/s, p50/p99 latency and
the throughput ratio to the baseline. (Sandbox verification, ~0.1 s a program, is
measured by the gates bench, not here.)

Throughput is timed from a go given once every process is started and prepared (for the
baseline its lines encoded; for screening a warm-up screen of a record that hits the
shortlist, so the semantic index, the embedding model and the sandbox are loaded) to the
last record, for every kind alike. That warm-up is the cold cost, printed apart, with how
many timed emits had a record past the prefilter (drafts that share words with an item:
``times_39`` and hold-out task 3's "how many times ... 39") and what each one cost.
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


# What a warm-up screens before the timed run, in every screened process: a record that
# does hit the shortlist (HumanEval/53), so the index, the embedding model and the sandbox
# are loaded then; that cold cost is measured and printed apart from the throughput.
_WARM = {"kind": "experience", "claim": "adds two numbers", "task": "Add two numbers x and y.",
         "response": "def add(x, y):\n    return x + y\n",
         "evidence": {"type": "execution", "language": "python",
                      "tests": "def check(f):\n    assert f(1, 2) == 3\n",
                      "entry_point": "add"},
         "confidence": 0.9, "source": {"emitter": "bench", "model": "none", "origin": "self"}}


def _ready(extra: dict[str, float]) -> None:
    """Tell the parent this process is prepared, and wait for its go (a barrier: every
    process's timed run starts together, after every warm-up)."""
    print(json.dumps(extra), flush=True)
    sys.stdin.readline()


def _worker_convergent(root: str, worker: int, count: int, batch: int,
                       screen: bool = False) -> dict[str, object]:
    from convergent.contamination import screen_for
    from convergent.recorder import Recorder
    from convergent.screening import screen_batch

    lat, hits = [], []
    with Recorder(root, verify=False, screen=screen) as rec:
        cold = 0.0
        shortlisted: object = None
        if screen:
            t = time.perf_counter()
            screen_batch(rec.root, rec.config, [_WARM])
            cold = time.perf_counter() - t
            shortlisted = screen_for(rec.root, rec.config)
        _ready({"cold_s": cold})
        before = getattr(shortlisted, "shortlisted", 0)
        for start in range(0, count, batch):
            drafts = [_draft(worker, i) for i in range(start, min(count, start + batch))]
            t = time.perf_counter()
            if batch == 1:
                rec.emit(drafts[0])
            else:
                rec.emit_many(drafts)
            lat.append(time.perf_counter() - t)
            now = getattr(shortlisted, "shortlisted", 0)
            if now != before:  # a record of this batch got past the prefilter
                hits.append(lat[-1])
                before = now
    return {"lat": lat, "hits": hits}


def _worker_baseline(root: str, worker: int, count: int, batch: int) -> dict[str, object]:
    from convergent.records import Verdict, encode, finalize

    lines = [encode(finalize(_draft(worker, i), Verdict(False, "none"))) for i in range(count)]
    fd = os.open(Path(root) / "baseline.jsonl", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    _ready({"cold_s": 0.0})
    lat = []
    for start in range(0, count, batch):
        t = time.perf_counter()
        os.write(fd, b"".join(lines[start:start + batch]))
        os.fsync(fd)
        lat.append(time.perf_counter() - t)
    os.close(fd)
    return {"lat": lat, "hits": []}


def _run(kind: str, root: str, procs: int, count: int, batch: int) -> dict[str, float]:
    """Throughput from the go (every process prepared and warmed up) to the last record."""
    children = [subprocess.Popen([sys.executable, str(HERE), "--worker", kind, "--root", root,
                                  "--id", str(w), "--records", str(count), "--batch", str(batch)],
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
                for w in range(procs)]
    colds = []
    for child in children:
        assert child.stdout is not None
        colds.append(json.loads(child.stdout.readline())["cold_s"])
    start = time.perf_counter()
    lat: list[float] = []
    hits: list[float] = []
    for child in children:
        assert child.stdin is not None
        child.stdin.write("go\n")
        child.stdin.flush()
    for child in children:
        out, _ = child.communicate()
        assert child.returncode == 0
        result = json.loads(out)
        lat.extend(result["lat"])
        hits.extend(result["hits"])
    wall = time.perf_counter() - start
    lat.sort()
    return {"records_per_s": procs * count / wall, "p50_ms": statistics.median(lat) * 1e3,
            "p99_ms": lat[int(len(lat) * 0.99) - 1] * 1e3,
            "cold_s": statistics.median(colds), "hits": len(hits),
            "hit_ms": statistics.mean(hits) * 1e3 if hits else 0.0}


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
            result = _worker_baseline(args.root, args.id, args.records, args.batch)
        else:
            result = _worker_convergent(args.root, args.id, args.records, args.batch,
                                        screen=args.worker == "screened")
        print(json.dumps(result))
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
        screened, append = runs["with screening"], runs["append path"]
        print(f"  screening / append path: "
              f"{screened['records_per_s'] / append['records_per_s']:.2f}; cold (first "
              f"screen of a shortlisted record, per process, before the timed run): "
              f"{screened['cold_s']:.2f} s; emits whose records hit the shortlist: "
              f"{screened['hits']}, {screened['hit_ms']:.1f} ms each")

if __name__ == "__main__":
    main()
