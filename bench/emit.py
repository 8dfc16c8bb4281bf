"""Benchmark: durable emits per second and emit latency, beside a raw write+fsync baseline.

    .venv/bin/python bench/emit.py [--records 3000] [--batch 1] [--rounds 50] [--procs 1,4]

For 1 and for 4 processes it measures ``Recorder.emit`` (validate, id, append, fsync)
twice: the append path alone (verification and content screening off, so the log is
what is measured) and with the content screening (decontamination + secrets gates) that
every experience gets at emit. In the same run, a baseline of raw ``os.write`` of the
same bytes + ``fsync`` per batch of the same size. Prints records/s, p50/p99 latency and
the throughput ratio to the baseline. (Sandbox verification, ~0.1 s a program, is
measured by the gates bench, not here.)

Every kind's processes are started and prepared first (for the baseline its lines
encoded; for screening a warm-up screen of a record that hits the shortlist, so the
semantic index, the embedding model and the sandbox are loaded: that is the cold cost,
printed apart). Then the records are emitted in ``--rounds`` rounds, and in each round
every kind emits its share in turn (baseline, append path, screening), so that the load
of a shared machine, whose fsync latency swings several-fold from minute to minute, falls
on all kinds alike. A round of a kind is timed from the first of its processes' start to
the last one's last durable record (each process reports both instants on the system-wide
monotonic clock); a kind's throughput is its records over the sum of its rounds. The
median and quartiles of the rounds' ratios are printed too, to show the spread.

The warm-up record and every draft carry a tag new to each run: punctuation in the claim,
so no word changes for the lexical stages and the same drafts hit the shortlist in every
run, but no text is in the embedding cache of an earlier run: the warm-up loads the model
for real, and a timed record that hits the shortlist pays what a new record would (its
embedding with a warm model, its sandbox runs). The bench prints how many timed emits had
a record past the prefilter (drafts that share words with an item: ``times_39`` and
hold-out task 3's "how many times ... 39", one in every process that emits 40 records or
more; the bench checks it) and what each one cost, and the throughput ratio of the other
emits too (the measured time less the measured hit emits, of the slowest process), since
with 1,000 records one sandbox run is a large share of the total.

Last, ``--split`` records (300; 0 skips it) go through emit's stages in this process, one
record at a time and with no write or fsync between them, each stage timed apart: the
draft's checks, id and line (validate + finalize); the decontamination check; the secrets
scan. Records that get past the decontamination prefilter are left out (their sandbox run
is the hit cost above). That is each stage's hot CPU per record beside the baseline's
write+fsync: what a batch-1 emit must fit in for a given throughput ratio (before the
slowdown each fsync leaves the next record's work with).
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
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()
KINDS = ("baseline", "append path", "with screening")


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


def _tag() -> str:
    """Punctuation new to each run: no word for the lexical stages (which read letters
    and digits only), new text for the embedding cache."""
    pick = random.SystemRandom().choice
    return "".join(pick("~^*+!?") for _ in range(16))


# What a warm-up screens before the timed run, in every screened process: a record that
# does hit the shortlist (HumanEval/53), so the index, the embedding model and the sandbox
# are loaded then; that cold cost is measured and printed apart from the throughput. The
# tag makes its text new to the embedding cache, so the model is loaded then.
def _warm(tag: str) -> dict[str, object]:
    return {"kind": "experience", "claim": f"adds two numbers {tag}",
            "task": "Add two numbers x and y.", "response": "def add(x, y):\n    return x + y\n",
            "evidence": {"type": "execution", "language": "python",
                         "tests": "def check(f):\n    assert f(1, 2) == 3\n",
                         "entry_point": "add"},
            "confidence": 0.9,
            "source": {"emitter": "bench", "model": "none", "origin": "self"}}


def _now() -> float:
    """The system-wide monotonic clock: instants of different processes compare."""
    return time.clock_gettime(time.CLOCK_MONOTONIC)


def _serve(batch: int, prepare: Callable[[int, int], Any], emit: Callable[[Any], None],
           shortlisted: Callable[[], int]) -> None:
    """Serve rounds: for each "START COUNT" line on stdin, emit those records in batches
    (each batch prepared untimed, then emitted and timed) and report the latencies, the
    emits whose batch got past the prefilter, and the round's first and last instants."""
    for line in sys.stdin:
        start, count = map(int, line.split())
        lat: list[float] = []
        hits: list[float] = []
        hit_records = 0
        began = _now()
        for first in range(start, start + count, batch):
            end = min(start + count, first + batch)
            work = prepare(first, end)
            before = shortlisted()
            t = time.perf_counter()
            emit(work)
            lat.append(time.perf_counter() - t)
            if shortlisted() != before:  # a record of this batch got past the prefilter
                hits.append(lat[-1])
                hit_records += end - first
        print(json.dumps({"lat": lat, "hits": hits, "hit_records": hit_records,
                          "began": began, "ended": _now()}), flush=True)


def _ready(cold: float) -> None:
    print(json.dumps({"cold_s": cold}), flush=True)


