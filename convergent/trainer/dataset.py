"""Build a cycle's training set from the log: source-gated, decontaminated, de-duplicated.

Only experiences that re-verify *now* become training data, never an unverified record and
never raw self-output: the log's verdicts are not trusted. Execution evidence is judged
again by the execution harness itself (:mod:`convergent.harness`, the one implementation
of "passed its tests", whatever verifier a plugin registered), other evidence by its
verifier. A response that uses a process-control escape (exit, signals, ``atexit``, fork,
exception hooks, ctypes, frame inspection; :mod:`convergent.escapes`) is dropped even if
it verified, and the manifest counts them. The rest are checked again through the one
decontamination API (:func:`convergent.contamination.contaminated`: n-gram, text and
functional stages, every benchmark item a response fits run against it), de-duplicated
on their normalized (task, response), and mixed with
external (non-self) data at the configured share. The manifest names every item and is
hashed, so a cycle can be rebuilt bit for bit from the log (``convergent regenerate``).
"""

from __future__ import annotations

import hashlib
import json
import math
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any

from convergent.completions import continuation
from convergent.config import Config
from convergent.errors import ConvergentError
from convergent.records import Record, addressed, canonical_json

ESCAPE_DROP = "uses a process-control escape"
CONTAMINATED_DROP = "leaks a benchmark or the hold-out"


class DatasetError(ConvergentError):
    """The training set cannot be built (nothing verified to train on, bad share ...)."""


@dataclass(frozen=True)
class Dataset:
    path: Path  # JSONL of {"prompt", "completion"}
    manifest: dict[str, Any]
    manifest_sha256: str


def _pair_key(prompt: str, completion: str) -> str:
    norm = " ".join(prompt.split()) + "\0" + " ".join(completion.split())
    return hashlib.sha256(norm.encode("utf-8")).hexdigest()


def select_experiences(root: Path, config: Config, history: Sequence[Mapping[str, Any]],
                       wanted_ids: Sequence[str]) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """The wanted experiences that may be trained on, and why each other one was dropped."""
    from convergent.escapes import find_escapes
    from convergent.verifiers import VerifyContext, verify, verify_execution

    by_id = addressed(history, ids=set(wanted_ids))  # never a later line reusing the id
    ctx = VerifyContext(root, config)
    # Execution evidence is judged by the harness itself, whatever a plugin registered.
    ctx.verifiers = {**ctx.verifiers, "execution": verify_execution}
    candidates: list[tuple[str, dict[str, Any]]] = []
    dropped: dict[str, str] = {}
    for rid in wanted_ids:
        record = by_id.get(rid)
        if record is None or Record(record).kind != "experience":
            dropped[rid] = "not an experience in the log at this commit"
        elif not Record(record).verified:
            dropped[rid] = "unverified: never training data"
        elif not (verdict := verify(record, ctx)).verified:
            dropped[rid] = f"does not re-verify now: {verdict.detail}"
        elif escapes := find_escapes(str(record.get("response", ""))):
            dropped[rid] = f"{ESCAPE_DROP}: {escapes[0]}"
        else:
            candidates.append((rid, dict(record)))
    leaks = _leaks(root, config, [record for _, record in candidates])
    kept: list[dict[str, Any]] = []
    seen: set[str] = set()
    for n, (rid, record) in enumerate(candidates):
        if n in leaks:
            dropped[rid] = f"{CONTAMINATED_DROP}: {leaks[n]}"
        elif (key := _pair_key(record["task"], record["response"])) in seen:
            dropped[rid] = "duplicate of an earlier experience"
        else:
            seen.add(key)
            kept.append(record)
    return kept, dropped


def _leaks(root: Path, config: Config, records: Sequence[Mapping[str, Any]]) -> dict[int, str]:
    """Index -> the first decontamination finding of each record that leaks a benchmark
    or the hold-out, through the one API with the dataset build's settings (every item a
    response fits is run). A check that cannot run stops the build (fail closed)."""
    from convergent.contamination import contaminated
    from convergent.errors import RepoError

    try:
        findings = contaminated(root, config, records, build=True)
    except RepoError as exc:
        raise DatasetError(f"decontamination cannot run: {exc}") from None
    out: dict[int, str] = {}
    for finding in findings:
        out.setdefault(finding.record, finding.message)
    return out


