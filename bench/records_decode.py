"""Benchmark of the line decoder on adversarial lines: it must stay linear in the line.

    .venv/bin/python bench/records_decode.py            # lines of 100 KB and 200 KB .. 800 KB
    .venv/bin/python bench/records_decode.py --kb 1000

Each adversarial line makes ``decode_line`` run its nesting scan (more than 64 brackets)
over text built to make a scan quadratic: unterminated strings of escaped quotes, escaped
quotes and brackets, bare quotes, many short nested arrays, deep nesting after a long key.
The baseline, measured in the same run on a line of the same size, is ``json.loads`` of a
valid line holding one long plain string. Each size is also timed at twice its length:
a linear decoder takes about twice as long (the ratio "x2" column), a quadratic one four.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import time
from collections.abc import Callable

from convergent.errors import RecordError
from convergent.records import decode_line


def _fill(unit: bytes, prefix: bytes, suffix: bytes, size: int) -> bytes:
    return prefix + unit * max(1, (size - len(prefix) - len(suffix)) // len(unit)) + suffix


LINES: dict[str, Callable[[int], bytes]] = {
    "escaped quotes, unterminated": lambda n: _fill(b'\\"', b'{"task":"', b"[" * 65, n),
    "escaped quotes and brackets": lambda n: _fill(b'\\"[{', b'{"meta":{"s":"', b"", n),
    "bare quotes": lambda n: _fill(b'"', b'{"task":', b"[" * 65, n),
    "short nested arrays": lambda n: _fill(b"[[1]],", b'{"meta":{"x":[', b"0]}}" + b"[" * 65, n),
    "long key, then deep": lambda n: _fill(b"k", b'{"', b'":' + b"[" * 65, n),
}


def baseline(size: int) -> bytes:
    return _fill(b"a", b'{"task":"', b'"}', size)


def best_of(fn: Callable[[], object], repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def decode(line: bytes) -> None:
    with contextlib.suppress(RecordError):
        decode_line(line, max_bytes=1 << 40)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--kb", type=int, nargs="*", default=[100, 200, 400])
    args = parser.parse_args()
    print(f"{'line':32} {'KB':>6} {'decode ms':>10} {'json.loads ms':>14} {'ratio':>7} "
          f"{'x2':>6}")
    for kb in args.kb:
        size = kb * 1000
        base = best_of(lambda: json.loads(baseline(size)))  # noqa: B023
        for name, make in LINES.items():
            line, double = make(size), make(2 * size)
            took = best_of(lambda: decode(line))  # noqa: B023
            took2 = best_of(lambda: decode(double))  # noqa: B023
            print(f"{name:32} {len(line) // 1000:>6} {took * 1e3:>10.2f} {base * 1e3:>14.2f} "
                  f"{took / base:>7.1f} {took2 / took:>6.2f}")


if __name__ == "__main__":
    main()