def _worker(kind: str, root: str, worker: int, count: int, batch: int, tag: str) -> None:
    """One process of a kind: prepare (the cold part), report ready, serve rounds."""
    if kind == "baseline":
        from convergent.records import Verdict, encode, finalize

        lines = [encode(finalize(_draft(worker, i, tag), Verdict(False, "none")))
                 for i in range(count)]
        fd = os.open(Path(root) / f"baseline-{worker}.jsonl",
                     os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

        def write(data: bytes) -> None:
            os.write(fd, data)
            os.fsync(fd)

        _ready(0.0)
        _serve(batch, lambda first, end: b"".join(lines[first:end]), write, lambda: 0)
        os.close(fd)
        return
    from convergent.contamination import screen_for
    from convergent.recorder import Recorder
    from convergent.screening import screen_batch

    screen = kind == "with screening"
    with Recorder(root, verify=False, screen=screen) as rec:
        cold = 0.0
        counter: Any = None
        if screen:
            t = time.perf_counter()
            screen_batch(rec.root, rec.config, [_warm(tag + "!" * (worker + 1))])
            cold = time.perf_counter() - t
            counter = screen_for(rec.root, rec.config)

        def emit(drafts: list[dict[str, object]]) -> None:
            if len(drafts) == 1:
                rec.emit(drafts[0])
            else:
                rec.emit_many(drafts)

        _ready(cold)
        _serve(batch, lambda first, end: [_draft(worker, i, tag) for i in range(first, end)],
               emit, lambda: int(getattr(counter, "shortlisted", 0)))


def _split(root: str, tag: str, count: int) -> dict[str, float]:
    """Hot CPU per record of each emit stage, in microseconds (see the module docstring)."""
    from convergent.config import load_config
    from convergent.contamination import Decontamination, screen_for
    from convergent.gates.secrets import record_secrets
    from convergent.records import Verdict, finalize_line, validate_draft

    config = load_config(Path(root))
    check = Decontamination(Path(root), config)
    warm = _warm(tag + "?")
    check([warm])  # the cold parts, untimed: the index, the model, the sandbox ...
    list(record_secrets([warm]))  # ... and detect-secrets' plugins and prefilters
    counter = screen_for(Path(root), config)
    stages = ("checks, id and line", "decontamination", "secrets")
    spent = dict.fromkeys(stages, 0.0)
    timed = 0
    for i in range(count):
        draft = _draft(9, 10_000 + i, tag)
        before = counter.shortlisted
        t0 = time.perf_counter()
        validate_draft(dict(draft))
        record, _ = finalize_line(draft, Verdict(False, "none"))
        t1 = time.perf_counter()
        check([record])
        t2 = time.perf_counter()
        list(record_secrets([{k: v for k, v in record.items() if k not in ("ts", "id")}],
                            remember=True))
        t3 = time.perf_counter()
        if counter.shortlisted != before:
            continue  # a hit: its cost is the sandbox run's, measured apart
        timed += 1
        for stage, took in zip(stages, (t1 - t0, t2 - t1, t3 - t2), strict=True):
            spent[stage] += took
    if not timed:
        raise SystemExit("every split record hit the shortlist: nothing was timed")
    return {stage: took / timed * 1e6 for stage, took in spent.items()}


def _start(kind: str, root: str, procs: int, count: int, batch: int, tag: str
           ) -> tuple[list[subprocess.Popen[str]], list[float]]:
    children = [subprocess.Popen([sys.executable, str(HERE), "--worker", kind, "--root", root,
                                  "--id", str(w), "--records", str(count), "--batch", str(batch),
                                  "--tag", tag],
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
                for w in range(procs)]
    colds = []
    for child in children:
        assert child.stdout is not None
        colds.append(json.loads(child.stdout.readline())["cold_s"])
    return children, colds


def _round(children: list[subprocess.Popen[str]], start: int, count: int
           ) -> list[dict[str, Any]]:
    for child in children:
        assert child.stdin is not None
        child.stdin.write(f"{start} {count}\n")
        child.stdin.flush()
    results = []
    for child in children:
        assert child.stdout is not None
        results.append(json.loads(child.stdout.readline()))
    return results


def _measure(root: str, procs: int, count: int, batch: int, rounds: int, tag: str
             ) -> dict[str, dict[str, Any]]:
    """Every kind's processes started and prepared, then the rounds, kinds in turn."""
    started = {kind: _start(kind, root, procs, count, batch, tag) for kind in KINDS}
    share = -(-count // rounds // batch) * batch  # records of a process per round
    walls: dict[str, list[float]] = {kind: [] for kind in KINDS}
    others: dict[str, float] = dict.fromkeys(KINDS, 0.0)  # the walls less the hit emits
    found: dict[str, list[dict[str, Any]]] = {kind: [] for kind in KINDS}
    for start in range(0, count, share):
        size = min(share, count - start)
        for kind in KINDS:
            results = _round(started[kind][0], start, size)
            wall = max(r["ended"] for r in results) - min(r["began"] for r in results)
            walls[kind].append(wall)
            others[kind] += wall - max(sum(r["hits"]) for r in results)
            found[kind].extend(results)
    for children, _ in started.values():
        for child in children:
            child.communicate()
            assert child.returncode == 0
    figures = {}
    for kind in KINDS:
        results = found[kind]
        lat = sorted(x for r in results for x in r["lat"])
        hits = [x for r in results for x in r["hits"]]
        hit_records = sum(r["hit_records"] for r in results)
        figures[kind] = {
            "records_per_s": procs * count / sum(walls[kind]),
            "round_rates": [procs * n / w for n, w in zip(_sizes(count, share), walls[kind],
                                                          strict=True)],
            "p50_ms": statistics.median(lat) * 1e3,
            "p99_ms": lat[int(len(lat) * 0.99) - 1] * 1e3,
            "cold_s": statistics.median(started[kind][1]), "hits": len(hits),
            "hit_ms": statistics.mean(hits) * 1e3 if hits else 0.0,
            "others_per_s": (procs * count - hit_records) / others[kind]}
    if count >= 40 and figures["with screening"]["hits"] < procs:
        raise SystemExit("a screened process had no emit past the prefilter: the bench no "
                         "longer measures a record that hits the shortlist")
    return figures


def _sizes(count: int, share: int) -> list[int]:
    return [min(share, count - start) for start in range(0, count, share)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=3000, help="records per process")
    parser.add_argument("--batch", type=int, default=1, help="records per emit / fsync")
    parser.add_argument("--rounds", type=int, default=50, help="rounds, kinds in turn")
    parser.add_argument("--procs", default="1,4", help="process counts to measure, e.g. 1,4")
    parser.add_argument("--split", type=int, default=300,
                        help="records timed stage by stage in this process (0: none)")
    parser.add_argument("--worker")
    parser.add_argument("--root")
    parser.add_argument("--id", type=int, default=0)
    parser.add_argument("--tag", default="")
    args = parser.parse_args()
    if args.worker:
        _worker(args.worker, args.root, args.id, args.records, args.batch, args.tag)
        return
    from convergent.repo import init_repo

    os.environ.setdefault("GIT_AUTHOR_NAME", "bench")
    os.environ.setdefault("GIT_AUTHOR_EMAIL", "bench@example.com")
    os.environ.setdefault("GIT_COMMITTER_NAME", "bench")
    os.environ.setdefault("GIT_COMMITTER_EMAIL", "bench@example.com")
    print(f"emit benchmark: {args.records} records per process, batch {args.batch}, "
          f"{args.rounds} rounds (kinds in turn)")
    run = _tag()  # new text for the embedding cache (see the module's docstring)
    for procs in (int(n) for n in args.procs.split(",")):
        with tempfile.TemporaryDirectory() as tmp:
            root = str(init_repo(Path(tmp) / "records", install_hooks=False))
            figures = _measure(root, procs, args.records, args.batch, args.rounds,
                               run + "^" * procs)
            split = _split(root, run + "+" * procs, args.split) if args.split else None
        base = figures["baseline"]
        print(f"{procs} process{'es' if procs > 1 else ''}: baseline "
              f"{base['records_per_s']:,.0f} rec/s p50 {base['p50_ms']:.2f} ms "
              f"p99 {base['p99_ms']:.2f} ms")
        for name in KINDS[1:]:
            ours = figures[name]
            ratio = ours["records_per_s"] / base["records_per_s"]
            print(f"  convergent, {name}: {ours['records_per_s']:,.0f} rec/s "
                  f"p50 {ours['p50_ms']:.2f} ms p99 {ours['p99_ms']:.2f} ms | "
                  f"throughput ratio {ratio:.2f}")
        screened, append = figures["with screening"], figures["append path"]
        by_round = sorted(s / b for s, b in zip(screened["round_rates"], base["round_rates"],
                                                strict=True))
        quartiles = statistics.quantiles(by_round, n=4) if len(by_round) > 1 else by_round * 3
        print(f"  screening / append path: "
              f"{screened['records_per_s'] / append['records_per_s']:.2f}; screening / "
              f"baseline by round: median {quartiles[1]:.2f} (quartiles {quartiles[0]:.2f}, "
              f"{quartiles[2]:.2f}; {len(by_round)} rounds)")
        print(f"  cold (first screen of a shortlisted record, per process, before the timed "
              f"run): {screened['cold_s']:.2f} s")
        print(f"  emits whose records hit the shortlist: {screened['hits']} "
              f"({screened['hits'] // procs} a process), {screened['hit_ms']:.1f} ms each; "
              f"the other emits (time less the hit emits): "
              f"{screened['others_per_s']:,.0f} rec/s, throughput ratio "
              f"{screened['others_per_s'] / base['records_per_s']:.2f}, "
              f"{screened['others_per_s'] / append['records_per_s']:.2f} of the append path")
        if split is not None:
            fsync_us = 1e6 / base["records_per_s"]
            print(f"  hot CPU per record, stage by stage ({args.split} records in this "
                  f"process, no fsync between): "
                  + ", ".join(f"{stage} {us:.0f} us" for stage, us in split.items())
                  + f"; the baseline's write+fsync: {fsync_us:.0f} us a record")


if __name__ == "__main__":
    main()
