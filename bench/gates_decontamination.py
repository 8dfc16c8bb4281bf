"""Decontamination throughput, in MB/s of experience text, beside a naive baseline.

    .venv/bin/python bench/gates_decontamination.py [--mb 20] [--ngram 13]

The text is synthetic experience records (claim, task, response, tests) cut from the
standard library's source, with a few HumanEval solutions planted among them. Both
checkers scan every record against HumanEval in the same run:

- ours: :class:`convergent.decontamination.NgramIndex` (fingerprints, strided anchors);
- naive: normalized words, every n-gram as a tuple, looked up in a set of tuples.

Both must flag the planted records; the figures are printed, nothing is asserted on speed.
"""

from __future__ import annotations

import argparse
import string
import sys
import sysconfig
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from convergent.decontamination import (
    Benchmark,
    NgramIndex,
    humaneval_items,
    humaneval_source,
)

_PUNCT = str.maketrans(string.punctuation, " " * len(string.punctuation))
RECORD_LINES = 40
PLANT_EVERY = 997  # every so many records is a copied HumanEval solution


def naive_words(text: str) -> list[str]:
    """The textbook normalization (lm-evaluation-harness style), in str."""
    return text.lower().translate(_PUNCT).split()


def naive_index(items: list[tuple[str, str]], n: int) -> set[tuple[str, ...]]:
    grams: set[tuple[str, ...]] = set()
    for _, text in items:
        words = naive_words(text)
        grams.update(tuple(words[i:i + n]) for i in range(len(words) - n + 1))
    return grams


def naive_contaminated(grams: set[tuple[str, ...]], text: str, n: int) -> bool:
    words = naive_words(text)
    return any(tuple(words[i:i + n]) in grams for i in range(len(words) - n + 1))


def stdlib_lines() -> list[str]:
    lines: list[str] = []
    for path in sorted(Path(sysconfig.get_paths()["stdlib"]).glob("*.py")):
        lines.extend(path.read_text("utf-8", errors="replace").splitlines())
    return lines


def records(megabytes: float, items: list[tuple[str, str]]) -> Iterator[str]:
    """Experience text (claim + task + response + tests) until ``megabytes`` are made."""
    lines = stdlib_lines()
    made, i = 0, 0
    while made < megabytes * 1e6:
        start = (i * RECORD_LINES) % (len(lines) - RECORD_LINES)
        chunk = lines[start:start + RECORD_LINES]
        response = items[i % len(items)][1] if i % PLANT_EVERY == 0 else "\n".join(chunk)
        text = "\n".join((f"passes its tests ({i})", f"Complete this:\n{chunk[0]}", response,
                          f"assert f({i}) == {i}\n"))
        made += len(text.encode("utf-8"))
        i += 1
        yield text


def timed(check: Callable[[str], bool], texts: list[str]) -> tuple[float, set[int]]:
    began = time.perf_counter()
    flagged = {i for i, text in enumerate(texts) if check(text)}
    return time.perf_counter() - began, flagged


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=20.0, help="MB of record text to scan")
    parser.add_argument("--ngram", type=int, default=13, help="n of the n-grams")
    args = parser.parse_args(argv)
    n = args.ngram
    items = list(humaneval_items())
    texts = list(records(args.mb, items))
    size_mb = sum(len(t.encode("utf-8")) for t in texts) / 1e6
    planted = set(range(0, len(texts), PLANT_EVERY))

    with tempfile.TemporaryDirectory() as cache:
        began = time.perf_counter()
        index = NgramIndex.build([Benchmark("humaneval", humaneval_items, humaneval_source())],
                                 n, Path(cache))
        ours_build = time.perf_counter() - began
    began = time.perf_counter()
    grams = naive_index(items, n)
    naive_build = time.perf_counter() - began

    ours_s, ours_flagged = timed(lambda text: bool(index.find(text)), texts)
    naive_s, naive_flagged = timed(lambda text: naive_contaminated(grams, text, n), texts)
    if not planted <= ours_flagged or not ours_flagged <= naive_flagged:
        print(f"MISMATCH: planted {len(planted)}, ours {len(ours_flagged)}, "
              f"naive {len(naive_flagged)}", file=sys.stderr)
        return 1

    print(f"decontamination, {len(texts)} records, {size_mb:.1f} MB of text, {n}-grams "
          f"against HumanEval ({len(items)} items), python {sys.version.split()[0]}")
    print(f"  ours  (NgramIndex)      : {size_mb / ours_s:7.1f} MB/s  ({ours_s:.2f} s; "
          f"build {ours_build * 1e3:.0f} ms, {len(ours_flagged)} records flagged)")
    print(f"  naive (set of tuples)   : {size_mb / naive_s:7.1f} MB/s  ({naive_s:.2f} s; "
          f"build {naive_build * 1e3:.0f} ms, {len(naive_flagged)} records flagged)")
    print(f"  speed-up                : {naive_s / ours_s:7.1f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