def external_count(self_count: int, share: float) -> int:
    """How many external items make them ``share`` of the mix (at least one)."""
    if not 0 < share < 1:
        raise DatasetError(f"[cycle] external_share must be in (0, 1), got {share}")
    return max(1, math.ceil(self_count * share / (1 - share)))


def registered_external_data() -> dict[str, Callable[[], Iterable[Mapping[str, Any]]]]:
    """External data sets registered through the ``register_external_data`` hook."""
    from convergent.plugins import collect

    return collect("register_external_data")


def external_items(root: Path, config: Config, names: Sequence[str], need: int
                   ) -> tuple[list[Mapping[str, Any]], dict[str, Any]]:
    """The first ``need`` clean, non-self items of the named sets, in order."""
    from convergent.contamination import external_record
    from convergent.trainer.external_data import stdlib_info

    available = registered_external_data()
    missing = [name for name in names if name not in available]
    if missing:
        raise DatasetError(f"[cycle] external names {', '.join(missing)}, which no plugin "
                           f"registers (registered: {', '.join(available) or 'none'})")
    chosen: list[Mapping[str, Any]] = []
    for name in names:
        # In order, in batches: each batch is screened in one call, through the API the
        # experiences go through (a stdlib function that solves a benchmark item, such as
        # statistics.median for HumanEval/47, is benchmark data and is skipped).
        candidates = (item for item in available[name]() if item.get("origin") != "self")
        while len(chosen) < need:
            batch = list(islice(candidates, max(need - len(chosen), 8)))
            if not batch:
                break
            leaks = _leaks(root, config, [external_record(str(item["prompt"]),
                                                          str(item["completion"]))
                                          for item in batch])
            chosen.extend(item for n, item in enumerate(batch) if n not in leaks)
        del chosen[need:]
    if len(chosen) < need:
        raise DatasetError(f"only {len(chosen)} clean external items, {need} needed")
    sources = {name: (stdlib_info() if name == "stdlib" else {"name": name}) for name in names}
    return chosen, sources


def build_dataset(root: Path, config: Config, history: Sequence[Mapping[str, Any]],
                  wanted_ids: Sequence[str], out_dir: Path) -> Dataset:
    """Write ``out_dir/dataset.jsonl`` and ``out_dir/manifest.json``; deterministic."""
    kept, dropped = select_experiences(root, config, history, wanted_ids)
    if not kept:
        raise DatasetError("no verified, decontaminated experience to train on: "
                           f"{len(dropped)} dropped ({_reasons(dropped)})")
    cycle = config["cycle"]
    need = external_count(len(kept), float(cycle["external_share"]))
    external, sources = external_items(root, config, list(cycle["external"]), need)
    rows = [{"prompt": r["task"], "completion": continuation(r["task"], r["response"]),
             "id": r["id"]} for r in kept]
    rows += [{"prompt": e["prompt"], "completion": e["completion"], "id": e["id"]}
             for e in external]
    random.Random(int(cycle["seed"])).shuffle(rows)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "dataset.jsonl"
    path.write_text("".join(canonical_json({"prompt": r["prompt"], "completion":
                                            r["completion"]}) + "\n" for r in rows), "utf-8")
    escaped = sorted(rid for rid, why in dropped.items() if why.startswith(ESCAPE_DROP))
    manifest = {
        "records": [r["id"] for r in kept],
        "dropped": dropped,
        "escapes_dropped": {"count": len(escaped), "ids": escaped},
        "external": {"source": sources, "ids": [e["id"] for e in external],
                     "share": round(len(external) / len(rows), 4)},
        "order": [r["id"] for r in rows],
        "dataset_sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        "holdout_sha256": config["tripwire"].get("holdout_sha256", ""),
    }
    text = canonical_json(manifest)
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True), "utf-8")
    return Dataset(path, manifest, hashlib.sha256(text.encode("utf-8")).hexdigest())


def _reasons(dropped: Mapping[str, str]) -> str:
    counts: dict[str, int] = {}
    for reason in dropped.values():
        counts[reason] = counts.get(reason, 0) + 1
    return "; ".join(f"{n} {reason}" for reason, n in counts.items()) or "none wanted"
