"""Capability gaps and lever tries, recorded in the log with their measured values.

A *gap* says: on this evaluation set (a JSONL file of HumanEval-format tasks, a path
relative to the repo root), this metric measures ``measured`` but should reach
``target``. A *lever try* says: after applying one frozen-base lever (``route``,
``verify_best_of_n``, ``rag``) to that gap, the metric measured this. Both are appended
through the :class:`~convergent.recorder.Recorder` and committed, so the levers-first
check (:func:`convergent.levers.plan_levers`) can later rely on them.

Measured (:func:`measure_gap`, :func:`record_measured_lever`): the value is pass@1 of a
member on the evaluation set, recorded with its per-task outcomes and its completions
file (:mod:`convergent.outcomes`), which the ``levers-first`` gate re-verifies. Typed
(:func:`record_gap`, :func:`record_lever`): a number the host reports, refused unless
``[levers] allow_reported = true``, and shown as "reported, not measured".
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path
from typing import Any

from convergent.config import load_config
from convergent.errors import ConvergentError
from convergent.gitops import commit_paths
from convergent.history import read_records
from convergent.layout import RECORDS_DIR, SOURCES_DIR
from convergent.levers import LEVER_ORDER, REPORTED_REFUSED, allow_reported, find_gap, gap_is_open
from convergent.outcomes import Measurement
from convergent.recorder import Recorder
from convergent.records import Record

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


def _require_reported_allowed(root: Path, what: str) -> None:
    if not allow_reported(load_config(root)):
        raise GapError(f"{what}: {REPORTED_REFUSED}")


def _gap_evidence(root: Path, name: str, metric: str, target: float, eval_ref: str,
                  measured: float, lower_is_better: bool) -> dict[str, Any]:
    if not name or any(ch.isspace() for ch in name):
        raise GapError(f"gap name {name!r} must be non-empty and without whitespace")
    path = eval_path(root, eval_ref)
    evidence: dict[str, Any] = {
        "type": "gap", "name": name, "metric": metric, "target": _number(target, "target"),
        "eval": path.relative_to(root).as_posix(),
        "eval_sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        "measured": _number(measured, "measured")}
    if lower_is_better:
        evidence["lower_is_better"] = True
    if not gap_is_open({"evidence": evidence}, evidence["measured"]):
        raise GapError(f"gap {name!r}: measured {evidence['measured']} already meets the "
                       f"target {evidence['target']}; there is no gap to record")
    return evidence


def _emit_gap(root: Path, evidence: dict[str, Any], extra: tuple[str, ...] = ()
              ) -> dict[str, Any]:
    name, rel = evidence["name"], evidence["eval"]
    how = "measured" if "measurements" in evidence else "reported, not measured"
    draft = {"kind": "gap", "claim": f"gap {name}: {evidence['metric']} {evidence['measured']}"
                                     f" on {rel}, target {evidence['target']} ({how})",
             "evidence": evidence, "confidence": 1.0, "source": _source(root)}
    return _emit_and_commit(root, draft, f"convergent: gap {name} {how}", (rel, *extra))


def record_gap(root: Path, name: str, metric: str, target: float, eval_ref: str,
               measured: float, lower_is_better: bool = False) -> dict[str, Any]:
    """Record a capability gap whose value the host reports (typed, not measured here),
    with the evaluation set it names; needs ``[levers] allow_reported = true``.

    The evaluation set is committed with the record (and its sha256 kept in it), so a
    later lever try is measured on exactly the same tasks.
    """
    root = Path(root).resolve()
    evidence = _gap_evidence(root, name, metric, target, eval_ref, measured, lower_is_better)
    _require_reported_allowed(root, f"gap {name!r}")
    return _emit_gap(root, evidence)


def measure_gap(root: Path, name: str, target: float, eval_ref: str,
                member: str | None = None) -> dict[str, Any]:
    """Measure pass@1 of ``member`` (default: the base) on the evaluation set, greedy, and
    record the gap with its per-task outcomes and completions file."""
    from convergent.measurement import load_eval, run_member, verifier
    from convergent.members import choose_member

    root = Path(root).resolve()
    config = load_config(root)
    tasks = load_eval(eval_path(root, eval_ref))
    member_name, generate = choose_member(config, member)
    measurement = run_member(verifier(root, config), tasks, member_name, generate)
    evidence = _gap_evidence(root, name, "pass@1", target, eval_ref, measurement.pass_rate,
                             False)
    return _emit_gap(root, _with_measurements(root, evidence, [measurement]),
                     _completion_paths(root, [measurement]))


def _with_measurements(root: Path, evidence: dict[str, Any], measurements: list[Measurement]
                       ) -> dict[str, Any]:
    entries = [m.evidence() for m in measurements]
    best = max(entries, key=lambda e: e["pass_rate"])
    return {**evidence, "measured": best["pass_rate"], "stderr": best["stderr"],
            "measurements": entries}


def _completion_paths(root: Path, measurements: list[Measurement]) -> tuple[str, ...]:
    from convergent.measurement import write_completions

    return tuple(sorted({write_completions(root, m) for m in measurements}))


def require_gap(root: Path, name: str) -> dict[str, Any]:
    """The latest gap record named ``name``; GapError saying how to record one."""
    gap = find_gap(read_records(root), name)
    if gap is None:
        raise GapError(f"no gap named {name!r} is recorded: run `convergent gap measure "
                       f"{name} --eval PATH --target T` first")
    return gap


def gap_tasks(root: Path, gap_record: dict[str, Any]) -> list[dict[str, Any]]:
    """The tasks of the gap's evaluation set, unchanged since the gap was measured."""
    from convergent.measurement import load_eval

    ev = Record(gap_record).evidence
    eval_ref = ev["eval"]
    path = eval_path(root, eval_ref)
    recorded = ev.get("eval_sha256")
    if recorded and hashlib.sha256(path.read_bytes()).hexdigest() != recorded:
        # A lever measured on other tasks than the gap says nothing about the gap.
        raise GapError(f"{eval_ref} changed since gap {ev['name']!r} was "
                       "measured: measure the gap again (`convergent gap measure`) before "
                       "trying the lever")
    return load_eval(path)


