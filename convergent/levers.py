"""Levers first: what must be tried, measured and recorded before a gap may be proposed.

The frozen-base levers, in the order they must be tried for a gap:
``route``, then ``verify_best_of_n`` (execution-verify + best-of-N), then ``rag``
(RAG + citation grounding). Each try must come after the gap was recorded and after
the lever before it, carry its measured value, and leave the gap open.

One cycle per measured gap state (:func:`gap_state_since`): the tries must also come
after every earlier proposal for the gap that has no cycle yet, and after every cycle of
another proposal for the gap that promoted an adapter still in place (not reverted). A
cycle that halted, or whose adapter was reverted, left the gap as it was measured, so its
tries still count. The ``levers-first`` gate, ``convergent propose`` and the cycle all
decide through :func:`proposal_problems` / :func:`plan_proposal`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from convergent.records import Record, typed

LEVER_ORDER = ("route", "verify_best_of_n", "rag")
REPORTED_REFUSED = ("a typed number (reported, not measured) is refused: measure it "
                    "(`convergent gap measure`, `convergent lever measure`), or let the repo "
                    "accept reported numbers with [levers] allow_reported = true")


def allow_reported(config: Mapping[str, Any]) -> bool:
    """``[levers] allow_reported``: only a real TOML ``true`` accepts typed numbers."""
    return config.get("levers", {}).get("allow_reported", False) is True


def is_measured(record: Mapping[str, Any]) -> bool:
    """Whether a gap or lever record was measured here (per-task outcomes), not typed."""
    return bool(Record(record).evidence.get("measurements"))


def how_measured(record: Mapping[str, Any]) -> str:
    """"measured" or "reported, not measured": how a proposal shows a record's value."""
    return "measured" if is_measured(record) else "reported, not measured"


@dataclass(frozen=True)
class LeverPlan:
    """The outcome of checking a gap: the records relied on, or what is missing."""

    gap: dict[str, Any] | None
    levers: list[dict[str, Any]]
    missing: list[str]

    @property
    def ok(self) -> bool:
        return not self.missing


def gap_is_open(gap: Mapping[str, Any], measured: float) -> bool:
    """Whether ``measured`` still falls short of the gap's target."""
    ev = Record(gap).evidence
    target = float(ev["target"])
    return measured > target if ev.get("lower_is_better") else measured < target


def find_gap(history: Iterable[Mapping[str, Any]], name: str) -> dict[str, Any] | None:
    """The most recent gap record with this name."""
    found = None
    for record in typed(history, "gap"):
        if record.evidence.get("name") == name:
            found = dict(record.raw)
    return found


@dataclass(frozen=True)
class Since:
    """Lever tries for a gap count only after ``ts``, because of ``reason``."""

    ts: str
    reason: str


def _short(record_id: object) -> str:
    return str(record_id).removeprefix("sha256:")[:12]


def gap_state_since(history: Sequence[Mapping[str, Any]], gap_name: str,
                    proposal_id: str | None = None) -> Since | None:
    """When the gap's current measured state began, as far as other proposals tell.

    ``proposal_id`` is the proposal being checked (None: a new one, after ``history``).
    Earlier proposals for the gap without a cycle, and cycles of other proposals for the
    gap that promoted an adapter not reverted since, each move the bound; halted or
    reverted cycles do not.
    """
    ids = [r.get("id") for r in history]
    position = ids.index(proposal_id) if proposal_id in ids else len(history)
    views = typed(history)
    cycles: dict[str, Record] = {}
    reverted: set[str] = set()
    for view in views:
        ev = view.evidence
        if view.kind == "cycle" and isinstance(ev.get("proposal"), str):
            cycles.setdefault(ev["proposal"], view)
        elif view.kind == "revert" and isinstance(ev.get("from"), str):
            reverted.add(ev["from"])
    since: Since | None = None
    for i, (view, record) in enumerate(zip(views, history, strict=True)):
        # A record's id and ts as written (a hand-made one may lack them: "None" then).
        if (view.kind != "proposal" or view.evidence.get("gap") != gap_name
                or record.get("id") == proposal_id):
            continue
        cycle = cycles.get(str(record.get("id")))
        if cycle is None:
            if i > position:
                continue
            candidate = Since(str(record.get("ts")), f"proposal {_short(record.get('id'))} for "
                              "this gap, which has no cycle yet")
        else:
            adapter = cycle.evidence.get("adapter")
            if cycle.evidence.get("outcome") != "promoted" or adapter in reverted:
                continue  # halted or reverted: the gap is as it was measured
            candidate = Since(str(cycle.raw.get("ts")), f"cycle {_short(cycle.raw.get('id'))} of "
                              f"proposal {_short(record.get('id'))}, which promoted "
                              f"{str(adapter)[:19]}")
        if since is None or candidate.ts > since.ts:
            since = candidate
    return since


