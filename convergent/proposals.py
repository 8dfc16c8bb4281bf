"""``convergent propose``: a distillation proposal, as a branch an operator can merge.

A proposal is only made for a gap whose frozen-base levers were all tried, in order,
after the gap was recorded (and in the gap's current state: after the last cycle that
changed the weights for it), each measured and each leaving the gap open
(:func:`convergent.levers.plan_proposal`). Otherwise :class:`LeversFirstError` lists every
missing or out-of-order piece, one a line, with what to do next.

The proposal record lands on its own branch, ``convergent/proposal/<12 hex of its id>``,
made from HEAD in a temporary ``git worktree`` so the user's working tree and current
branch are never touched. It carries the gap, the lever tries it relies on, the dataset
manifest and the cycle config; the Markdown description is what the PR shows.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import git

from convergent.config import Config, load_config
from convergent.errors import ConvergentError, RepoError
from convergent.gitops import open_repo
from convergent.history import read_records
from convergent.layout import RECORDS_DIR
from convergent.levers import LEVER_ORDER, allow_reported, plan_proposal
from convergent.proposal_text import DatasetReport, describe
from convergent.recorder import Recorder
from convergent.records import Record, typed

BRANCH_PREFIX = "convergent/proposal/"
EMITTER = "convergent/propose"


class ProposalError(ConvergentError):
    """A proposal cannot be made (the message says why and what to do)."""


class LeversFirstError(ProposalError):
    """Levers first is not satisfied; ``missing`` holds each piece, one a line."""

    def __init__(self, gap: str, missing: list[str]) -> None:
        self.gap = gap
        self.missing = missing
        lines = "\n".join(f"  - {reason}{_next_step(gap, reason)}" for reason in missing)
        super().__init__(f"cannot propose distillation for gap {gap!r}; levers first:\n"
                         f"{lines}")


# What to run for each lever: each one is measured here, through the registered members.
_HOW = {
    "route": "convergent lever measure --gap {gap} --lever route",
    "verify_best_of_n": "convergent lever measure --gap {gap} --lever verify_best_of_n --n 8",
    "rag": "convergent lever measure --gap {gap} --lever rag",
}


def _next_step(gap: str, reason: str) -> str:
    match = re.search(r"lever '(\w+)'", reason)
    if match is None or match.group(1) not in _HOW:
        return ""
    if "closed gap" in reason:
        return " (it was not proposed: the frozen base already meets the target)"
    how = _HOW[match.group(1)].format(gap=gap)
    # A later lever tried before this one no longer counts: it must come after it.
    later = LEVER_ORDER[LEVER_ORDER.index(match.group(1)) + 1:]
    then = f", then {' and '.join(later)} after it" if later else ""
    return f"; next: `{how}`{then}"


@dataclass(frozen=True)
class Proposal:
    """What :func:`propose` made: the branch, its record and the PR description."""

    branch: str
    record: dict[str, Any]
    description: str
    pushed_to: str | None = None


def short_id(record_id: str) -> str:
    return record_id.removeprefix("sha256:")[:12]


def _require_committed_log(root: Path) -> None:
    # The branch is made from HEAD: records only in the working tree would be left out
    # of the proposal while still counting in the levers-first check here.
    if open_repo(root).git.status("--porcelain", "--", RECORDS_DIR).strip():
        raise ProposalError(f"{RECORDS_DIR} has uncommitted records: run `convergent commit` "
                            "first, so the proposal relies only on committed evidence")


def dataset_report(root: Path, config: Config, records: list[dict[str, Any]]
                   ) -> DatasetReport:
    """Verified experiences, minus those the decontamination gate would refuse."""
    experiences = typed(records, "experience")
    verified = [dict(r.raw) for r in experiences if r.verified]
    flagged = contaminated_ids(root, config, verified)
    return DatasetReport(len(experiences), [r["id"] for r in verified if r["id"] not in flagged],
                         [r["id"] for r in verified if r["id"] in flagged])


def contaminated_ids(root: Path, config: Config, records: list[dict[str, Any]]) -> set[str]:
    """Ids of records the one decontamination API flags (the rule the gate applies, with
    the dataset build's settings: what the cycle would drop)."""
    from convergent.contamination import contaminated

    try:
        findings = contaminated(root, config, records, build=True)
    except RepoError as exc:  # fail closed: a dataset we cannot check is not made
        raise ProposalError(f"decontamination cannot run: {exc}") from None
    return {records[f.record]["id"] for f in findings}


def _draft(gap: dict[str, Any], levers: list[dict[str, Any]], config: Config,
           dataset: DatasetReport) -> dict[str, Any]:
    name = Record(gap).evidence["name"]
    manifest = {"experiences": dataset.verified, "external": "stdlib",
                "holdout_sha256": config["tripwire"].get("holdout_sha256", "")}
    return {"kind": "proposal",
            "claim": f"distill gap {name}: levers {', '.join(LEVER_ORDER)} left it open",
            "evidence": {"type": "proposal", "gap": name,
                         "levers": [lev["id"] for lev in levers], "manifest": manifest,
                         "cycle_config": dict(config["cycle"])},
            "links": [gap["id"], *(lev["id"] for lev in levers)], "confidence": 1.0,
            "source": {"emitter": EMITTER, "model": str(config["base"]["model"]),
                       "origin": "self"}}


@contextmanager
def _worktree(repo: git.Repo) -> Iterator[Path]:
    """A detached worktree at HEAD in a temp dir, removed afterwards."""
    tmp = Path(tempfile.mkdtemp(prefix="convergent-proposal-"))
    path = tmp / "tree"
    repo.git.worktree("add", "--detach", "--quiet", str(path), "HEAD")
    try:
        yield path
    finally:
        repo.git.worktree("remove", "--force", str(path))
        shutil.rmtree(tmp, ignore_errors=True)


def _commit_on_branch(root: Path, draft: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """Append the proposal in a worktree, commit it on its new branch; returns both."""
    repo = open_repo(root)
    with _worktree(repo) as tree, Recorder(tree) as recorder:
        record = recorder.emit(draft)
        branch = BRANCH_PREFIX + short_id(record["id"])
        tree_repo = open_repo(tree)
        tree_repo.git.checkout("--quiet", "-b", branch)
        try:
            recorder.commit(f"convergent: propose distillation for gap "
                            f"{draft['evidence']['gap']}\n\nproposal {record['id']}")
        except git.GitCommandError as exc:  # a gate refused in the pre-commit hook
            tree_repo.git.checkout("--quiet", "--detach")  # a checked-out branch stays
            repo.git.branch("-D", branch)
            raise ProposalError(f"the proposal commit was refused:\n"
                                f"{(exc.stderr or '').strip()}") from None
    return branch, record


def propose(root: Path, gap_name: str, *, push_remote: str | None = None) -> Proposal:
    """Check levers first for ``gap_name`` and make its proposal branch.

    :param push_remote: push the branch there (e.g. ``origin``) to open a PR from it.
    :raises LeversFirstError: listing each missing or out-of-order lever try.
    """
    root = Path(root).resolve()
    _require_committed_log(root)
    records = read_records(root)
    config = load_config(root)
    plan = plan_proposal(records, gap_name, reported_ok=allow_reported(config))
    if not plan.ok or plan.gap is None:
        raise LeversFirstError(gap_name, plan.missing)
    dataset = dataset_report(root, config, records)
    branch, record = _commit_on_branch(root, _draft(plan.gap, plan.levers, config, dataset))
    if push_remote:
        _push(root, push_remote, branch)
    text = describe(record, branch, plan.gap, plan.levers, dataset, config)
    return Proposal(branch, record, text, push_remote)


def _push(root: Path, remote: str, branch: str) -> None:
    try:
        open_repo(root).git.push("--quiet", remote, f"{branch}:{branch}")
    except git.GitCommandError as exc:
        raise ProposalError(f"branch {branch} was made but pushing it to {remote} failed: "
                            f"{(exc.stderr or '').strip()}; push it by hand") from None
