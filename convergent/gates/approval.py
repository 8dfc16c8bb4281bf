"""Gate ``approval``: an approval record must repeat what Git says about its proposal.

Approval is derived from Git (:func:`convergent.approval.approval_of`): the merge that
brought the proposal into the main line, made by an operator (signed, when required).
An ``approval`` record is only a cache of that answer: it is refused unless Git gives the
same answer at the commit that adds it (for the staged change: at HEAD), and a second
approval of one proposal is refused (only the first one ever counts).

The operator policy itself (``[operators]``, ``[approval]``, the allowed-signers file)
changes only in an operator's commit, judged by the policy committed before it
(:func:`convergent.approval.policy_change_problems`).
"""

from __future__ import annotations

from collections.abc import Iterator

from convergent.approval import approval_records, policy_change_problems, record_problems
from convergent.gates.base import GateContext, Problem
from convergent.layout import CONFIG_FILE
from convergent.records import Record

GATE = "approval"


def check_approval(ctx: GateContext) -> Iterator[Problem]:
    yield from check_policy(ctx)
    firsts: dict[str, dict[str, object]] | None = None
    for line in ctx.new_lines:
        record = line.record
        if record is None or Record(record).kind != "approval":
            continue
        proposal = Record(record).evidence.get("proposal")
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
        for reason in record_problems(ctx.root, record, ctx.commit or "HEAD"):
            yield Problem(line.path, line.lineno, GATE, reason)


def check_policy(ctx: GateContext) -> Iterator[Problem]:
    """The operator policy changes only in an operator's commit (judged by the policy
    before it): nobody adds themselves, or their key, and then approves."""
    if not ctx.files:
        return
    before = ctx.parents[0] if ctx.parents else None
    after = None if any(f.path == CONFIG_FILE and f.new is None for f in ctx.files) else (
        ctx.config)
    for path, reason in policy_change_problems(ctx.root, before, after, commit=ctx.commit,
                                               others=ctx.parents[1:]):
        yield Problem(path, 0, GATE, reason)