def plan_proposal(history: Sequence[Mapping[str, Any]], gap_name: str,
                  proposal_id: str | None = None, *, reported_ok: bool) -> LeverPlan:
    """Levers first for a proposal (``proposal_id``, or a new one after ``history``): the
    tries recorded before it, in this gap state."""
    ids = [r.get("id") for r in history]
    position = ids.index(proposal_id) if proposal_id in ids else len(history)
    return plan_levers(history[:position], gap_name,
                       since=gap_state_since(history, gap_name, proposal_id),
                       reported_ok=reported_ok)


def proposal_problems(history: Sequence[Mapping[str, Any]], proposal: Mapping[str, Any], *,
                      reported_ok: bool) -> list[str]:
    """Why ``proposal`` does not satisfy levers first in ``history`` (empty: it does): the
    plan must hold and the proposal must link the gap and the tries it relies on.
    ``reported_ok``: the repo's :func:`allow_reported` (typed numbers count)."""
    gap_name = Record(proposal).evidence.get("gap")
    if not isinstance(gap_name, str):
        return ["proposal names no gap (evidence.gap)"]
    plan = plan_proposal(history, gap_name, str(proposal.get("id")), reported_ok=reported_ok)
    if not plan.ok or plan.gap is None:
        return list(plan.missing)
    needed = {plan.gap["id"]} | {lever["id"] for lever in plan.levers}
    # Through the record type: links that are not a list of ids link nothing.
    absent = sorted(needed - set(Record(proposal).links))
    if absent:
        return [f"proposal does not link the records it relies on: {', '.join(absent)}"]
    return []


def plan_levers(history: Sequence[Mapping[str, Any]], gap_name: str,
                since: Since | None = None, *, reported_ok: bool) -> LeverPlan:
    """Check levers-first for ``gap_name`` against the records in ``history`` (log order);
    with ``since``, tries count only after it too. Without ``reported_ok``, a gap or try
    whose number was typed (not measured) does not count."""
    gap = find_gap(history, gap_name)
    if gap is None:
        return LeverPlan(None, [], [f"no gap named {gap_name!r} is recorded: run "
                                    f"`convergent gap measure {gap_name} ...` first"])
    view = Record(gap)
    target = view.evidence.get("target")
    if not view.id or not view.ts or not isinstance(target, int | float) or isinstance(
            target, bool):
        # A hand-made gap line: nothing can link it, order tries after it or compare them.
        return LeverPlan(None, [], [f"gap {gap_name!r} ({view.id or 'no id'}) has no id, ts "
                                    "or numeric evidence.target: measure it again "
                                    f"(`convergent gap measure {gap_name} ...`)"])
    missing: list[str] = []
    if not reported_ok and not is_measured(gap):
        missing.append(f"gap {gap_name!r} ({gap['id']}): {REPORTED_REFUSED}")
    chosen: list[dict[str, Any]] = []
    after = view.ts
    first_bound = ("the gap was recorded", " (out of order)")
    if since is not None and since.ts > after:
        after = since.ts
        first_bound = (since.reason, " (one cycle per measured gap state: measure the levers "
                       "again)")
    for lever in LEVER_ORDER:
        # A try without an id or a ts (a hand-made line) can be neither linked nor ordered.
        tries = [dict(r.raw) for r in typed(history, "lever")
                 if r.evidence.get("gap") == gap_name and r.evidence.get("lever") == lever
                 and r.id and r.ts]
        if not tries:
            missing.append(f"lever {lever!r} was never tried for gap {gap_name!r}")
            continue
        in_order = [t for t in tries if t["ts"] > after]
        if not in_order:
            before, note = ((f"lever {Record(chosen[-1]).evidence['lever']!r}", " (out of order)")
                            if chosen else first_bound)
            missing.append(f"lever {lever!r} for gap {gap_name!r} was tried before {before}"
                           f"{note}: try it again")
            continue
        latest = in_order[-1]
        measured = Record(latest).evidence.get("measured")
        if not isinstance(measured, int | float) or isinstance(measured, bool):
            missing.append(f"lever {lever!r} try {latest['id']} has no measured value")
            continue
        if not reported_ok and not is_measured(latest):
            missing.append(f"lever {lever!r} try {latest['id']}: {REPORTED_REFUSED}")
            continue
        if not gap_is_open(gap, float(measured)):
            missing.append(f"lever {lever!r} closed gap {gap_name!r} (measured {measured}, "
                           f"target {Record(gap).evidence['target']}): no distillation needed")
            continue
        chosen.append(latest)
        after = latest["ts"]
    return LeverPlan(gap, chosen, missing)
