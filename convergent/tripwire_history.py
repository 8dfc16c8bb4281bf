"""The tripwire's history from the log: one row per cycle, for status and the report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from convergent.history import read_records
from convergent.records import typed


def tripwire_history(root: Path) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for record in typed(read_records(root), "cycle"):
        ev = record.evidence
        cand = ev.get("tripwire", {}).get("candidate", {})
        rows.append({"cycle": len(rows) + 1, "pass_rate": float(cand.get("pass_rate", 0.0)),
                     "diversity": float(cand.get("diversity", 0.0)),
                     "outcome": ev.get("outcome", "halted"), "adapter": ev.get("adapter"),
                     "ts": record.ts})
    return rows


def trust_record(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Cycles run, halted, and consecutive clean (promoted) cycles up to now."""
    clean = 0
    for row in reversed(rows):
        if row["outcome"] != "promoted":
            break
        clean += 1
    last = rows[-1] if rows else None
    return {"cycles": len(rows), "halted": sum(1 for r in rows if r["outcome"] != "promoted"),
            "consecutive_clean": clean,
            "last": None if last is None else {k: last[k] for k in ("pass_rate", "diversity",
                                                                    "outcome")}}
