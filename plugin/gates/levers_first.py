"""Gate ``levers-first``: a proposal links a measured, in-order try of each lever.

For its gap, the proposal must link the gap record and one try of each frozen-base lever
(``route``, ``verify_best_of_n``, ``rag``), each recorded after the gap and after the
lever before it, each with its measured value, each leaving the gap open.

One cycle per measured gap state: a new proposal for a gap needs lever tries recorded
after the previous proposal's cycle, unless that cycle halted or its adapter was
reverted, and after any earlier proposal for the gap that has no cycle yet. One set of
tries therefore backs one cycle that changes the weights. The rule is decided by
:func:`convergent.levers.proposal_problems`, which the cycle runs again before training.
"""

from __future__ import annotations

from collections.abc import Iterator

from convergent.gates.base import GateContext, Problem
from convergent.levers import proposal_problems

GATE = "levers-first"


def check_levers_first(ctx: GateContext) -> Iterator[Problem]:
    proposals = [line for line in ctx.new_lines
                 if line.record is not None and line.record.get("kind") == "proposal"]
    if not proposals or ctx.history is None:
        return
    history = ctx.history()
    for line in proposals:
        assert line.record is not None
        for reason in proposal_problems(history, line.record):
            yield Problem(line.path, line.lineno, GATE, reason)
