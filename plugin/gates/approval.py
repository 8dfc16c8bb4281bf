"""Gate ``approval``: only an operator's merge (signed, when required) approves a proposal.

An ``approval`` record names the proposal and the merge commit; it is refused unless
that merge exists, brought the proposal's branch in, and was made by an operator.
"""

from __future__ import annotations

from collections.abc import Iterator

from convergent.approval import merge_problems
from convergent.gates.base import GateContext, Problem

GATE = "approval"


def _first_approvals(ctx: GateContext) -> dict[str, str]:
    """Proposal id -> id of its first approval record in the log (new lines included)."""
    first: dict[str, str] = {}
    for record in ctx.history() if ctx.history is not None else []:
        proposal = (record.get("evidence") or {}).get("proposal")
        if record.get("kind") == "approval" and isinstance(proposal, str):
            first.setdefault(proposal, str(record.get("id")))
    return first


def check_approval(ctx: GateContext) -> Iterator[Problem]:
    firsts: dict[str, str] | None = None
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
        firsts = _first_approvals(ctx) if firsts is None else firsts
        first = firsts.get(ev["proposal"], record.get("id"))
        if first != record.get("id"):
            # One approval per proposal: a second one would start a second cycle.
            yield Problem(line.path, line.lineno, GATE, f"proposal {ev['proposal']} is "
                          f"already approved by {first}; a proposal is approved once")
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