def record_lever(root: Path, gap: str, lever: str, measured: float,
                 evidence: dict[str, Any]) -> dict[str, Any]:
    """Record one lever try for ``gap`` whose value the host reports (typed, not measured
    here), with its evidence (``detail``); needs ``[levers] allow_reported = true``.

    The record links the gap it was measured against; whether it left the gap open is
    decided later, against the gap's target, by the levers-first check.
    """
    root = Path(root).resolve()
    _check_lever(lever)
    measured = _number(measured, "measured")
    if not isinstance(evidence, dict):
        raise GapError(f"lever evidence must be an object, got {type(evidence).__name__}")
    gap_record = require_gap(root, gap)
    _require_reported_allowed(root, f"lever {lever!r}")
    return _emit_lever(root, gap_record, {"type": "lever", "lever": lever, "gap": gap,
                                          "measured": measured, "detail": evidence})


def record_measured_lever(root: Path, gap_record: dict[str, Any], lever: str,
                          measurements: list[Measurement], detail: dict[str, Any]
                          ) -> dict[str, Any]:
    """Record a lever try measured here: the best measurement's pass@1, every measurement
    with its per-task outcomes, and their completions files, in one commit."""
    root = Path(root).resolve()
    _check_lever(lever)
    ev = Record(gap_record).evidence
    evidence = {"type": "lever", "lever": lever, "gap": ev["name"], "measured": 0.0,
                "eval": ev["eval"], "eval_sha256": ev.get("eval_sha256"), "detail": detail}
    return _emit_lever(root, gap_record, _with_measurements(root, evidence, measurements),
                       _completion_paths(root, measurements))


def _check_lever(lever: str) -> None:
    if lever not in LEVER_ORDER:
        raise GapError(f"unknown lever {lever!r}: use one of {', '.join(LEVER_ORDER)} "
                       "(tried in that order)")


def _emit_lever(root: Path, gap_record: dict[str, Any], evidence: dict[str, Any],
                extra: tuple[str, ...] = ()) -> dict[str, Any]:
    lever, gap, measured = evidence["lever"], evidence["gap"], evidence["measured"]
    target = Record(gap_record).evidence["target"]
    state = "open" if gap_is_open(gap_record, measured) else "closed"
    how = "" if "measurements" in evidence else ", reported, not measured"
    draft = {"kind": "lever",
             "claim": f"lever {lever} on gap {gap}: measured {measured} (target {target}, "
                      f"gap {state}{how})",
             "evidence": evidence, "links": [gap_record["id"]], "confidence": 1.0,
             "source": _source(root)}
    return _emit_and_commit(root, draft, f"convergent: lever {lever} tried on gap {gap}",
                            extra)
