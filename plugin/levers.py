"""Levers first: what must be tried, measured and recorded before a gap may be proposed.

The frozen-base levers, in the order they must be tried for a gap:
``route``, then ``verify_best_of_n`` (execution-verify + best-of-N), then ``rag``
(RAG + citation grounding). Each try must come after the gap was recorded and after
the lever before it, carry its measured value, and leave the gap open.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

LEVER_ORDER = ("route", "verify_best_of_n", "rag")


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
    ev = gap["evidence"]
    target = float(ev["target"])
    return measured > target if ev.get("lower_is_better") else measured < target


def find_gap(history: Iterable[Mapping[str, Any]], name: str) -> dict[str, Any] | None:
    """The most recent gap record with this name."""
    found = None
    for record in history:
        if record.get("kind") == "gap" and record.get("evidence", {}).get("name") == name:
            found = dict(record)
    return found


def plan_levers(history: list[Mapping[str, Any]], gap_name: str) -> LeverPlan:
    """Check levers-first for ``gap_name`` against the records in ``history`` (log order)."""
    gap = find_gap(history, gap_name)
    if gap is None:
        return LeverPlan(None, [], [f"no gap named {gap_name!r} is recorded: run "
                                    f"`convergent gap add {gap_name} ...` first"])
    missing: list[str] = []
    chosen: list[dict[str, Any]] = []
    after = gap["ts"]
    for lever in LEVER_ORDER:
        tries = [dict(r) for r in history if r.get("kind") == "lever"
                 and r.get("evidence", {}).get("gap") == gap_name
                 and r.get("evidence", {}).get("lever") == lever]
        if not tries:
            missing.append(f"lever {lever!r} was never tried for gap {gap_name!r}")
            continue
        in_order = [t for t in tries if t["ts"] > after]
        if not in_order:
            before = ("the gap was recorded" if not chosen
                      else f"lever {chosen[-1]['evidence']['lever']!r}")
            missing.append(f"lever {lever!r} for gap {gap_name!r} was tried before {before} "
                           "(out of order): try it again")
            continue
        latest = in_order[-1]
        measured = latest.get("evidence", {}).get("measured")
        if not isinstance(measured, int | float) or isinstance(measured, bool):
            missing.append(f"lever {lever!r} try {latest['id']} has no measured value")
            continue
        if not gap_is_open(gap, float(measured)):
            missing.append(f"lever {lever!r} closed gap {gap_name!r} (measured {measured}, "
                           f"target {gap['evidence']['target']}): no distillation needed")
            continue
        chosen.append(latest)
        after = latest["ts"]
    return LeverPlan(gap, chosen, missing)
