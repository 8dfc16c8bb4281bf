"""Gate ``source``: a record that claims ``verified: true`` must re-verify.

Execution evidence re-runs in the sandbox (cached by what ran, so a re-check is cheap),
grounding is checked against the stored snapshot, operator evidence against Git. A
record that says ``verified: false`` is fine here: it is kept in the log, but it never
becomes training data. So a hand-edited line that flips a failing verdict to a pass is
caught, and raw self-output can only reach training through a verifier's pass.
"""

from __future__ import annotations

from collections.abc import Iterator

from convergent.gates.base import GateContext, Problem
from convergent.verifiers import VerifyContext, verify

GATE = "source"


def check_source(ctx: GateContext) -> Iterator[Problem]:
    vctx = VerifyContext(ctx.root, ctx.config)
    for line in ctx.new_lines:
        record = line.record
        if record is None or not _claims_verified(record):
            continue  # unparsable lines are the schema gate's to report
        verdict = verify(record, vctx)
        if not verdict.verified:
            yield Problem(line.path, line.lineno, GATE,
                          f"claims verified: true but the {verdict.verifier} verifier says "
                          f"no: {verdict.detail}")


def _claims_verified(record: dict[str, object]) -> bool:
    verdict = record.get("verdict")
    return isinstance(verdict, dict) and verdict.get("verified") is True
