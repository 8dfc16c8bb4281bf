"""Gate ``source``: a record that claims ``verified: true`` must re-verify.

Execution evidence re-runs in the sandbox (cached by what ran, so a re-check is cheap),
grounding against the snapshots committed before the change, operator evidence against
the operator's vouch in Git (or their signature). A
record that says ``verified: false`` is fine here: it is kept in the log, but it never
becomes training data. So a hand-edited line that flips a failing verdict to a pass is
caught, and raw self-output can only reach training through a verifier's pass.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from convergent.gates.base import GateContext, Problem
from convergent.harness import ExecutionCase
from convergent.records import Record, Verdict
from convergent.verifiers import VerifyContext, execution_case, verify, verify_execution

GATE = "source"


def check_source(ctx: GateContext) -> Iterator[Problem]:
    vctx = verify_context(ctx)
    # Many records may run the same case: with the built-in execution verifier, a case
    # that passed once in this check passes again (its verdict is cached by what ran), so
    # it is looked up once. Failures are not reused: each one is re-verified.
    passed: dict[ExecutionCase, Verdict] = {}
    for line in ctx.new_lines:
        record = line.record
        if record is None or not _claims_verified(record):
            continue  # unparsable lines are the schema gate's to report
        case = _builtin_execution_case(record, vctx)
        verdict = passed.get(case) if case is not None else None
        if verdict is None:
            verdict = verify(record, vctx)
            if case is not None and verdict.verified:
                passed[case] = verdict
        if not verdict.verified:
            yield Problem(line.path, line.lineno, GATE,
                          f"claims verified: true but the {verdict.verifier} verifier says "
                          f"no: {verdict.detail}")


def verify_context(ctx: GateContext) -> VerifyContext:
    """Verification as of the change: evidence must be committed in its first parent (the
    staged change: HEAD), and the record's committer is the commit's author (staged: this
    clone's git identity)."""
    committer = None
    if ctx.commit is not None:
        from convergent.approval import person
        from convergent.gitops import open_repo

        committer = person(open_repo(ctx.root).commit(ctx.commit).author)
    return VerifyContext(ctx.root, ctx.config, base_rev=ctx.parents[0] if ctx.parents else None,
                         committer=committer)


def _builtin_execution_case(record: dict[str, Any], vctx: VerifyContext
                            ) -> ExecutionCase | None:
    """What the built-in execution verifier would run for ``record``; None when another
    verifier (a plugin's, or another evidence type's) decides, or the evidence is malformed."""
    if Record(record).evidence.get("type") != "execution":
        return None
    if vctx.verifiers.get("execution") is not verify_execution:
        return None
    try:
        return execution_case(record)
    except (KeyError, TypeError, AttributeError):
        return None  # verify() reports the malformed evidence


def _claims_verified(record: dict[str, object]) -> bool:
    verdict = record.get("verdict")
    return isinstance(verdict, dict) and verdict.get("verified") is True
