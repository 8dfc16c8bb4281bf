"""The ``decontamination`` gate: no experience leaks a benchmark or the hold-out.

A thin adapter over :func:`convergent.contamination.contaminated` (the one
decontamination API, which emit, proposals and the dataset build use too): it prints each
finding as ``path:line: decontamination: <message>``, naming the item, and the score for
the text stage. A check that cannot run is one problem on the config (fail closed).
"""

from __future__ import annotations

from collections.abc import Iterator

from convergent.contamination import contaminated
from convergent.errors import RepoError
from convergent.gates.base import GateContext, Problem
from convergent.layout import CONFIG_FILE
from convergent.records import Record

GATE = "decontamination"


def check_decontamination(ctx: GateContext) -> Iterator[Problem]:
    lines = [line for line in ctx.new_lines
             if line.record is not None and Record(line.record).kind == "experience"]
    if not lines:
        return
    try:
        findings = contaminated(ctx.root, ctx.config, [line.record for line in lines
                                                       if line.record is not None])
    except (RepoError, OSError) as exc:  # fail closed: an unchecked record must not pass
        yield Problem(CONFIG_FILE, 0, GATE, f"cannot check against the benchmarks: {exc}")
        return
    for finding in findings:
        line = lines[finding.record]
        yield Problem(line.path, line.lineno, GATE, finding.message)
