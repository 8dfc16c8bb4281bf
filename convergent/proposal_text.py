"""The Markdown PR description of a distillation proposal.

What a reviewing operator needs on one page: the gap, each lever's measured value
against the target, what the cycle would train on, what decontamination held back,
the cycle config, and what merging does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from convergent.config import Config
from convergent.levers import how_measured, is_measured
from convergent.records import Record


@dataclass(frozen=True)
class DatasetReport:
    """The experiences a cycle would train on, and those held back."""

    experiences: int
    verified: list[str]
    excluded: list[str]


def _value(record: dict[str, Any]) -> str:
    """A recorded value as a reviewer must read it: measured (± its standard error, with
    the members measured) or reported, not measured."""
    ev = Record(record).evidence
    if not is_measured(record):
        return f"{ev['measured']} ({how_measured(record)})"
    members = ", ".join(f"{m['member']} {m['solved']}/{m['tasks']}"
                        for m in ev["measurements"])
    return f"{ev['measured']:.4f} ± {ev.get('stderr', 0.0):.4f} (measured: {members})"


def _gap_section(gap: dict[str, Any]) -> list[str]:
    ev = Record(gap).evidence
    better = "lower is better" if ev.get("lower_is_better") else "higher is better"
    return ["### Gap", "",
            "| gap | metric | measured | target | evaluation set | record |",
            "|---|---|---|---|---|---|",
            f"| `{ev['name']}` | {ev['metric']} ({better}) | {_value(gap)} | {ev['target']} "
            f"| `{ev['eval']}` | `{gap['id'][:19]}` |", ""]


def _lever_section(gap: dict[str, Any], levers: list[dict[str, Any]]) -> list[str]:
    target = Record(gap).evidence["target"]
    rows = ["### Levers tried first (frozen base)", "",
            "| # | lever | measured | target | gap | tried at | record |",
            "|---|---|---|---|---|---|---|"]
    for i, lever in enumerate(levers, 1):
        ev = Record(lever).evidence
        rows.append(f"| {i} | {ev['lever']} | {_value(lever)} | {target} | still open | "
                    f"{lever['ts']} | `{lever['id'][:19]}` |")
    return [*rows, ""]


def _dataset_section(dataset: DatasetReport, manifest: dict[str, Any]) -> list[str]:
    holdout = manifest.get("holdout_sha256") or "(not pinned)"
    return ["### Dataset", "",
            f"- experiences in the log: {dataset.experiences}",
            f"- verified, to train on: {len(dataset.verified)}",
            f"- unverified, never trained on: "
            f"{dataset.experiences - len(dataset.verified) - len(dataset.excluded)}",
            f"- external (non-self) data: `{manifest['external']}`",
            f"- frozen hold-out sha256: `{holdout}`", "",
            "### Decontamination", "",
            f"- verified experiences excluded by the decontamination gate (a shared n-gram, "
            f"a paraphrased task, or a solution of an item of a registered benchmark or the "
            f"hold-out): {len(dataset.excluded)}",
            *(f"  - `{rid}`" for rid in dataset.excluded), ""]


def _cycle_section(cycle: dict[str, Any]) -> list[str]:
    rows = ["### Cycle config", "", "| key | value |", "|---|---|"]
    rows.extend(f"| {key} | `{value}` |" for key, value in sorted(cycle.items()))
    return [*rows, ""]


def _approval_section(config: Config) -> list[str]:
    signed = config["operators"].get("require_signed")
    lines = ["### Approval", "",
             "Merging this branch approves the proposal when the merge commit's **author** is "
             "a configured operator (`[operators] allowed`). A Git host's web-UI merge "
             "qualifies: the host records the person who merged as the author; the "
             "committer (the host itself) is not checked."]
    if signed:
        lines.append("Signatures are required (`require_signed = true`): the merge commit "
                     "must verify with `git verify-commit` against `[operators] "
                     "allowed_signers`.")
    lines += ["", "The merge starts exactly one training cycle (`convergent on-merge`)."]
    return lines


def describe(record: dict[str, Any], branch: str, gap: dict[str, Any],
             levers: list[dict[str, Any]], dataset: DatasetReport, config: Config) -> str:
    """The PR description of the proposal ``record`` on ``branch``."""
    ev = Record(record).evidence
    head = [f"## Distillation proposal for gap `{ev['gap']}`", "",
            f"Proposal `{record['id']}` on branch `{branch}`.", ""]
    return "\n".join(head + _gap_section(gap) + _lever_section(gap, levers)
                     + _dataset_section(dataset, ev["manifest"])
                     + _cycle_section(ev["cycle_config"]) + _approval_section(config)) + "\n"
