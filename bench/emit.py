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
last record, for every kind alike: each process reports its latencies as soon as its last
record is durable, and the clock stops at the last report (not at the processes' exit,
which for a process holding torch takes long and is no emit's work). That warm-up is the
cold cost, printed apart. The warm-up record and every draft carry a tag new to each run:
punctuation in the claim, so no word changes for the lexical stages and the same drafts
hit the shortlist in every run, but no text is in the embedding cache of an earlier run:
the warm-up loads the model for real, and a timed record that hits the shortlist pays what
a new record would (its embedding with a warm model, its sandbox
runs). The bench prints how many timed emits had a record past the prefilter (drafts that
share words with an item: ``times_39`` and hold-out task 3's "how many times ... 39",
one in every process that emits 40 records or more; the bench checks it) and what each
one cost, and the throughput ratio of the other emits too (the measured wall less the
measured hit emits, per process), since with 1,000 records one sandbox run is a large
share of the total.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve()


def _draft(worker: int, i: int, tag: str) -> dict[str, object]:
    return {
        # Not add(a, b): a + b is HumanEval/53, which the screening refuses.
        "kind": "experience",
        "claim": f"w{worker} record {i} returns a times b, plus one {tag}",
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
def _tag() -> str:
    """Punctuation new to each run: no word for the lexical stages (which read letters
    and digits only), new text for the embedding cache."""
    pick = random.SystemRandom().choice
    return "".join(pick("~^*+!?") for _ in range(16))


# The tag makes its text new to the embedding cache, so the model is loaded then.
def _warm(tag: str) -> dict[str, object]:
    return {"kind": "experience", "claim": f"adds two numbers {tag}",
            "task": "Add two numbers x and y.", "response": "def add(x, y):\n    return x + y\n",
            "evidence": {"type": "execution", "language": "python",
                         "tests": "def check(f):\n    assert f(1, 2) == 3\n",
                         "entry_point": "add"},
            "confidence": 0.9,
            "source": {"emitter": "bench", "model": "none", "origin": "self"}}


def _ready(extra: dict[str, float]) -> None:
    """Tell the parent this process is prepared, and wait for its go (a barrier: every
    process's timed run starts together, after every warm-up)."""
    print(json.dumps(extra), flush=True)
    sys.stdin.readline()


def _worker_convergent(root: str, worker: int, count: int, batch: int, tag: str,
                       screen: bool = False) -> dict[str, object]:
    from convergent.contamination import screen_for
    from convergent.recorder import Recorder
    from convergent.screening import screen_batch

    lat, hits, hit_records = [], [], 0
    with Recorder(root, verify=False, screen=screen) as rec:
        cold = 0.0
        shortlisted: object = None
        if screen:
            t = time.perf_counter()
            screen_batch(rec.root, rec.config, [_warm(tag + "!" * (worker + 1))])
            cold = time.perf_counter() - t
            shortlisted = screen_for(rec.root, rec.config)
        _ready({"cold_s": cold})
        before = getattr(shortlisted, "shortlisted", 0)
        for start in range(0, count, batch):
            drafts = [_draft(worker, i, tag) for i in range(start, min(count, start + batch))]
            t = time.perf_counter()
            if batch == 1:
                rec.emit(drafts[0])
            else:
                rec.emit_many(drafts)
            lat.append(time.perf_counter() - t)
            now = getattr(shortlisted, "shortlisted", 0)
            if now != before:  # a record of this batch got past the prefilter
                hits.append(lat[-1])
                hit_records += len(drafts)
                before = now
    return {"lat": lat, "hits": hits, "hit_records": hit_records}


def _worker_baseline(root: str, worker: int, count: int, batch: int, tag: str
                     ) -> dict[str, object]:
    from convergent.records import Verdict, encode, finalize

    lines = [encode(finalize(_draft(worker, i, tag), Verdict(False, "none"))) for i in range(count)]
    fd = os.open(Path(root) / "baseline.jsonl", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    _ready({"cold_s": 0.0})
    lat = []
    for start in range(0, count, batch):
        t = time.perf_counter()
        os.write(fd, b"".join(lines[start:start + batch]))
        os.fsync(fd)
        lat.append(time.perf_counter() - t)
    os.close(fd)
    return {"lat": lat, "hits": [], "hit_records": 0}


def _run(kind: str, root: str, procs: int, count: int, batch: int, tag: str
         ) -> dict[str, float]:
    """Throughput from the go (every process prepared and warmed up) to the last record
    (the last process's report, sent as soon as its last record is durable)."""
    children = [subprocess.Popen([sys.executable, str(HERE), "--worker", kind, "--root", root,
                                  "--id", str(w), "--records", str(count), "--batch", str(batch),
                                  "--tag", tag],
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
                for w in range(procs)]
    colds = []
    for child in children:
        assert child.stdout is not None
        colds.append(json.loads(child.stdout.readline())["cold_s"])
    start = time.perf_counter()
    for child in children:
        assert child.stdin is not None
        child.stdin.write("go\n")
        child.stdin.flush()
    results = []
    for child in children:
        assert child.stdout is not None
        results.append(json.loads(child.stdout.readline()))
    wall = time.perf_counter() - start
    for child in children:
        child.communicate()
        assert child.returncode == 0
    lat = sorted(x for r in results for x in r["lat"])
    hits = [x for r in results for x in r["hits"]]
    if kind == "screened" and count >= 40 and any(not r["hits"] for r in results):
        raise SystemExit("a screened process had no emit past the prefilter: the bench no "
                         "longer measures a record that hits the shortlist")
    # The other emits: the wall less the slowest process's hit emits, their records less.
    hit_wall = max(sum(r["hits"]) for r in results)
    hit_records = sum(r["hit_records"] for r in results)
    return {"records_per_s": procs * count / wall, "p50_ms": statistics.median(lat) * 1e3,
            "p99_ms": lat[int(len(lat) * 0.99) - 1] * 1e3,
            "cold_s": statistics.median(colds), "hits": len(hits),
            "hit_ms": statistics.mean(hits) * 1e3 if hits else 0.0,
            "others_per_s": (procs * count - hit_records) / (wall - hit_wall)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=3000, help="records per process")
    parser.add_argument("--batch", type=int, default=1, help="records per emit / fsync")
    parser.add_argument("--worker")
    parser.add_argument("--root")
    parser.add_argument("--id", type=int, default=0)
    parser.add_argument("--tag", default="")
    args = parser.parse_args()
    if args.worker:
        if args.worker == "baseline":
            result = _worker_baseline(args.root, args.id, args.records, args.batch, args.tag)
        else:
            result = _worker_convergent(args.root, args.id, args.records, args.batch,
                                        args.tag, screen=args.worker == "screened")
        print(json.dumps(result), flush=True)
        return
    from convergent.repo import init_repo

    os.environ.setdefault("GIT_AUTHOR_NAME", "bench")
    os.environ.setdefault("GIT_AUTHOR_EMAIL", "bench@example.com")
    os.environ.setdefault("GIT_COMMITTER_NAME", "bench")
    os.environ.setdefault("GIT_COMMITTER_EMAIL", "bench@example.com")
    print(f"emit benchmark: {args.records} records per process, batch {args.batch}")
    run = _tag()  # new text for the embedding cache (see the module's docstring)
    for procs in (1, 4):
        tag = run + "^" * procs
        with tempfile.TemporaryDirectory() as tmp:
            root = str(init_repo(Path(tmp) / "records", install_hooks=False))
            base = _run("baseline", root, procs, args.records, args.batch, tag)
            runs = {"append path": _run("convergent", root, procs, args.records, args.batch,
                                        tag),
                    "with screening": _run("screened", root, procs, args.records,
                                           args.batch, tag)}
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
              f"{screened['cold_s']:.2f} s")
        print(f"  emits whose records hit the shortlist: {screened['hits']} "
              f"({screened['hits'] // procs} a process), {screened['hit_ms']:.1f} ms each; "
              f"the other emits (wall less the hit emits): "
              f"{screened['others_per_s']:,.0f} rec/s, throughput ratio "
              f"{screened['others_per_s'] / base['records_per_s']:.2f}, "
              f"{screened['others_per_s'] / append['records_per_s']:.2f} of the append path")


if __name__ == "__main__":
    main()
