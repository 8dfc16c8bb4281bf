"""Gate ``levers-first``: a proposal links a measured, in-order try of each lever."""

from __future__ import annotations

from collections.abc import Iterator

from convergent.gates.base import GateContext, Problem
from convergent.levers import plan_levers

GATE = "levers-first"


def check_levers_first(ctx: GateContext) -> Iterator[Problem]:
    proposals = [line for line in ctx.new_lines
                 if line.record is not None and line.record.get("kind") == "proposal"]
    if not proposals or ctx.history is None:
        return
    history = ctx.history()
    for line in proposals:
        record = line.record
        assert record is not None
        gap_name = record.get("evidence", {}).get("gap")
        if not isinstance(gap_name, str):
            yield Problem(line.path, line.lineno, GATE, "proposal names no gap (evidence.gap)")
            continue
        position = next((i for i, r in enumerate(history) if r.get("id") == record.get("id")),
                        len(history))
        plan = plan_levers(history[:position], gap_name)
        for reason in plan.missing:
            yield Problem(line.path, line.lineno, GATE, reason)
        if plan.ok:
            assert plan.gap is not None
            needed = {plan.gap["id"]} | {lever["id"] for lever in plan.levers}
            absent = sorted(needed - set(record.get("links", [])))
            if absent:
                yield Problem(line.path, line.lineno, GATE, "proposal does not link the records "
                              f"it relies on: {', '.join(absent)}")
