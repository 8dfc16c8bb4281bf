"""One distillation cycle, started by an approved proposal (exactly once).

    convergent cycle run          # every approved proposal that has no cycle yet

Stages: dataset build at the approval commit -> LoRA training in a subprocess (the base
stays frozen) -> the tripwire on the frozen hold-out -> either

* promoted: commit 1 appends the ``cycle`` and ``promotion`` records and registers the
  adapter; commit 2 (the promotion) changes only ``ACTIVE`` and is tagged ``adapter/v<N>``;
* halted: one commit appends the ``cycle`` and ``halt`` records; ``ACTIVE`` stays on the
  last-good adapter.

A cycle killed midway leaves nothing registered or promoted; running it again starts over.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from convergent.adapters import active_at
from convergent.approval import (
    ApprovalError,
    approval_records,
    pending_weight_problems,
    record_problems,
    require_main_branch,
)
from convergent.config import Config, committed_config
from convergent.errors import ConvergentError
from convergent.gitops import commit_paths, open_repo, repo_lock
from convergent.history import records_at
from convergent.holdout import frozen_holdout
from convergent.layout import ACTIVE_FILE, ADAPTERS_DIR, RECORDS_DIR, local_dir
from convergent.levers import allow_reported, proposal_problems
from convergent.plugins import load_plugins
from convergent.recorder import Recorder
from convergent.records import Record, addressed, typed
from convergent.trainer.bases import resolve_base_model
from convergent.trainer.dataset import Dataset, build_dataset
from convergent.trainer.registry import adapter_path, promote, register_adapter
from convergent.trainer.spec import TrainSpec
from convergent.trainer.train import cuda_available, detect_backend, run_training
from convergent.trainer.tripwire import decide, evaluate

Say = Callable[[str], None]


def _stderr(message: str) -> None:
    print(f"convergent: {message}", file=sys.stderr, flush=True)


class CycleError(ConvergentError):
    """A cycle could not run (hold-out changed, nothing to train on, training failed)."""


@dataclass
class StageTimes:
    """Wall seconds of each stage, kept in the cycle record (``evidence.stages_s``)."""

    seconds: dict[str, float] = field(default_factory=dict)

    def run(self, name: str, fn: Callable[[], Any]) -> Any:
        start = time.perf_counter()
        try:
            return fn()
        finally:
            self.seconds[name] = round(self.seconds.get(name, 0.0) + time.perf_counter() - start,
                                       4)


def choose_backend(config: Config) -> str:
    """Forced in ``[cycle] backend``, else a plugin's choice, else GPU + unsloth -> unsloth."""
    forced = str(config["cycle"].get("backend", "auto"))
    if forced != "auto":
        return detect_backend(forced)
    picked = load_plugins().hook.choose_backend(config=config["cycle"],
                                                gpu_available=cuda_available())
    return detect_backend(picked) if picked else detect_backend(None)


