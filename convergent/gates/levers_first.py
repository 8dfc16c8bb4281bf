"""Gate ``levers-first``: gaps and lever tries are measured, and a proposal links a
measured, in-order try of each lever.

A gap or lever record the change appends must be *measured* (per-task outcomes, see
:mod:`convergent.outcomes`): its completions file is committed and hashes to its name, the
outcomes match it and give the recorded numbers, and a deterministic sample of them,
seeded by the record id, re-verifies in the sandbox now. A typed number (no outcomes) is
refused unless the repo config says ``[levers] allow_reported = true``.

For its gap, a proposal must link the gap record and one try of each frozen-base lever
(``route``, ``verify_best_of_n``, ``rag``), each recorded after the gap and after the
lever before it, each with its measured value, each leaving the gap open.

One cycle per measured gap state: a new proposal for a gap needs lever tries recorded
after the previous proposal's cycle, unless that cycle halted or its adapter was
reverted, and after any earlier proposal for the gap that has no cycle yet. One set of
tries therefore backs one cycle that changes the weights. The rule is decided by
:func:`convergent.levers.proposal_problems`, which the cycle runs again before training.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from convergent.errors import RepoError
from convergent.gates.base import GateContext, NewLine, Problem
from convergent.holdout import parse_tasks
from convergent.layout import OUTCOMES_DIR
from convergent.levers import REPORTED_REFUSED, allow_reported, is_measured, proposal_problems
from convergent.records import Record, typed

GATE = "levers-first"
MEASURED_KINDS = ("gap", "lever")


def check_levers_first(ctx: GateContext) -> Iterator[Problem]:
    for change in ctx.files:
        if change.path.startswith(OUTCOMES_DIR + "/") and change.old is not None and (
                change.new != change.old):
            yield Problem(change.path, 1, GATE, "a committed completions file never changes "
                                                "nor goes away")
    lines = [line for line in ctx.new_lines if line.record is not None]
    for line in lines:
        assert line.record is not None
        if Record(line.record).kind in MEASURED_KINDS:
            for reason in measured_problems(ctx, line.record):
                yield Problem(line.path, line.lineno, GATE, reason)
    yield from _proposals(ctx, [line for line in lines
                                if line.record and Record(line.record).kind == "proposal"])


def _proposals(ctx: GateContext, proposals: list[NewLine]) -> Iterator[Problem]:
    if not proposals or ctx.history is None:
        return
    history = ctx.history()
    for line in proposals:
        assert line.record is not None
        for reason in proposal_problems(history, line.record,
                                        reported_ok=allow_reported(ctx.config)):
            yield Problem(line.path, line.lineno, GATE, reason)


def measured_problems(ctx: GateContext, record: Mapping[str, Any]) -> list[str]:
    """Why a gap or lever record may not be appended (empty: it may)."""
    from convergent.measurement import verifier
    from convergent.outcomes import measurement_problems

    if not is_measured(record):
        return [] if allow_reported(ctx.config) else [REPORTED_REFUSED]
    read = ctx.read_file or (lambda path: None)
    tasks = _eval_tasks(Record(record).evidence, read)
    if isinstance(tasks, str):
        return [tasks]
    problems = _same_eval_as_gap(ctx, record)
    return problems or measurement_problems(record, tasks, read, verifier(ctx.root, ctx.config))


def _eval_tasks(evidence: Mapping[str, Any], read: Callable[[str], bytes | None]
                ) -> list[dict[str, Any]] | str:
    """The evaluation set the record was measured on, as committed; else why not."""
    ref, sha = evidence.get("eval"), evidence.get("eval_sha256")
    if not isinstance(ref, str) or not isinstance(sha, str):
        return "evidence.eval / evidence.eval_sha256: missing"
    data = read(ref)
    if data is None:
        return f"its evaluation set {ref} is not in the repo: commit it with the record"
    if hashlib.sha256(data).hexdigest() != sha:
        return f"its evaluation set {ref} does not hash to evidence.eval_sha256"
    try:
        return parse_tasks(data.decode("utf-8"), ref)
    except (RepoError, UnicodeDecodeError) as exc:
        return f"its evaluation set is unreadable: {exc}"


def _same_eval_as_gap(ctx: GateContext, record: Mapping[str, Any]) -> list[str]:
    """A lever is measured on its gap's very tasks (the gap it links)."""
    lever = Record(record)
    if lever.kind != "lever" or ctx.history is None:
        return []
    links = set(lever.links)
    # The id as written: a hand-made gap without one is linked by nothing.
    gaps = [r for r in typed(ctx.history(), "gap") if r.raw.get("id") in links]
    if not gaps:
        return ["a measured lever try must link the gap record it was measured for"]
    if gaps[-1].evidence.get("eval_sha256") != lever.evidence.get("eval_sha256"):
        return ["measured on another evaluation set than its gap's (eval_sha256 differs)"]
    return []
