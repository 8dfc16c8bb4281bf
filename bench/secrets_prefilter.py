"""Benchmark: the secrets gate's cost per record, fast path against the slow reference.

    .venv/bin/python bench/secrets_prefilter.py [--records 2000] [--slow-records 200]

Records are bench/emit.py's drafts and bench/gates.py's experiences, finalized. In one
process: ``record_secrets`` over the whole batch and one record at a time (the needle
prefilter, then each pattern only on the lines holding its needles, then the plugins on
the lines a pattern matched), and the slow reference on the first ``--slow-records``
(every detect-secrets plugin and every detector of ours on every distinct line, no
prefilter: what the fast path must agree with). Prints ms per record and the ratio, and
checks the two found the same credentials (none, for these records).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from emit import _draft  # noqa: E402
from gates import experience_draft  # noqa: E402

from convergent.gates.secrets import _scan, _strings, record_secrets  # noqa: E402
from convergent.records import Verdict, finalize  # noqa: E402

TS = "2026-01-01T00:00:00.000000Z"


def _lines(records: list[dict[str, object]]) -> set[str]:
    return {part for record in records for _, text in _strings(record, "")
            for part in text.splitlines()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=2000)
    parser.add_argument("--slow-records", type=int, default=200)
    args = parser.parse_args()
    sets = {
        "emit drafts": [finalize(_draft(0, i), Verdict(False, "none"), TS)
                        for i in range(args.records)],
        "gates experiences": [finalize(experience_draft(i, 200, "add"), Verdict(True, "x"), TS)
                              for i in range(args.records)],
    }
    list(record_secrets(sets["emit drafts"][:2]))  # imports and prefilters, once
    for name, records in sets.items():
        t = time.perf_counter()
        batch = list(record_secrets(records))
        batch_ms = (time.perf_counter() - t) / len(records) * 1e3
        t = time.perf_counter()
        for record in records:
            list(record_secrets([record]))
        one_ms = (time.perf_counter() - t) / len(records) * 1e3
        sample = records[:args.slow_records]
        t = time.perf_counter()
        slow = _scan(_lines(sample), prefilter=False)
        slow_ms = (time.perf_counter() - t) / len(sample) * 1e3
        fast = _scan(_lines(sample))
        assert fast == slow, "the fast path lost or added a finding"
        print(f"{name} ({len(records)} records, {len(batch)} findings): batch "
              f"{batch_ms:.3f} ms/record, one at a time {one_ms:.3f} ms/record; slow "
              f"reference {slow_ms:.3f} ms/record | slow/batch {slow_ms / batch_ms:.0f}x, "
              f"slow/one {slow_ms / one_ms:.0f}x")


if __name__ == "__main__":
    main()
