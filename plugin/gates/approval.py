"""Gate ``approval``: only an operator's merge (signed, when required) approves a proposal.

An ``approval`` record names the proposal and the merge commit; it is refused unless
that merge exists, brought the proposal's branch in, and was made by an operator.
"""

from __future__ import annotations

from collections.abc import Iterator

from convergent.approval import merge_problems
from convergent.gates.base import GateContext, Problem

GATE = "approval"


def check_approval(ctx: GateContext) -> Iterator[Problem]:
    for line in ctx.new_lines:
        record = line.record
        if record is None or record.get("kind") != "approval":
            continue
        ev = record.get("evidence", {})
        merge_sha, proposal_commit = ev.get("commit"), ev.get("proposal_commit")
        if not isinstance(merge_sha, str) or not isinstance(ev.get("proposal"), str):
            yield Problem(line.path, line.lineno, GATE,
                          "an approval names the proposal (evidence.proposal) and the merge "
                          "commit that approved it (evidence.commit)")
            continue
        problems = merge_problems(ctx.root, ctx.config, merge_sha,
                                  proposal_commit if isinstance(proposal_commit, str) else None)
        if ev.get("approved_by") and not problems:
            from convergent.approval import person
            from convergent.gitops import open_repo

            author = person(open_repo(ctx.root).commit(merge_sha).author)
            if author != ev["approved_by"]:
                problems.append(f"approved_by {ev['approved_by']!r} is not the merge's author "
                                f"{author!r}")
        for reason in problems:
            yield Problem(line.path, line.lineno, GATE, reason)
