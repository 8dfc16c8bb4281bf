"""Gate ``approval``: an approval record must repeat what Git says about its proposal.

Approval is derived from Git (:func:`convergent.approval.approval_of`): the merge that
brought the proposal into the main line, made by an operator (signed, when required).
An ``approval`` record is only a cache of that answer: it is refused unless Git gives the
same answer at the commit that adds it (for the staged change: at HEAD), and a second
approval of one proposal is refused (only the first one ever counts).
"""

from __future__ import annotations

from collections.abc import Iterator

from convergent.approval import approval_records, record_problems
from convergent.gates.base import GateContext, Problem

GATE = "approval"


def check_approval(ctx: GateContext) -> Iterator[Problem]:
    firsts: dict[str, dict[str, object]] | None = None
    for line in ctx.new_lines:
        record = line.record
        if record is None or record.get("kind") != "approval":
            continue
        ev = record.get("evidence")
        proposal = ev.get("proposal") if isinstance(ev, dict) else None
        if isinstance(proposal, str):
            if firsts is None:
                firsts = approval_records(ctx.history() if ctx.history is not None else [])
            first = firsts.get(proposal, record)
            if first.get("id") != record.get("id"):
                # One approval per proposal: a second one would start a second cycle.
                yield Problem(line.path, line.lineno, GATE, f"proposal {proposal} is "
                              f"already approved by {first.get('id')}; a proposal is "
                              "approved once")
                continue
        for reason in record_problems(ctx.root, ctx.config, record, ctx.commit or "HEAD"):
            yield Problem(line.path, line.lineno, GATE, reason)
