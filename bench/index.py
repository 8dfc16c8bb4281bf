"""Benchmark of the SQLite index: a build from 1,000,000 records and an incremental update.

    .venv/bin/python bench/index.py                 # 1,000,000 records + 10,000 appended
    .venv/bin/python bench/index.py --records 100000 --keep /tmp/convergent-bench

Synthetic but realistic records (mostly execution-verified experiences with a task,
a program and its tests; some gaps, levers, proposals) are made with
``convergent.records.finalize`` + ``encode`` and written as 32 MiB segments. Their
generation is not timed. The baseline, measured in the same run on the same lines, is
what any index must at least do: json.loads each line and a raw ``sqlite3``
executemany of the same columns into a plain table, no primary key, no FTS.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import random
import shutil
import sqlite3
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from convergent.index import RECORD_COLUMNS, index_path, rebuild_index, update_index
from convergent.layout import RECORDS_DIR, segment_name
from convergent.log import DEFAULT_SEGMENT_MAX_BYTES, segment_paths
from convergent.records import Verdict, encode, finalize

WORDS = (
    "parse", "sort", "merge", "list", "tree", "graph", "string", "integer", "float", "path",
    "file", "json", "csv", "date", "time", "window", "cache", "queue", "stack", "heap", "token",
    "regex", "split", "join", "count", "unique", "reverse", "rotate", "matrix", "vector", "prime",
    "factor", "fibonacci", "palindrome", "anagram", "binary", "search", "interval", "overlap",
    "balance", "bracket", "digit", "sum", "product", "maximum", "minimum", "average", "median",
    "mode", "encode", "decode", "compress", "hash", "checksum", "retry", "timeout", "buffer",
    "stream", "chunk", "batch", "filter", "map", "reduce", "group", "order", "rank", "score",
    "distance", "shortest", "route", "flow", "cycle",
)
EMITTERS = ("langgraph/coder", "crewai/solver", "autogen/assistant", "smolagents/dev")
MODELS = ("qwen2.5-coder-7b", "llama-3.1-8b", "mistral-7b-v0.3")


def synthetic_record(rng: random.Random, n: int) -> bytes:
    """One realistic log line; record ``n`` of the synthetic log."""
    ts = f"2026-{1 + n % 12:02d}-{1 + n % 28:02d}T{n % 24:02d}:{n % 60:02d}:00.{n % 10**6:06d}Z"
    source = {"emitter": rng.choice(EMITTERS), "model": rng.choice(MODELS),
              "origin": "self" if rng.random() < 0.8 else "external"}
    topic = rng.sample(WORDS, 6)
    if rng.random() < 0.9:
        name = "_".join(topic[:2])
        task = (f"Write a Python function `{name}(items)` that can {topic[0]} and {topic[1]} "
                f"the {topic[2]} of a {topic[3]}, handling {topic[4]} and {topic[5]} input. "
                f"Task #{n}.")
        response = (f"def {name}(items):\n    result = []\n    for item in items:\n"
                    f"        if item is not None:\n            result.append(item)\n"
                    f"    return sorted(result)  # {topic[2]} {topic[3]}\n")
        tests = (f"def check(f):\n    assert f([3, None, 1]) == [1, 3]\n"
                 f"    assert f([]) == []  # {topic[4]}\n")
        draft: dict[str, Any] = {
            "kind": "experience", "claim": f"{name} {topic[2]} a {topic[3]} (#{n})",
            "task": task, "response": response, "confidence": round(rng.random(), 3),
            "evidence": {"type": "execution", "language": "python", "tests": tests,
                         "entry_point": name},
            "source": source,
        }
        verdict = Verdict(rng.random() < 0.7, "execution", "exit 0")
        return encode(finalize(draft, verdict, ts=ts))
    kind = rng.choice(("gap", "lever", "proposal"))
    draft = {"kind": kind, "claim": f"{kind}: {' '.join(topic)} (#{n})",
             "confidence": round(rng.random(), 3), "evidence": {"note": topic[0]},
             "source": {**source, "origin": "operator"}, "links": [f"sha256:{n:064x}"]}
    return encode(finalize(draft, None, ts=ts))


def _generate_range(args: tuple[int, int]) -> bytes:
    start, stop = args
    rng = random.Random(start)
    return b"".join(synthetic_record(rng, n) for n in range(start, stop))


def generate_lines(start: int, count: int) -> Iterator[bytes]:
    """Blocks of synthetic log lines, made on every core."""
    step = 20_000
    ranges = [(s, min(s + step, start + count)) for s in range(start, start + count, step)]
    with multiprocessing.Pool() as pool:
        yield from pool.imap(_generate_range, ranges)


def write_log(root: Path, blocks: Iterator[bytes]) -> None:
    """Append blocks to the segments, rolling over at the default cap like the log does."""
    folder = root / RECORDS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    existing = segment_paths(root)
    number = int(existing[-1].name[4:10]) if existing else 1
    path = folder / segment_name(number)
    size = path.stat().st_size if path.exists() else 0
    fh = path.open("ab")
    try:
        for block in blocks:
            for line in block.splitlines(keepends=True):
                if size and size + len(line) > DEFAULT_SEGMENT_MAX_BYTES:
                    fh.close()
                    number += 1
                    fh = (folder / segment_name(number)).open("ab")
                    size = 0
                fh.write(line)
                size += len(line)
    finally:
        fh.close()


def baseline_seconds(root: Path, workdir: Path) -> float:
    """json.loads each line + a raw sqlite3 executemany of the same columns, plain table."""
    db_path = workdir / "baseline.db"
    db_path.unlink(missing_ok=True)
    started = time.perf_counter()
    conn = sqlite3.connect(db_path)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute(f"CREATE TABLE records ({', '.join(RECORD_COLUMNS)})")
    sql = f"INSERT INTO records VALUES ({', '.join('?' for _ in RECORD_COLUMNS)})"
    with conn:
        for path in segment_paths(root):
            conn.executemany(sql, _baseline_rows(path))
    conn.close()
    return time.perf_counter() - started


def _baseline_rows(path: Path) -> Iterator[tuple[Any, ...]]:
    with path.open("rb") as fh:
        for line, raw in enumerate(fh, 1):
            rec = json.loads(raw)
            src = rec["source"]
            verdict = rec.get("verdict") or {}
            yield (rec["id"], line, path.name, line, rec["kind"], rec["ts"], rec["claim"],
                   rec.get("task"), rec.get("response"), rec["confidence"],
                   verdict.get("verified"), verdict.get("verifier"), src["emitter"],
                   src["model"], src["origin"], json.dumps(rec["links"]),
                   raw.decode().rstrip("\n"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000, help="records to build from")
    parser.add_argument("--append", type=int, default=10_000, help="records appended after")
    parser.add_argument("--keep", type=Path, help="work in (and keep) this folder")
    args = parser.parse_args(argv)
    workdir = args.keep or Path(tempfile.mkdtemp(prefix="convergent-bench-index-"))
    root = workdir / "repo"
    try:
        return run(root, workdir, args.records, args.append)
    finally:
        if args.keep is None:
            shutil.rmtree(workdir, ignore_errors=True)


def run(root: Path, workdir: Path, records: int, append: int) -> int:
    shutil.rmtree(root, ignore_errors=True)
    started = time.perf_counter()
    write_log(root, generate_lines(0, records))
    log_bytes = sum(p.stat().st_size for p in segment_paths(root))
    print(f"generated {records:,} records, {log_bytes / 2**20:,.0f} MiB in "
          f"{len(segment_paths(root))} segments ({time.perf_counter() - started:.1f} s, "
          "not counted)")

    base = baseline_seconds(root, workdir)
    build = update_index(root)
    assert build.total == records, build
    write_log(root, generate_lines(records, append))
    incr = update_index(root)
    assert incr.inserted == append and incr.lines_read == append, incr
    noop = update_index(root)
    assert noop.lines_read == 0, noop
    rebuilt = rebuild_index(root)
    assert rebuilt.total == records + append, rebuilt

    db_bytes = index_path(root).stat().st_size
    print(f"baseline  json.loads + raw sqlite3 executemany, plain table: {base:7.2f} s "
          f"({records / base:,.0f} records/s)")
    print(f"build     update_index, {records:,} records:               {build.seconds:7.2f} s "
          f"({records / build.seconds:,.0f} records/s)  target < 60 s  "
          f"ratio to baseline {build.seconds / base:.2f}x")
    print(f"update    update_index, {append:,} appended records:          {incr.seconds:7.2f} s "
          f"target < 2 s")
    print(f"no-op     update_index, nothing new:                       {noop.seconds:7.3f} s")
    print(f"rebuild   rebuild_index over a full index, {records + append:,} records: "
          f"{rebuilt.seconds:7.2f} s")
    print(f"index.db  {db_bytes / 2**20:,.0f} MiB")
    ok = build.seconds < 60 and incr.seconds < 2
    print("PASS" if ok else "FAIL: over target")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
