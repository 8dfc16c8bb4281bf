"""The collapse tripwire: score a candidate adapter on the frozen hold-out and decide.

Verified pass rate: greedy completions (pass@1) of every hold-out prompt, each run
with its tests in the sandbox; with ``[tripwire] pass_at_k = k`` (k > 1), k sampled
completions per task also give pass@k, reported beside it. Diversity: distinct-1..4
and self-BLEU over the greedy completions (plus the Vendi score when the embedding
package is installed), folded into one scalar (see :mod:`convergent.trainer.diversity`).
The same harness scores the base and the last-good adapter; scores are cached per
adapter hash.

The rule: promote only if pass rate and diversity stay within the configured
tolerances of the last-good adapter's (or the base's), and diversity has not shrunk
``shrink_streak`` (default 2) times in a row (a slow slide inside the tolerance halts too).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from convergent.config import Config
from convergent.harness import Harness
from convergent.holdout import task_case, tasks_sha256
from convergent.layout import local_dir
from convergent.progress import tracked
from convergent.records import canonical_json
from convergent.trainer.diversity import diversity_report
from convergent.trainer.generate import generate

CACHE_VERSION = 1


@dataclass(frozen=True)
class Score:
    """How one model (base or base + adapter) did on the hold-out."""

    model: str  # "base" or "sha256:<hex>"
    pass_rate: float
    diversity: float
    passed: int
    total: int
    details: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        return {"model": self.model, "pass_rate": round(self.pass_rate, 6),
                "diversity": round(self.diversity, 6), "passed": self.passed,
                "total": self.total}


@dataclass(frozen=True)
class Decision:
    promote: bool
    reasons: list[str]


def _cache_key(model: str, tasks_sha: str, settings: Mapping[str, Any]) -> str:
    blob = canonical_json({"v": CACHE_VERSION, "model": model, "holdout": tasks_sha,
                           "settings": dict(settings)})
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def _settings(config: Config) -> dict[str, Any]:
    trip = config["tripwire"]
    return {"max_new_tokens": int(trip["max_new_tokens"]),
            "embeddings": bool(trip.get("embeddings", True)),
            "pass_at_k": int(trip.get("pass_at_k", 1)),
            "temperature": float(trip.get("temperature", 0.8))}


def evaluate(root: Path, config: Config, base_model: str, adapter_dir: Path | None,
             model: str, tasks: Sequence[Mapping[str, Any]]) -> Score:
    """Score base (+ adapter) on ``tasks``; cached in .convergent/ per model and hold-out."""
    settings = _settings(config)
    key = _cache_key(model, tasks_sha256(tasks), settings)
    cache = local_dir(root) / "tripwire-cache" / f"{key}.json"
    if cache.exists():
        return Score(**json.loads(cache.read_text("utf-8")))
    score = _score(root, config, base_model, adapter_dir, model, tasks, settings)
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(score), sort_keys=True), "utf-8")
    tmp.replace(cache)
    return score


def _run_all(root: Path, config: Config, tasks: Sequence[Mapping[str, Any]],
             completions: Sequence[str]) -> list[bool]:
    """Each completion with its task's tests, through the execution harness (cached)."""
    harness = Harness.for_repo(root, config)
    runs = zip(tasks, completions, strict=True)
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = pool.map(lambda tc: harness.verify(task_case(*tc)), runs)
        return [r.passed for r in tracked(results, "running hold-out tests", len(tasks))]


def _pass_at_k(root: Path, config: Config, base_model: str, adapter_dir: Path | None,
               tasks: Sequence[Mapping[str, Any]], settings: Mapping[str, Any]) -> float:
    """Share of tasks that k sampled completions solve at least once (n = k samples)."""
    k = int(settings["pass_at_k"])
    samples = generate(base_model, adapter_dir, [t["prompt"] for t in tasks],
                       max_new_tokens=int(settings["max_new_tokens"]), samples=k,
                       temperature=float(settings["temperature"]), seed=0)
    flat_tasks = [t for t, s in zip(tasks, samples, strict=True) for _ in s]
    passed = iter(_run_all(root, config, flat_tasks, [c for s in samples for c in s]))
    solved = sum(1 for s in samples if any([next(passed) for _ in s]))
    return solved / len(tasks)


def _score(root: Path, config: Config, base_model: str, adapter_dir: Path | None, model: str,
           tasks: Sequence[Mapping[str, Any]], settings: Mapping[str, Any]) -> Score:
    completions = [c[0] for c in generate(base_model, adapter_dir, [t["prompt"] for t in tasks],
                                          max_new_tokens=int(settings["max_new_tokens"]),
                                          samples=1)]
    results = _run_all(root, config, tasks, completions)
    passed = sum(results)
    report = diversity_report(completions, use_embeddings=bool(settings["embeddings"]))
    details: dict[str, Any] = {
        "diversity": dict(report),
        "failed": [t["task_id"] for t, ok in zip(tasks, results, strict=True) if not ok][:20],
        "sample": completions[:3]}
    if int(settings["pass_at_k"]) > 1:
        details[f"pass@{settings['pass_at_k']}"] = _pass_at_k(
            root, config, base_model, adapter_dir, tasks, settings)
    return Score(model=model, pass_rate=passed / len(tasks), diversity=float(report["diversity"]),
                 passed=passed, total=len(tasks), details=details)


def decide(candidate: Score, reference: Score, previous: Sequence[float], config: Config
           ) -> Decision:
    """Promote or halt. ``previous``: diversity of the promoted chain, oldest first."""
    trip = config["tripwire"]
    pass_tol, div_tol = float(trip["pass_rate_tolerance"]), float(trip["diversity_tolerance"])
    reasons = []
    if candidate.pass_rate < reference.pass_rate - pass_tol:
        reasons.append(f"pass rate fell from {reference.pass_rate:.4f} ({reference.model}) to "
                       f"{candidate.pass_rate:.4f}, beyond the tolerance {pass_tol}")
    if candidate.diversity < reference.diversity - div_tol:
        reasons.append(f"diversity fell from {reference.diversity:.4f} ({reference.model}) to "
                       f"{candidate.diversity:.4f}, beyond the tolerance {div_tol}")
    streak = int(trip.get("shrink_streak", 2))
    chain = [*previous, reference.diversity, candidate.diversity]
    if streak > 0 and len(chain) > streak and all(
            a > b for a, b in zip(chain[-streak - 1:], chain[-streak:], strict=False)):
        shown = " -> ".join(f"{d:.4f}" for d in chain[-streak - 1:])
        reasons.append(f"diversity shrank {streak} times in a row ({shown}): a slow collapse "
                       "halts too, even inside the tolerance")
    return Decision(promote=not reasons, reasons=reasons)