def cycles_of(history: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Cycle records by the proposal id they ran for."""
    return {r.evidence["proposal"]: dict(r.raw) for r in typed(history, "cycle")
            if isinstance(r.evidence.get("proposal"), str)}


def cycle_problems(root: Path, config: Config, history: list[dict[str, Any]],
                   proposal: Mapping[str, Any], approval: Mapping[str, Any]) -> list[str]:
    """Why this proposal may not be trained now (empty: it may), from committed history.

    The approval record must be the proposal's first one, in the committed log, and
    repeat what Git says (:func:`convergent.approval.record_problems`); the proposal must
    satisfy levers first in the current gap state (:func:`convergent.levers.
    proposal_problems`, the very function of the ``levers-first`` gate).
    """
    pid = proposal.get("id")
    # The record its id addresses, itself: not a later line reusing the id with another
    # manifest (what would be trained on).
    named = addressed(history, ids={pid}).get(pid) if isinstance(pid, str) else None
    if named is None or dict(named) != dict(proposal):
        return [f"proposal {pid} is not in the committed log"]
    first = approval_records(history).get(str(proposal["id"]))
    if first is None or first.get("id") != approval.get("id"):
        return [f"approval {approval.get('id')} is not the committed approval of proposal "
                f"{proposal['id']}"]
    return [*(f"approval: {p}" for p in record_problems(root, approval, "HEAD")),
            *(f"levers-first: {p}" for p in proposal_problems(
                history, proposal, reported_ok=allow_reported(config)))]


def due_proposals(root: Path) -> tuple[list[tuple[dict[str, Any], dict[str, Any]]],
                                       list[str]]:
    """(proposal, approval) pairs of the committed log that are approved and have no cycle
    yet, and why each other approved-looking proposal is refused."""
    root = Path(root).resolve()
    config = committed_config(root)
    history = records_at(open_repo(root), "HEAD")
    done = cycles_of(history)
    # A proposal is the record its id addresses: a hand-made line without an id, or one
    # reusing an approved proposal's id with other content, is no proposal anything approves.
    proposals = {r.id: dict(r.raw)
                 for r in typed(addressed(history, kind="proposal").values())}
    due, refused = [], []
    for pid, approval in approval_records(history).items():
        if pid in done:
            continue
        if pid not in proposals:
            refused.append(f"approval {approval.get('id')} names proposal {pid}, which is not "
                           "in the committed log")
            continue
        problems = cycle_problems(root, config, history, proposals[pid], approval)
        if problems:
            refused.append(f"proposal {pid} starts no cycle:\n" + "\n".join(
                f"  - {p}" for p in problems))
            continue
        due.append((proposals[pid], approval))
    return due, refused


def run_due_cycles(root: Path, say: Say = _stderr) -> list[dict[str, Any]]:
    """Run the cycle of each due proposal; raise when an approval was refused (after
    running the others)."""
    due, refused = due_proposals(root)
    cycles = [start_cycle(root, proposal, approval, say=say) for proposal, approval in due]
    if refused:
        raise CycleError("\n".join(refused))
    return cycles


def _require_clean(root: Path) -> None:
    """The cycle's commits hold only its own records: nothing else may be pending."""
    pending = open_repo(root).git.status("--porcelain", "--", RECORDS_DIR, ACTIVE_FILE,
                                         ADAPTERS_DIR).strip()
    if pending:
        raise CycleError(f"uncommitted changes in the log, ACTIVE or the registry:\n{pending}"
                         "\ncommit them (`convergent commit`) or discard them first: a cycle "
                         "reads and writes only committed history")


def start_cycle(root: Path, proposal: Mapping[str, Any], approval: Mapping[str, Any], *,
                say: Say = _stderr) -> dict[str, Any]:
    """Run the cycle of an approved proposal once; returns its ``cycle`` record.

    Everything is re-checked here, under the lock, from the committed history of the
    main branch: the approval against Git, levers first, and that no cycle ran yet.
    """
    root = Path(root).resolve()
    config = committed_config(root)  # never the working tree's: anyone can edit that
    with repo_lock(root, "cycle.lock"):
        repo = open_repo(root)
        try:
            require_main_branch(repo, config, "a cycle")
        except ApprovalError as exc:
            raise CycleError(str(exc)) from None
        history = records_at(repo, "HEAD")  # read once, under the lock: no cycle lands meanwhile
        existing = cycles_of(history).get(str(proposal["id"]))
        if existing is not None:
            say(f"proposal {proposal['id'][:19]} already has cycle {existing['id'][:19]}")
            return existing
        problems = cycle_problems(root, config, history, proposal, approval)
        if problems:
            raise CycleError(f"proposal {proposal['id']} starts no cycle:\n"
                             + "\n".join(f"  - {p}" for p in problems))
        _require_clean(root)
        from convergent.adapters import active_problems

        refused = active_problems(root, config)
        if refused:  # the tripwire would compare against weights nobody may have activated
            raise CycleError("the active adapter is refused by the adapters gate, so no cycle "
                             "runs on top of it:\n" + "\n".join(f"  - {p}" for p in refused))
        return _run_cycle(root, config, history, dict(proposal), dict(approval), say)


def _run_cycle(root: Path, config: Config, history: list[dict[str, Any]],
               proposal: dict[str, Any], approval: dict[str, Any], say: Say) -> dict[str, Any]:
    times = StageTimes()
    tasks = frozen_holdout(root, config)  # a changed hold-out stops the cycle here
    mover = pending_weight_problems(root, config)
    if mover:  # its commit would be refused: say so before any training, not after
        raise CycleError("this cycle's results could not be committed: " + "; ".join(mover)
                         + ". Run the cycle as an operator (the post-merge hook runs as the "
                         "merging operator) or as a listed [operators] cycle_runners identity")
    repo = open_repo(root)
    dataset_commit = repo.head.commit.hexsha
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
    work = local_dir(root) / "cycles" / f"{proposal['id'][7:19]}-{stamp}"
    wanted = Record(proposal).evidence.get("manifest", {}).get("experiences", [])
    say(f"cycle for proposal {proposal['id'][:19]}: building the dataset at "
        f"{dataset_commit[:12]}")
    dataset = times.run("dataset", lambda: build_dataset(
        root, config, records_at(repo, dataset_commit), wanted, work / "data"))
    say(f"dataset: {len(dataset.manifest['records'])} verified experiences + "
        f"{len(dataset.manifest['external']['ids'])} external items "
        f"({len(dataset.manifest['dropped'])} dropped, "
        f"{dataset.manifest['escapes_dropped']['count']} of them for process-control "
        "escapes)")
    spec = times.run("backend", lambda: _spec(config, dataset.path, work / "run"))
    say(f"training a LoRA adapter with the {spec.backend} backend (base frozen)")
    report = times.run("training", lambda: run_training(spec))
    say(f"trained {report.get('steps')} steps, final loss {report.get('loss')}")
    verdict = times.run("tripwire", lambda: _tripwire(
        root, config, history, spec.base_model, work / "run" / "adapter", report, tasks, say))
    return _land(TrainedCycle(root, config, proposal, approval, spec, report, dataset,
                              dataset_commit, verdict, times, say))


def _spec(config: Config, dataset: Path, out: Path) -> TrainSpec:
    cycle = config["cycle"]
    return TrainSpec(base_model=resolve_base_model(config), dataset=str(dataset),
                     output_dir=str(out), backend=choose_backend(config),
                     seed=int(cycle["seed"]), lora_r=int(cycle["lora_r"]),
                     lora_alpha=int(cycle["lora_alpha"]), max_steps=int(cycle["max_steps"]),
                     batch_size=int(cycle.get("batch_size", 4)),
                     learning_rate=float(cycle["learning_rate"]))


@dataclass(frozen=True)
class TripwireVerdict:
    candidate: Any
    reference: Any
    promote: bool
    reasons: list[str]
    adapter_sha: str


def _tripwire(root: Path, config: Config, history: list[dict[str, Any]], base: str,
              adapter_dir: Path, report: Mapping[str, Any], tasks: list[dict[str, Any]],
              say: Say) -> TripwireVerdict:
    sha = f"sha256:{report['adapter_sha256']}"
    active = active_at(open_repo(root), "HEAD")  # committed: never the working tree's
    say(f"tripwire: scoring {len(tasks)} hold-out tasks for the candidate and {active}")
    base_score = evaluate(root, config, base, None, "base", tasks)
    if active == "base":
        reference = base_score
    else:
        reference = evaluate(root, config, base, adapter_path(root, active), active, tasks)
    candidate = evaluate(root, config, base, adapter_dir, sha, tasks)
    previous = _promoted_chain(history, base_score.diversity, active)
    decision = decide(candidate, reference, previous, config)
    say(f"tripwire: candidate pass rate {candidate.pass_rate:.3f}, diversity "
        f"{candidate.diversity:.3f} vs {reference.model[:19]} {reference.pass_rate:.3f} / "
        f"{reference.diversity:.3f}: {'promote' if decision.promote else 'HALT'}")
    return TripwireVerdict(candidate, reference, decision.promote, decision.reasons, sha)


def _promoted_chain(history: list[dict[str, Any]], base_diversity: float, active: str
                    ) -> list[float]:
    """Diversity of the promotions that led to ``active`` (oldest first), without it."""
    if active == "base":
        return []
    chain = [base_diversity]
    for record in typed(history, "cycle"):
        ev = record.evidence
        if ev.get("outcome") == "promoted":
            if ev.get("adapter") == active:
                return chain
            chain.append(float(ev["tripwire"]["candidate"]["diversity"]))
    return chain


@dataclass(frozen=True)
class TrainedCycle:
    """A cycle whose candidate was trained and judged: what landing it needs."""

    root: Path
    config: Config
    proposal: dict[str, Any]
    approval: dict[str, Any]
    spec: TrainSpec
    report: Mapping[str, Any]
    dataset: Dataset
    dataset_commit: str
    verdict: TripwireVerdict
    times: StageTimes
    say: Say

    def metadata(self) -> dict[str, Any]:
        """The adapter's metadata: beside it in the registry and in its promotion tag."""
        verdict, spec = self.verdict, self.spec
        return {
            "adapter": verdict.adapter_sha, "base_model": str(self.config["base"]["model"]),
            "base_sha256": self.report.get("base_sha256_before"), "backend": spec.backend,
            "holdout_pass_rate": verdict.candidate.pass_rate,
            "diversity": verdict.candidate.diversity,
            "manifest_sha256": self.dataset.manifest_sha256, "proposal": self.proposal["id"],
            "seed": spec.seed, "dataset_commit": self.dataset_commit,
            "spec": json.loads(spec.to_json()),
        }

    def evidence(self, metadata: Mapping[str, Any]) -> dict[str, Any]:
        """The ``cycle`` record's evidence, with the stage times measured so far."""
        verdict, report = self.verdict, self.report
        return {
            "type": "cycle", "proposal": self.proposal["id"], "approval": self.approval["id"],
            "outcome": "promoted" if verdict.promote else "halted",
            "adapter": verdict.adapter_sha if verdict.promote else None,
            "candidate_adapter": verdict.adapter_sha, "base_model": metadata["base_model"],
            "base_sha256": metadata["base_sha256"],
            "base_unchanged": report.get("base_sha256_before") == report.get(
                "base_sha256_after"),
            "backend": self.spec.backend, "spec": metadata["spec"],
            "dataset_commit": self.dataset_commit,
            "manifest_sha256": self.dataset.manifest_sha256, "manifest": self.dataset.manifest,
            "train": {k: report.get(k) for k in ("steps", "loss", "wall_s", "tokens_per_s")},
            "tripwire": {"candidate": verdict.candidate.summary(),
                         "reference": verdict.reference.summary(), "reasons": verdict.reasons},
            "stages_s": dict(self.times.seconds),
        }

    def follow_record(self, cycle_id: str) -> dict[str, Any]:
        """The draft that follows the cycle record: its promotion, or its halt."""
        verdict = self.verdict
        if verdict.promote:
            return {"kind": "promotion", "claim": f"promote {verdict.adapter_sha[:19]}",
                    "evidence": {"type": "promotion", "adapter": verdict.adapter_sha,
                                 "cycle": cycle_id}}
        return {"kind": "halt", "claim": f"halt: {'; '.join(verdict.reasons)}"[:500],
                "evidence": {"type": "halt", "cycle": cycle_id, "reasons": verdict.reasons,
                             "candidate": verdict.candidate.summary(),
                             "reference": verdict.reference.summary()}}


def _land(run: TrainedCycle) -> dict[str, Any]:
    """Record the cycle and its promotion or halt, commit them, and promote on a pass."""
    root, proposal, verdict = run.root, run.proposal, run.verdict
    metadata = run.metadata()
    if verdict.promote:
        run.times.run("registry", lambda: register_adapter(
            root, Path(run.spec.output_dir) / "adapter", metadata))
    evidence = run.evidence(metadata)  # its stages_s end here: the commits come after
    source = {"emitter": "convergent/cycle", "model": metadata["base_model"],
              "origin": "operator"}
    with Recorder(root, verify=False) as recorder:
        cycle = recorder.emit({"kind": "cycle", "claim": f"cycle for proposal "
                               f"{proposal['id'][:19]}: {evidence['outcome']}",
                               "evidence": evidence, "confidence": 1.0, "source": source,
                               "links": [proposal["id"], run.approval["id"]]})
        recorder.emit(dict(run.follow_record(cycle["id"]), confidence=1.0, source=source,
                           links=[cycle["id"]]))
    commit_paths(root, [RECORDS_DIR, ADAPTERS_DIR],
                 f"convergent: cycle for proposal {proposal['id'][:19]}: {evidence['outcome']}")
    if verdict.promote:
        commit, tag = promote(root, verdict.adapter_sha, metadata)
        run.say(f"promoted {verdict.adapter_sha[:19]} as {tag} ({commit[:12]})")
    else:
        run.say("halted: " + "; ".join(verdict.reasons) + " (ACTIVE unchanged)")
    load_plugins().hook.cycle_ended(result=Record(cycle).evidence, repo=str(root))
    return cycle
