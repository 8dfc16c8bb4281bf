"""Capability gaps and lever tries, recorded in the log with their measured values.

A *gap* says: on this evaluation set (a JSONL file of HumanEval-format tasks, a path
relative to the repo root), this metric measures ``measured`` but should reach
``target``. A *lever try* says: after applying one frozen-base lever (``route``,
``verify_best_of_n``, ``rag``) to that gap, the metric measured this. Both are appended
through the :class:`~convergent.recorder.Recorder` and committed, so the levers-first
check (:func:`convergent.levers.plan_levers`) can later rely on them.
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path
from typing import Any

from convergent.config import load_config
from convergent.errors import ConvergentError
from convergent.gitops import commit_paths
from convergent.layout import RECORDS_DIR, SOURCES_DIR
from convergent.levers import LEVER_ORDER, find_gap, gap_is_open
from convergent.recorder import Recorder
from convergent.status import read_records

EMITTER = "convergent/levers"


class GapError(ConvergentError):
    """A gap or lever try cannot be recorded as asked (the message says what to do)."""


def _source(root: Path) -> dict[str, str]:
    # Measurements of the frozen base, made by this system for this repo's base model.
    return {"emitter": EMITTER, "model": str(load_config(root)["base"]["model"]),
            "origin": "self"}


def _number(value: float, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise GapError(f"{what} must be a finite number, got {value!r}")
    return float(value)


def eval_path(root: Path, eval_ref: str) -> Path:
    """The evaluation set a gap names, which must be a file inside the repo."""
    path = (root / eval_ref).resolve()
    if not path.is_relative_to(root.resolve()):
        raise GapError(f"evaluation set {eval_ref!r} is outside the records repo; copy it in "
                       "and name it by its path relative to the repo root")
    if not path.is_file():
        raise GapError(f"evaluation set {eval_ref!r} does not exist under {root}: add the JSONL "
                       "file of tasks first")
    return path


def _emit_and_commit(root: Path, draft: dict[str, Any], message: str,
                     extra_paths: tuple[str, ...] = ()) -> dict[str, Any]:
    with Recorder(root) as recorder:
        record = recorder.emit(draft)
    commit_paths(root, [RECORDS_DIR, SOURCES_DIR, *extra_paths], message)
    return record


def record_gap(root: Path, name: str, metric: str, target: float, eval_ref: str,
               measured: float, lower_is_better: bool = False) -> dict[str, Any]:
    """Record a measured capability gap, with the evaluation set it was measured on.

    The evaluation set is committed with the record (and its sha256 kept in it), so a
    later lever try is measured on exactly the same tasks.
    """
    root = Path(root).resolve()
    if not name or any(ch.isspace() for ch in name):
        raise GapError(f"gap name {name!r} must be non-empty and without whitespace")
    target = _number(target, "target")
    measured = _number(measured, "measured")
    path = eval_path(root, eval_ref)
    rel = path.relative_to(root).as_posix()
    evidence: dict[str, Any] = {
        "type": "gap", "name": name, "metric": metric, "target": target, "eval": rel,
        "eval_sha256": hashlib.sha256(path.read_bytes()).hexdigest(), "measured": measured,
    }
    if lower_is_better:
        evidence["lower_is_better"] = True
    if not gap_is_open({"evidence": evidence}, measured):
        raise GapError(f"gap {name!r}: measured {measured} already meets the target {target}; "
                       "there is no gap to record")
    draft = {"kind": "gap", "claim": f"gap {name}: {metric} {measured} on {rel}, target "
                                     f"{target}",
             "evidence": evidence, "confidence": 1.0, "source": _source(root)}
    return _emit_and_commit(root, draft, f"convergent: gap {name} measured", (rel,))


def require_gap(root: Path, name: str) -> dict[str, Any]:
    """The latest gap record named ``name``; GapError saying how to record one."""
    gap = find_gap(read_records(root), name)
    if gap is None:
        raise GapError(f"no gap named {name!r} is recorded: run `convergent gap add {name} "
                       "--metric METRIC --target T --eval PATH --measured M` first")
    return gap


def record_lever(root: Path, gap: str, lever: str, measured: float,
                 evidence: dict[str, Any]) -> dict[str, Any]:
    """Record one lever try for ``gap``: its measured value and its evidence (``detail``).

    The record links the gap it was measured against; whether it left the gap open is
    decided later, against the gap's target, by the levers-first check.
    """
    root = Path(root).resolve()
    if lever not in LEVER_ORDER:
        raise GapError(f"unknown lever {lever!r}: use one of {', '.join(LEVER_ORDER)} "
                       "(tried in that order)")
    measured = _number(measured, "measured")
    if not isinstance(evidence, dict):
        raise GapError(f"lever evidence must be an object, got {type(evidence).__name__}")
    gap_record = require_gap(root, gap)
    target = gap_record["evidence"]["target"]
    state = "open" if gap_is_open(gap_record, measured) else "closed"
    draft = {"kind": "lever",
             "claim": f"lever {lever} on gap {gap}: measured {measured} (target {target}, "
                      f"gap {state})",
             "evidence": {"type": "lever", "lever": lever, "gap": gap, "measured": measured,
                          "detail": evidence},
             "links": [gap_record["id"]], "confidence": 1.0, "source": _source(root)}
    return _emit_and_commit(root, draft, f"convergent: lever {lever} tried on gap {gap}")
